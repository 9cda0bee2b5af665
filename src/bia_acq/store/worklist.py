"""The work list's rows: add, list, claim, finish (see :mod:`bia_acq.worklist`).

Entries are claimed with one conditional UPDATE, so two ports never take the
same entry. In the service, the writer thread runs these for the polled
readers (:class:`bia_acq.acquire.StoreCall`); the ``worklist`` command runs
them on its own writer connection.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

from bia_acq.utc import utc_now, utc_text

STATUSES = ("waiting", "measuring", "done", "failed")


@dataclass(frozen=True)
class Entry:
    id: int
    external_id: str
    sex: str
    age_years: int
    height_cm: float
    body_type: str
    tare_kg: float | None
    port: str | None
    status: str = "waiting"
    reason: str | None = None
    measurement_id: int | None = None
    added_at_utc: str = ""

    def template_values(
        self, sex_codes: dict[str, str], body_codes: dict[str, str]
    ) -> dict[str, object]:
        return {
            "sex_code": sex_codes[self.sex],
            "body_type_code": body_codes[self.body_type],
            "height_cm": self.height_cm,
            "age_years": self.age_years,
            "subject_id": self.external_id,
            "tare_kg": self.tare_kg,
        }


_COLUMNS = (
    "id, external_id, sex, age_years, height_cm, body_type, tare_kg, port, status, reason,"
    " measurement_id, added_at_utc"
)


def _entry(row: tuple[object, ...]) -> Entry:
    return Entry(*row)  # type: ignore[arg-type]


def add(
    conn: sqlite3.Connection,
    *,
    external_id: str,
    sex: str,
    age_years: int,
    height_cm: float,
    body_type: str = "standard",
    tare_kg: float | None = None,
    port: str | None = None,
) -> int:
    now = time.time()
    with conn:
        cur = conn.execute(
            "INSERT INTO worklist (external_id, sex, age_years, height_cm, body_type, tare_kg, port,"
            " added_at_utc, added_at_epoch, updated_at_utc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                external_id,
                sex,
                age_years,
                height_cm,
                body_type,
                tare_kg,
                port,
                utc_text(now),
                now,
                utc_text(now),
            ),
        )
    return int(cur.lastrowid or 0)


def entries(conn: sqlite3.Connection, *, include_finished: bool = True) -> list[Entry]:
    where = "" if include_finished else " WHERE status IN ('waiting', 'measuring')"
    rows = conn.execute(f"SELECT {_COLUMNS} FROM worklist{where} ORDER BY id").fetchall()
    return [_entry(tuple(r)) for r in rows]


def get(conn: sqlite3.Connection, entry_id: int) -> Entry | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM worklist WHERE id = ?", (entry_id,)).fetchone()
    return _entry(tuple(row)) if row else None


def clear(conn: sqlite3.Connection, *, everything: bool = False) -> int:
    """Remove waiting and failed entries (``everything``: also done ones). Never one in measurement."""
    statuses = ("waiting", "failed", "done") if everything else ("waiting", "failed")
    with conn:
        cur = conn.execute(
            f"DELETE FROM worklist WHERE status IN ({', '.join('?' for _ in statuses)})", statuses
        )
    return cur.rowcount


def has_waiting(conn: sqlite3.Connection, port: str) -> bool:
    """A read-only look: is an entry waiting for ``port`` (or any port)?"""
    row = conn.execute(
        "SELECT 1 FROM worklist WHERE status = 'waiting' AND (port IS NULL OR port = ?) LIMIT 1",
        (port,),
    ).fetchone()
    return row is not None


def claim(conn: sqlite3.Connection, port: str) -> Entry | None:
    """Take the oldest waiting entry for ``port`` (or for any port): it is now measuring here."""
    with conn:
        row = conn.execute(
            "UPDATE worklist SET status = 'measuring', port = ?, updated_at_utc = ? WHERE id = ("
            " SELECT id FROM worklist WHERE status = 'waiting' AND (port IS NULL OR port = ?)"
            f" ORDER BY id LIMIT 1) RETURNING {_COLUMNS}",
            (port, utc_now(), port),
        ).fetchone()
    return _entry(tuple(row)) if row else None


def fail(conn: sqlite3.Connection, entry_id: int, reason: str) -> None:
    with conn:
        conn.execute(
            "UPDATE worklist SET status = 'failed', reason = ?, updated_at_utc = ? WHERE id = ?",
            (reason, utc_now(), entry_id),
        )


def release_stale(conn: sqlite3.Connection, port: str) -> int:
    """At start: entries this port left 'measuring' (a stop mid-measurement) become failed."""
    with conn:
        cur = conn.execute(
            "UPDATE worklist SET status = 'failed', updated_at_utc = ?, reason = 'the service "
            "stopped during this measurement; add the subject again if no result was stored'"
            " WHERE status = 'measuring' AND port = ?",
            (utc_now(), port),
        )
    return cur.rowcount


def mark_done(conn: sqlite3.Connection, entry_id: int, measurement_id: int) -> None:
    conn.execute(
        "UPDATE worklist SET status = 'done', reason = NULL, measurement_id = ?, updated_at_utc = ?"
        " WHERE id = ?",
        (measurement_id, utc_now(), entry_id),
    )


def claim_next(conn: sqlite3.Connection, port: str) -> Entry | None:
    """:func:`claim` after a read-only look (no write lock while nothing waits)."""
    return claim(conn, port) if has_waiting(conn, port) else None
