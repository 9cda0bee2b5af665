"""Push a site's SQLite database to the central PostgreSQL, offline-first.

One *pass* reads the local database read-only in one snapshot and pushes, stream by
stream in the order of their references, every row the center lacks:

* ``device``, ``subject``, ``raw_frame``, ``measurement`` (with its ``impedance``)
  by their ids; ``raw_frame`` stops before the first frame still pending (its status
  changes when decoded) and ``measurement`` before the first whose frame is not pushed;
* ``segment_result`` by the rowid of its table ``result`` (the view ``result_stream``'s
  ``seq``), which SQLite gives anew to a result a recompute replaces
  (``INSERT OR REPLACE``), so new and recomputed results both follow;
  the row at the mark is checked by its ``computed_at_utc`` in case SQLite reused
  the largest rowid;
* ``subject_baseline`` and ``method`` (small, changeable) whole, when their digest changed.

Every batch is one central transaction that also moves the stream's high-water mark
(``sync_state``), so an interruption anywhere loses nothing and sends nothing twice;
rows are staged by COPY and merged with ``ON CONFLICT`` on their natural keys (site
first), so even a batch pushed twice changes nothing. The local file is never written
and the acquisition service needs no network access.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bia_acq.central.config import SyncConfig
from bia_acq.central.schema import SCHEMA
from bia_acq.errors import BiaError, StorageError
from bia_acq.store.db import open_readonly

log = logging.getLogger(__name__)

Row = tuple[Any, ...]
PgConn = psycopg.Connection[Row]

#: central primary keys, after ``site``
KEYS = {
    "device": ("id",),
    "subject": ("id",),
    "raw_frame": ("id",),
    "measurement": ("id",),
    "impedance": ("measurement_id", "segment", "freq_khz"),
    "segment_result": ("measurement_id", "segment", "method", "method_version"),
    "method": ("name", "version"),
    "subject_baseline": ("subject_id",),
}
#: tables whose stored rows may change (merged with DO UPDATE; the others DO NOTHING)
MUTABLE = {"segment_result", "method", "subject_baseline"}
#: device-value keys withheld from the center unless the site sends identifiers
IDENTIFYING = re.compile(
    r"name|birth|dob|phone|mobile|mail|address|street|postal|zip|insur|patient|^\W*id\W*$",
    re.IGNORECASE,
)
#: what identifies the result row at the high-water mark (see Pusher._result_start)
RESULT_MARK = (
    "measurement_id || '/' || segment || '/' || method || '/' || method_version"
    " || '/' || computed_at_utc"
)
#: errors after which a later attempt may succeed (server down, connection cut, deadlock)
TRANSIENT = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    psycopg.errors.SerializationFailure,
    psycopg.errors.DeadlockDetected,
)


class SyncError(BiaError):
    """The central database refused this site's configuration (not a network failure)."""


def connect(cfg: SyncConfig) -> PgConn:
    """A connection as configured: password from its file, keepalives, search_path."""
    timeout = int(cfg.timeout_s)
    kwargs: dict[str, Any] = {
        "connect_timeout": timeout,
        "application_name": f"bia-acq sync {cfg.site}",
        "keepalives": 1,
        "keepalives_idle": max(1, timeout // 3),
        "keepalives_interval": max(1, timeout // 6),
        "keepalives_count": 3,
        "tcp_user_timeout": timeout * 1000,
        "options": f"-c search_path={SCHEMA}",
        **cfg.params,
    }
    password = cfg.password()
    if password is not None:
        kwargs["password"] = password
    return psycopg.connect(cfg.url, **kwargs)


def group_pseudonym(key: bytes, external_id: str) -> str:
    """The group's pseudonym of a patient ID: HMAC-SHA-256 with the shared key (128 bits, as the sites' own)."""
    return "G-" + hmac.new(key, external_id.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


@dataclass
class PassResult:
    """What one pass pushed, by stream (rows), and how long it took."""

    pushed: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    backlog: int = 0  # rows the pass found missing at its start (an estimate)
    stopped: bool = False  # ended early, between two batches, because stop was set

    @property
    def rows(self) -> int:
        return sum(self.pushed.values())


class Pusher:
    """One site's pushes. ``run_pass`` is one catch-up to the local snapshot's end."""

    # the pass in progress: the local snapshot, the central connection, the site number
    _local: sqlite3.Connection
    _pg: PgConn
    _site_no: int

    def __init__(
        self,
        cfg: SyncConfig,
        database: Path,
        *,
        on_backlog: Callable[[int], None] | None = None,
        before_commit: Callable[[str, int], None] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.cfg = cfg
        self.database = database
        self.on_backlog = on_backlog
        #: set (SIGTERM, Ctrl-C): the pass ends after the batch in hand commits
        self.stop = stop
        #: test hook: called inside each batch's transaction, before its commit
        self.before_commit = before_commit
        self._key = cfg.pseudonym_key()
        self._staged: set[str] = set()
        self._cols: dict[str, list[str]] = {}
        self._types: dict[str, list[str]] = {}

    # -- one pass --------------------------------------------------------------
    def run_pass(self) -> PassResult:
        t0 = time.perf_counter()
        local = open_readonly(self.database)
        local.row_factory = None
        local.isolation_level = None
        try:
            try:
                local.execute("BEGIN")  # one snapshot for the whole pass
                local.execute("SELECT 1 FROM raw_frame LIMIT 1")
            except sqlite3.DatabaseError as exc:
                raise StorageError(
                    f"cannot read {self.database}: {exc} (a read-only reader needs its -wal "
                    "and -shm files, which the acquisition service leaves when it stops: "
                    "start it once, or give write access to the folder)"
                ) from None
            with connect(self.cfg) as conn:
                self._staged = set()
                result = self._push(local, conn)
        finally:
            local.close()
        result.seconds = time.perf_counter() - t0
        return result

    def _push(self, local: sqlite3.Connection, conn: PgConn) -> PassResult:
        site = self._site(local, conn)
        self._local, self._pg, self._site_no = local, conn, site  # this pass's
        state = {
            str(s): (int(h), m)
            for s, h, m in conn.execute(
                "SELECT stream, high_water, mark FROM sync_state WHERE site = %s", (site,)
            )
        }
        conn.commit()
        cols = self._cols = {t: self._columns(local, conn, t) for t in KEYS}
        out = PassResult()

        def hw(stream: str) -> int:
            return state.get(stream, (0, None))[0]

        def top(sql_text: str, *args: object) -> int | None:
            v = local.execute(sql_text, args).fetchone()[0]
            return int(v) if v is not None else None

        pending = top("SELECT min(id) FROM raw_frame WHERE status = 'pending'")
        frame_top = pending - 1 if pending else top("SELECT max(id) FROM raw_frame") or 0
        uppers = {
            "device": top("SELECT max(id) FROM device") or 0,
            "subject": top("SELECT max(id) FROM subject") or 0,
            "raw_frame": frame_top,
        }
        # a measurement waits for its frame; a result for its measurement
        blocked = top(
            "SELECT min(id) FROM measurement WHERE id > ? AND raw_frame_id > ?",
            hw("measurement"),
            frame_top,
        )
        uppers["measurement"] = (
            blocked - 1 if blocked else top("SELECT max(id) FROM measurement") or 0
        )
        m_top = max(uppers["measurement"], hw("measurement"))
        r_hw = self._result_start(local, state.get("segment_result"))
        blocked = top(
            "SELECT min(seq) FROM result_stream WHERE seq > ? AND measurement_id > ?",
            r_hw,
            m_top,
        )
        r_top = blocked - 1 if blocked else top("SELECT max(rowid) FROM result") or 0
        out.backlog = (
            sum(max(0, uppers[s] - hw(s)) for s in uppers)
            + max(0, r_top - r_hw)
            + (
                top(
                    "SELECT count(*) FROM impedance WHERE measurement_id > ? AND measurement_id <= ?",
                    hw("measurement"),
                    uppers["measurement"],
                )
                or 0
            )
        )
        if self.on_backlog is not None:
            self.on_backlog(out.backlog)

        n = self.cfg.batch_size
        for stream in ("device", "subject", "raw_frame", "measurement"):
            out.pushed[stream] = self._id_stream(
                stream, cols[stream], hw(stream), uppers[stream], n
            )
        out.pushed["segment_result"] = self._result_stream(
            cols["segment_result"], r_hw, r_top, n * 6
        )
        for table in ("method", "subject_baseline"):
            if self._stopping():
                break
            out.pushed[table] = self._whole_table(
                table, cols[table], state.get(table, (0, None))[1], m_top
            )
        out.stopped = self._stopping()
        return out

    def _stopping(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    # -- the site --------------------------------------------------------------
    def _site(self, local: sqlite3.Connection, conn: PgConn) -> int:
        """This role's site number; the site's database fingerprint claimed or checked."""
        key = local.execute("SELECT value FROM meta WHERE key = 'pseudonym_key'").fetchone()
        if key is None:
            raise SyncError(f"{self.database} is not a bia-acq database (no meta key)")
        fingerprint = hashlib.sha256(b"bia-acq database " + key[0].encode()).hexdigest()[:32]
        row = conn.execute(
            "SELECT site_no, name, database_fingerprint FROM site WHERE db_role = current_user"
        ).fetchone()
        user = conn.info.user
        if row is None:
            raise SyncError(
                f"the central database has no site for role {user!r} "
                f"(register it: INSERT INTO bia_acq.site (name, db_role) VALUES "
                f"('{self.cfg.site}', '{user}'); docs/central.md, step 4)"
            )
        site_no, name, known = int(row[0]), str(row[1]), row[2]
        if name != self.cfg.site:
            raise SyncError(
                f"role {user!r} is registered for site {name!r}, but sync.site is "
                f"{self.cfg.site!r} (correct sync.site or the site's db_role)"
            )
        if known is None:
            conn.execute(
                "UPDATE site SET database_fingerprint = %s WHERE site_no = %s",
                (fingerprint, site_no),
            )
        elif known != fingerprint:
            raise SyncError(
                f"site {name!r} is already fed by another database than {self.database} "
                "(one database per site: give this one its own site name and role)"
            )
        conn.commit()
        return site_no

    def _columns(self, local: sqlite3.Connection, conn: PgConn, table: str) -> list[str]:
        """The local table's columns, each of which the central table must have.

        Their central types are kept for the binary COPY (``self._types``).
        """
        mine = [str(r[1]) for r in local.execute(f"PRAGMA table_info({table})")]
        central = {
            str(name): str(udt)
            for name, udt in conn.execute(
                "SELECT column_name, udt_name FROM information_schema.columns"
                " WHERE table_schema = %s AND table_name = %s",
                (SCHEMA, table),
            )
        }
        conn.commit()
        if table == "subject":  # the pseudonym's scope: the group's key, or this site's
            mine.append("scope")
        missing = [c for c in mine if c not in central]
        if missing:
            raise SyncError(
                f"the central table {table} lacks column(s) {', '.join(missing)}: this PC's "
                "bia-acq is newer than the central schema (run `bia-acq central migrate` "
                "with this version)"
            )
        self._types[table] = [central[c] for c in mine]
        return mine

    # -- streams ---------------------------------------------------------------
    def _id_stream(self, table: str, cols: list[str], hw: int, upper: int, n: int) -> int:
        local, conn = self._local, self._pg
        pushed = 0
        local_cols = cols[:-1] if table == "subject" else cols  # subject: scope is added
        if table == "raw_frame" and not self.cfg.send_identifiers:  # the bytes hold the ID
            local_cols = ["NULL" if c == "data" else c for c in cols]
        select = f"SELECT {', '.join(local_cols)} FROM {table}"
        while hw < upper and not self._stopping():
            rows = local.execute(
                f"{select} WHERE id > ? AND id <= ? ORDER BY id LIMIT ?", (hw, upper, n)
            ).fetchall()
            if not rows:
                break
            last = int(rows[-1][0])
            if table == "subject":
                rows = self._subjects(cols, rows)
            elif table == "measurement" and not self.cfg.send_identifiers:
                rows = self._deidentify(cols, rows)
            with conn.transaction():
                count = self._merge(table, cols, rows)
                if table == "measurement":
                    icols = self._cols["impedance"]
                    imp = local.execute(
                        f"SELECT {', '.join(icols)} FROM impedance"
                        " WHERE measurement_id > ? AND measurement_id <= ?",
                        (hw, last),
                    ).fetchall()
                    # impedances go in with their measurement, in its transaction: when
                    # every measurement was new, none of theirs can be there yet
                    fresh = count == len(rows)
                    count += self._merge("impedance", icols, imp, fresh=fresh)
                self._mark(table, last, None, count)
            pushed += count
            hw = last
        return pushed

    def _subjects(self, cols: list[str], rows: list[Row]) -> list[Row]:
        """The central pseudonym (the group's, or this site's own) and its scope; the
        patient ID only when the site sends identifiers."""
        ext, pse = cols.index("external_id"), cols.index("pseudonym")
        out = []
        for r in rows:
            v = list(r)
            if self._key is not None:
                v[pse] = group_pseudonym(self._key, str(v[ext]))
            if not self.cfg.send_identifiers:
                v[ext] = None
            out.append((*v, "group" if self._key is not None else self.cfg.site))
        return out

    def _deidentify(self, cols: list[str], rows: list[Row]) -> list[Row]:
        """Without ``send_identifiers``, no device value whose key names a person's
        identifier (an analyzer's CSV export keeps every column it has, e.g. a name);
        the raw frames go without their bytes (see ``_id_stream``)."""
        i = cols.index("device_values_json")
        out = []
        for r in rows:
            values = json.loads(r[i])
            if isinstance(values, dict) and any(IDENTIFYING.search(str(k)) for k in values):
                kept = {k: v for k, v in values.items() if not IDENTIFYING.search(str(k))}
                r = (*r[:i], json.dumps(kept, ensure_ascii=False), *r[i + 1 :])
            out.append(r)
        return out

    def _result_start(self, local: sqlite3.Connection, st: tuple[int, str | None] | None) -> int:
        """Where results resume: after the mark, or from the start if the row there changed.

        A recompute's INSERT OR REPLACE gives a replaced result a new, larger rowid;
        only a renumbering (VACUUM of this rowid table) moves rows below the mark:
        then every result is sent again and the merge keeps what is unchanged.
        """
        if st is None:
            return 0
        hw, mark = st
        row = local.execute(f"SELECT {RESULT_MARK} FROM result_stream WHERE seq = ?", (hw,))
        got = row.fetchone()
        if got is not None and got[0] == mark:
            return hw
        log.info("site %s: results were renumbered locally; comparing all again", self.cfg.site)
        return 0

    def _result_stream(self, cols: list[str], hw: int, upper: int, n: int) -> int:
        local, conn = self._local, self._pg
        pushed = 0
        while hw < upper and not self._stopping():
            rows = local.execute(
                f"SELECT seq, {', '.join(cols)} FROM result_stream"
                " WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
                (hw, upper, n),
            ).fetchall()
            if not rows:
                break
            last = int(rows[-1][0])
            mark = local.execute(
                f"SELECT {RESULT_MARK} FROM result_stream WHERE seq = ?", (last,)
            ).fetchone()[0]
            with conn.transaction():
                count = self._merge("segment_result", cols, [r[1:] for r in rows])
                self._mark("segment_result", last, mark, count)
            pushed += count
            hw = last
        return pushed

    def _whole_table(self, table: str, cols: list[str], mark: str | None, m_top: int) -> int:
        """Replace the site's rows of a small table when its digest changed."""
        local, conn = self._local, self._pg
        where = " WHERE measurement_id <= ?" if table == "subject_baseline" else ""
        args = (m_top,) if where else ()
        rows = local.execute(
            f"SELECT {', '.join(cols)} FROM {table}{where} ORDER BY 1, 2", args
        ).fetchall()
        digest = hashlib.sha256(repr(rows).encode()).hexdigest()
        if digest == mark:
            return 0
        with conn.transaction():
            count = self._merge(table, cols, rows, prune=True)
            self._mark(table, 0, digest, count)
        return count

    # -- central writes --------------------------------------------------------
    def _merge(
        self,
        table: str,
        cols: Sequence[str],
        rows: Sequence[Row],
        *,
        prune: bool = False,
        fresh: bool = False,
    ) -> int:
        """COPY rows into a staging table, merge them on the natural key; rows changed.

        A table is merged at most once per transaction: its staging table (``ON COMMIT
        DELETE ROWS``) is empty again at the commit.

        ``prune``: the rows are the site's whole table; delete the site's other rows.
        ``fresh``: none of the rows can be there (a plain INSERT, no conflict check).
        """
        if not rows and not prune:
            return 0
        conn, site = self._pg, self._site_no
        t = sql.Identifier(table)
        stage = sql.Identifier(f"stage_{table}")
        collist = sql.SQL(", ").join(sql.Identifier(c) for c in cols)
        if table not in self._staged:
            conn.execute(
                sql.SQL(
                    "CREATE TEMP TABLE IF NOT EXISTS {} ON COMMIT DELETE ROWS AS"
                    " SELECT {} FROM {} WITH NO DATA"
                ).format(stage, collist, t)
            )
            self._staged.add(table)
        with conn.cursor() as cur:
            copy = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(stage, collist)
            with cur.copy(copy) as cp:
                cp.set_types(self._types[table])
                for r in rows:
                    cp.write_row(r)
            keys = KEYS[table]
            conflict = sql.SQL(", ").join(sql.Identifier(k) for k in ("site", *keys))
            action: sql.Composable
            if table in MUTABLE:
                rest = [c for c in cols if c not in keys]
                action = sql.SQL(
                    "DO UPDATE SET ({}) = ROW({}) WHERE ({}) IS DISTINCT FROM ({})"
                ).format(
                    sql.SQL(", ").join(sql.Identifier(c) for c in rest),
                    sql.SQL(", ").join(
                        sql.SQL("excluded.{}").format(sql.Identifier(c)) for c in rest
                    ),
                    sql.SQL(", ").join(sql.SQL("{}.{}").format(t, sql.Identifier(c)) for c in rest),
                    sql.SQL(", ").join(
                        sql.SQL("excluded.{}").format(sql.Identifier(c)) for c in rest
                    ),
                )
            else:
                action = sql.SQL("DO NOTHING")
            on = sql.SQL("") if fresh else sql.SQL(" ON CONFLICT ({}) {}").format(conflict, action)
            order = sql.SQL(" ORDER BY pseudonym") if table == "subject" else sql.SQL("")
            cur.execute(
                sql.SQL(
                    "INSERT INTO {t} (site, {cols}) SELECT %s, {cols} FROM {stage}{order}{on}"
                ).format(t=t, cols=collist, stage=stage, order=order, on=on),
                (site,),
            )
            changed = cur.rowcount
            if prune:
                match = sql.SQL(" AND ").join(
                    sql.SQL("s.{k} = {t}.{k}").format(k=sql.Identifier(k), t=t) for k in keys
                )
                cur.execute(
                    sql.SQL(
                        "DELETE FROM {t} WHERE site = %s AND NOT EXISTS"
                        " (SELECT 1 FROM {stage} s WHERE {match})"
                    ).format(t=t, stage=stage, match=match),
                    (site,),
                )
                changed += cur.rowcount
        return changed

    def _mark(self, stream: str, high: int, mark: str | None, rows: int) -> None:
        self._pg.execute(
            "INSERT INTO sync_state (site, stream, high_water, mark, rows_pushed)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (site, stream) DO UPDATE SET"
            " high_water = excluded.high_water, mark = excluded.mark,"
            " rows_pushed = sync_state.rows_pushed + excluded.rows_pushed, updated_at = now()",
            (self._site_no, stream, high, mark, rows),
        )
        if self.before_commit is not None:
            self.before_commit(stream, high)


# -- the service loop -------------------------------------------------------------
class Follower:
    """``bia-acq sync --follow``: passes forever; one log line per change of state.

    States: ``connected``, ``catching up N rows``, ``up to date``, ``server
    unreachable``, ``retrying in N s``. ``status`` receives each state's text
    (systemd STATUS=).
    """

    def __init__(
        self,
        pusher: Pusher,
        stop: threading.Event,
        status: Callable[[str], None] = lambda _s: None,
        max_backoff_s: float = 300.0,
    ) -> None:
        self.pusher = pusher
        self.stop = stop
        self.status = status
        self.max_backoff_s = max_backoff_s
        self.state = ""
        pusher.on_backlog = self._backlog
        pusher.stop = stop  # a long catch-up ends at the next batch, not the pass's end

    def _say(self, state: str, detail: str = "", level: int = logging.INFO) -> None:
        text = f"site {self.pusher.cfg.site}: {state}"
        self.status(text)
        if state != self.state:
            self.state = state
            log.log(level, "%s%s", text, f" ({detail})" if detail else "")

    def _backlog(self, rows: int) -> None:
        if self.state in ("", "refused", "server unreachable", "local database unreadable") or (
            self.state.startswith("retrying")
        ):
            self._say("connected", self.pusher.cfg.where())
        if rows:
            self._say(f"catching up {rows} rows")

    def run(self) -> None:
        failures = 0
        while not self.stop.is_set():
            try:
                result = self.pusher.run_pass()
            except (*TRANSIENT, StorageError, SyncError, psycopg.Error) as exc:
                failures += 1
                if isinstance(exc, TRANSIENT):
                    state, wait = "server unreachable", 2.0 ** (failures - 1)
                else:  # needs a person: retry less often
                    state = (
                        "local database unreadable" if isinstance(exc, StorageError) else "refused"
                    )
                    wait = max(self.pusher.cfg.interval_s, 2.0**failures)
                wait = min(self.max_backoff_s, max(self.pusher.cfg.interval_s, 1.0), wait)
                self._say(state, one_line(exc), logging.WARNING)
                self._say(f"retrying in {wait:g} s")
                self.stop.wait(wait)
                continue
            failures = 0
            self._say("up to date", f"{result.rows} rows in {result.seconds:.1f} s")
            self.stop.wait(self.pusher.cfg.interval_s)


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
