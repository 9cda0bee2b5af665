"""Opening the database: owner-only file, WAL, foreign keys, migrations; read-only access."""

from __future__ import annotations

import os
import secrets
import sqlite3
from pathlib import Path

from sqlite_utils import Database

from bia_acq.errors import StorageError
from bia_acq.store.schema import MIGRATION_SET, migrations

BUSY_TIMEOUT_MS = 5000


def _create_owner_only(path: Path) -> None:
    """Create an empty database file with mode 0600 (patient data)."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise StorageError(
            f"cannot create database {path}: {exc.strerror} "
            "(check that the folder exists and is writable by this user)"
        ) from exc
    os.close(fd)


def open_writer(path: str | os.PathLike[str], *, report_method: str | None = None) -> Database:
    """Open (creating if needed) the database for the single writer.

    The file is created owner-only; WAL and synchronous=FULL so a committed
    frame survives a power cut; pending migrations are applied; a database
    written by a newer bia-acq is refused.
    """
    p = Path(path)
    _create_owner_only(p)
    try:
        conn = sqlite3.connect(p, check_same_thread=False, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        db = Database(conn)
        db.enable_wal()
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        _refuse_newer(db, p)
        migrations.apply(db)
        with db.atomic():
            if not db.execute("SELECT 1 FROM meta WHERE key = 'pseudonym_key'").fetchone():
                db.execute(
                    "INSERT INTO meta (key, value) VALUES ('pseudonym_key', ?)",
                    [secrets.token_hex(32)],
                )
            if report_method:
                db.execute(
                    "INSERT INTO meta (key, value) VALUES ('report_method', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    [report_method],
                )
    except sqlite3.DatabaseError as exc:
        raise StorageError(
            f"cannot open database {p}: {exc} "
            "(is it a bia-acq database, on a writable disk, not held by another writer?)"
        ) from exc
    return db


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
        raise StorageError(f"database {p} does not exist (run `bia-acq run --db {p}` first)")
    try:
        conn = sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.row_factory = sqlite3.Row
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1")
    except sqlite3.DatabaseError as exc:
        raise StorageError(f"cannot read database {p}: {exc}") from exc
    return conn


__all__ = ["MIGRATION_SET", "open_readonly", "open_writer"]
