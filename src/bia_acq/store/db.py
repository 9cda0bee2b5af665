"""Opening the database: owner-only file, WAL, foreign keys, migrations; read-only access."""

from __future__ import annotations

import contextlib
import errno
import grp
import logging
import os
import secrets
import sqlite3
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path

from sqlite_utils import Database

from bia_acq.core.estimate import METHODS
from bia_acq.core.methods import Bands
from bia_acq.errors import StorageError
from bia_acq.store.schema import MIGRATION_SET, apply_views, migrations, rename_applied
from bia_acq.store.writer import METHOD_UPSERT, method_row

#: The method views report when no configuration chose one.
DEFAULT_METHOD = "hanai-bis"

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000


def file_mode(group: str | None) -> int:
    """0600, or 0640 when a reporting group may read (never write) the file."""
    return 0o640 if group else 0o600


def secure_file(path: Path, group: str | None = None) -> None:
    """Create ``path`` if needed with the private mode; fix mode and group if we own it.

    Patient data: owner-only (0600), or owner plus a configured reporting group,
    read-only for the group (0640). A file someone else owns is left alone.
    """
    mode = file_mode(group)
    try:
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, mode)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS) and path.exists():
            return  # read-only file: the caller finds out when it writes
        raise StorageError(
            f"cannot create {path}: {exc.strerror} "
            "(check that the folder exists and is writable by this user)"
        ) from exc
    try:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid():
            return
        gid = grp.getgrnam(group).gr_gid if group else st.st_gid
        if gid != st.st_gid:
            os.fchown(fd, -1, gid)
        if stat.S_IMODE(st.st_mode) != mode:
            log.info("%s: mode %o -> %o", path, stat.S_IMODE(st.st_mode), mode)
            os.fchmod(fd, mode)
    except (OSError, KeyError) as exc:
        raise StorageError(
            f"cannot set the owner/mode of {path}: {exc} "
            "(check database_group in the configuration)"
        ) from exc
    finally:
        os.close(fd)


class WriterDatabase(Database):
    """The writer's Database: each transaction takes the write lock when it begins.

    sqlite_utils' ``atomic()`` begins a deferred transaction; one that reads before it
    writes must then upgrade its read lock, and SQLite refuses that at once ("database is
    locked", no busy wait) while another writer (an import beside the service, a second
    import) holds the lock or has committed since the read. ``BEGIN IMMEDIATE`` waits for
    the lock, up to the busy timeout, before the first statement instead.
    """

    @contextlib.contextmanager
    def atomic(self) -> Iterator[Database]:
        if self.conn.in_transaction:  # nested: sqlite_utils' savepoint
            with super().atomic():
                yield self
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        try:
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        """Close, leaving the WAL's -wal (checkpointed: empty) and -shm files in place.

        SQLite deletes them when its last connection closes, and a reader that may not
        create files there (the sync unit's read-only file system, a reporting group)
        then cannot open the WAL database at all ("attempt to write a readonly
        database"). With them kept it can: SQLite reads the -wal itself instead of the
        untrusted -shm and holds WAL read lock 0, so a writer starting meanwhile cannot
        checkpoint under its snapshot (wal.c, walBeginShmUnreliable). That is
        SQLITE_FCNTL_PERSIST_WAL, which Python's sqlite3 cannot set: a read-only
        connection held across the close keeps it from deleting them instead.
        """
        keep = None
        with contextlib.suppress(sqlite3.Error):
            (_, _, path) = self.conn.execute("PRAGMA database_list").fetchone()
            if path and self.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                self.conn.execute("PRAGMA busy_timeout = 0")  # a reader's snapshot: keep it
                self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                keep = sqlite3.connect(f"{Path(path).as_uri()}?mode=ro", uri=True)
                keep.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone()
        try:
            self.conn.close()
        finally:
            if keep is not None:
                keep.close()


def open_writer(
    path: str | os.PathLike[str],
    *,
    report_method: str | None = None,
    group: str | None = None,
    busy_timeout_ms: int = BUSY_TIMEOUT_MS,
    bands: Mapping[str, Bands] | None = None,
) -> Database:
    """Open (creating if needed) the database for the single writer.

    The file is created owner-only; WAL and synchronous=FULL so a committed
    frame survives a power cut; pending migrations are applied; a database
    written by a newer bia-acq is refused. ``bands`` are configured thresholds
    overriding methods' own, written to the ``method`` table for readers.
    """
    p = Path(path)
    secure_file(p, group)
    for kept in (Path(f"{p}-wal"), Path(f"{p}-shm")):  # left by the last close or a crash
        if kept.exists():
            secure_file(kept, group)
    conn = None
    try:
        conn = sqlite3.connect(p, check_same_thread=False, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        db = WriterDatabase(conn)
        db.enable_wal()
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        rename_applied(db)
        _refuse_newer(db, p)
        _register_pseudonym(conn)  # m008 lengthens existing pseudonyms with the key
        migrations.apply(db)
        apply_views(db)
        with db.atomic():
            # a write first: with another writer busy (an import beside the service) this
            # waits for the lock instead of failing to upgrade a read transaction
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('pseudonym_key', ?) "
                "ON CONFLICT (key) DO NOTHING",
                [secrets.token_hex(32)],
            )
            if report_method:
                db.execute(
                    "INSERT INTO meta (key, value) VALUES ('report_method', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    [report_method],
                )
            else:  # views need one; keep whatever an earlier start chose
                db.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('report_method', ?)",
                    [DEFAULT_METHOD],
                )
            sync_methods(db, bands)
    except (sqlite3.DatabaseError, StorageError) as exc:
        if conn is not None:
            conn.close()
        if isinstance(exc, StorageError):
            raise
        raise StorageError(
            f"cannot open database {p}: {exc} "
            "(is it a bia-acq database, on a writable disk, not held by another writer?)"
        ) from exc
    return db


def _register_pseudonym(conn: sqlite3.Connection) -> None:
    """SQL function ``bia_pseudonym(external_id)``: the pseudonym under this database's
    key (NULL before the key exists, i.e. before any subject does)."""
    from bia_acq.store.writer import pseudonym

    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'pseudonym_key'").fetchone()
    except sqlite3.OperationalError:  # a new database: no meta table yet
        row = None
    key = bytes.fromhex(row[0]) if row else None

    def fn(external_id: str) -> str | None:
        return pseudonym(key, external_id) if key is not None else None

    conn.create_function("bia_pseudonym", 1, fn, deterministic=True)


def sync_methods(db: Database, bands: Mapping[str, Bands] | None = None) -> None:
    """Write every known method with its citation and the ECW/TBW bands in force to ``method``.

    Readers (views, reports, Datasette) take band limits from this table, so
    the service refreshes it at every start with the configured ``thresholds``
    overriding a method's own bands (``bands``, possibly empty); tools opened
    without the configuration (``bands=None``) only add missing rows, so they
    never undo configured limits. Rows of methods this version no longer knows
    stay, as stored results still name them.
    """
    if bands is None:  # a tool without the configuration: add what is missing only
        sql = METHOD_UPSERT.split(" ON CONFLICT")[0].replace("INSERT", "INSERT OR IGNORE", 1)
        db.conn.executemany(sql, [method_row(m, m.bands) for m in METHODS.values()])
        return
    db.conn.executemany(
        METHOD_UPSERT, [method_row(m, bands.get(m.name, m.bands)) for m in METHODS.values()]
    )


def _refuse_newer(db: Database, path: Path) -> None:
    known = {m.name for m in migrations._migrations}
    applied = {m.name for m in migrations.applied(db)}
    newer = sorted(applied - known)
    if newer:
        raise StorageError(
            f"database {path} has schema changes this bia-acq does not know "
            f"({', '.join(newer)}): it was written by a newer version; upgrade bia-acq"
        )


def open_readonly(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open the database read-only (reports, exports): never blocks the writer."""
    p = Path(path)
    if not p.exists():
        raise StorageError(
            f"database {p} does not exist (check the path: the service's database is "
            "`database:` in its configuration)"
        )
    try:
        conn = sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.row_factory = sqlite3.Row
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1")
    except sqlite3.DatabaseError as exc:
        hint = (
            ""
            if Path(f"{p}-shm").exists()
            else " (a read-only reader needs its -wal and -shm files, which bia-acq leaves"
            " when it closes: start the service once, or give write access to the folder)"
        )
        raise StorageError(f"cannot read database {p}: {exc}{hint}") from exc
    return conn


__all__ = ["MIGRATION_SET", "open_readonly", "open_writer"]


def subject_row(conn: sqlite3.Connection, key: str) -> tuple[int, str] | None:
    """(subject.id, pseudonym) whose patient ID as sent, or pseudonym, is ``key``.

    An exact patient ID wins over a pseudonym that happens to equal it.
    A pseudonym may be given as shown (its first 12 characters) when only one
    subject's starts so.
    """
    row = conn.execute(
        "SELECT id, pseudonym FROM subject WHERE external_id = ? OR pseudonym = ?"
        " ORDER BY external_id = ? DESC",
        (key, key, key),
    ).fetchone()
    if row is None and key.startswith("P-") and len(key) >= 12:
        rows = conn.execute(
            "SELECT id, pseudonym FROM subject WHERE substr(pseudonym, 1, ?) = ? LIMIT 2",
            (len(key), key),
        ).fetchall()
        row = rows[0] if len(rows) == 1 else None
    return (int(row[0]), str(row[1])) if row else None


def require_subject(conn: sqlite3.Connection, key: str, path: object) -> tuple[int, str]:
    """:func:`subject_row`, or a one-line ``--subject`` ConfigError naming the database."""
    from bia_acq.errors import ConfigError

    row = subject_row(conn, key)
    if row is None:
        raise ConfigError(
            f"--subject: no subject {key!r} in {path}",
            fix=f"give the ID the device sent or the pseudonym; `bia-acq subjects --db {path}` "
            "lists them",
        )
    return row
