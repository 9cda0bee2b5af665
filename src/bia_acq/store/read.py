"""What readers (reports, exports) query, on a read-only connection
(:func:`bia_acq.store.db.open_readonly`): the views and a few tables.

Rows come back as :class:`sqlite3.Row`; :mod:`bia_acq.report` shapes them.
"""

from __future__ import annotations

import sqlite3

from bia_acq.store.schema import RENAMED

#: names of the migration after which the reader views exist (current and before renaming)
_READER_VIEWS = (
    "m004_reader_views",
    *(old for old, new in RENAMED.items() if new == "m004_reader_views"),
)


def has_reader_views(conn: sqlite3.Connection) -> bool:
    """Is this a bia-acq database whose schema has the reader views?"""
    try:
        row = conn.execute(
            "SELECT 1 FROM _sqlite_migrations WHERE migration_set = 'bia_acq'"
            f" AND name IN ({', '.join('?' for _ in _READER_VIEWS)})",
            _READER_VIEWS,
        ).fetchone()
    except sqlite3.DatabaseError:
        return False
    return row is not None


def pseudonym_key(conn: sqlite3.Connection) -> str:
    return str(conn.execute("SELECT value FROM meta WHERE key = 'pseudonym_key'").fetchone()[0])


def reported_subject_ids(conn: sqlite3.Connection) -> list[int]:
    """Subjects with at least one result of the reporting method, by pseudonym."""
    rows = conn.execute(
        "SELECT DISTINCT subject_id, subject_pseudonym FROM v_edema_latest ORDER BY subject_pseudonym"
    )
    return [int(r[0]) for r in rows]


def method(conn: sqlite3.Connection, name: str, version: str) -> tuple[object, ...] | None:
    """(name, version, description, citation, normal max, slight max, bands source)."""
    row = conn.execute(
        "SELECT name, version, description, citation, ecw_tbw_normal_max, ecw_tbw_slight_max,"
        " bands_source FROM method WHERE name = ? AND version = ?",
        (name, version),
    ).fetchone()
    return tuple(row) if row else None


def subject(conn: sqlite3.Connection, subject_id: int) -> sqlite3.Row | None:
    conn.row_factory = sqlite3.Row
    row: sqlite3.Row | None = conn.execute(
        "SELECT id, pseudonym, external_id FROM subject WHERE id = ?", (subject_id,)
    ).fetchone()
    return row


def latest_attributes(conn: sqlite3.Connection, subject_id: int) -> sqlite3.Row | None:
    """Sex, age, height, weight and warnings of the subject's newest measurement."""
    conn.row_factory = sqlite3.Row
    row: sqlite3.Row | None = conn.execute(
        "SELECT sex, age_years, height_cm, weight_kg, warnings_json FROM measurement"
        " WHERE subject_id = ? ORDER BY coalesce(measured_at_epoch, received_at_epoch) DESC, id DESC"
        " LIMIT 1",
        (subject_id,),
    ).fetchone()
    return row


def _rows(conn: sqlite3.Connection, sql: str, *params: object) -> list[sqlite3.Row]:
    conn.row_factory = sqlite3.Row
    return conn.execute(sql, params).fetchall()


def trend(conn: sqlite3.Connection, subject_id: int) -> list[sqlite3.Row]:
    """The subject's rows of ``v_edema_trend``, oldest first."""
    return _rows(
        conn,
        "SELECT * FROM v_edema_trend WHERE subject_id = ? ORDER BY measured_at_epoch, measurement_id",
        subject_id,
    )


def latest(conn: sqlite3.Connection, subject_id: int) -> list[sqlite3.Row]:
    """The subject's rows of ``v_edema_latest`` (one per segment)."""
    return _rows(conn, "SELECT * FROM v_edema_latest WHERE subject_id = ?", subject_id)


def measurement_filter(
    alias: str, subject_id: int | None, since_epoch: float | None
) -> tuple[list[str], list[float]]:
    """WHERE terms and parameters for measurements (table ``alias``) of one subject and
    taken since a time (the device clock, else the receive time)."""
    where: list[str] = []
    params: list[float] = []
    if subject_id is not None:
        where.append(f"{alias}subject_id = ?")
        params.append(subject_id)
    if since_epoch is not None:
        where.append(f"coalesce({alias}measured_at_epoch, {alias}received_at_epoch) >= ?")
        params.append(since_epoch)
    return where, params


def export_measurements(
    conn: sqlite3.Connection, *, subject_id: int | None = None, since_epoch: float | None = None
) -> list[sqlite3.Row]:
    """Measurements with a subject (of one subject, taken since a time), oldest first,
    with their device and the subject's identifiers."""
    conn.row_factory = sqlite3.Row
    where, params = measurement_filter("m.", subject_id, since_epoch)
    return conn.execute(
        "SELECT m.id AS measurement_id, m.subject_id, s.pseudonym AS subject_pseudonym,"
        " s.external_id AS subject_external_id,"
        " coalesce(m.measured_at_utc, m.received_at_utc) AS measured_at_utc,"
        " coalesce(m.measured_at_epoch, m.received_at_epoch) AS measured_at_epoch,"
        " m.received_at_utc, m.device_clock, m.sex, m.age_years, m.height_cm, m.weight_kg,"
        " d.id AS device_id, d.driver AS device_driver, d.port AS device_port,"
        " d.model AS device_model, d.serial_number AS device_serial_number"
        " FROM measurement m JOIN device d ON d.id = m.device_id"
        " JOIN subject s ON s.id = m.subject_id"
        f" WHERE {' AND '.join(['m.subject_id IS NOT NULL', *where])}"
        " ORDER BY measured_at_epoch, m.id",
        params,
    ).fetchall()


def measurement_trend(conn: sqlite3.Connection, measurement_id: int) -> list[sqlite3.Row]:
    """The measurement's rows of ``v_edema_trend`` (one per segment)."""
    return _rows(conn, "SELECT * FROM v_edema_trend WHERE measurement_id = ?", measurement_id)


def impedances(conn: sqlite3.Connection, measurement_id: int) -> list[sqlite3.Row]:
    return _rows(
        conn,
        "SELECT segment, freq_khz, r_ohm, x_ohm, magnitude_only FROM impedance"
        " WHERE measurement_id = ? ORDER BY segment, freq_khz",
        measurement_id,
    )


def device_whole_body(conn: sqlite3.Connection, measurement_id: int) -> dict[str, object] | None:
    """The analyzer's own whole-body figures (method ``device``) of one measurement."""
    keys = ("method_version", "ecw_l", "icw_l", "tbw_l", "ecw_tbw_ratio", "classification")
    row = conn.execute(
        f"SELECT {', '.join(keys)} FROM segment_result WHERE measurement_id = ?"
        " AND segment = 'whole_body' AND method = 'device'",
        (measurement_id,),
    ).fetchone()
    return None if row is None else dict(zip(keys, tuple(row), strict=True))
