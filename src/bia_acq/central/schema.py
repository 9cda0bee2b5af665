"""Versioned migrations of the central schema (``bia_acq`` schema in PostgreSQL).

Migrations are the package's ``migrations/NNN_name.sql`` files, applied in order,
each in its own transaction and recorded in ``bia_acq.schema_migration``; a
transaction-scoped advisory lock makes concurrent runs wait for each other.
A change of schema (such as a new result column) is a new file, never an edit of
an applied one. ``grants.sql`` is applied after them at every run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

from bia_acq.errors import BiaError

if TYPE_CHECKING:
    import psycopg

SCHEMA = "bia_acq"
#: pg_advisory_xact_lock key of `central migrate` (any constant; "bia14" in ASCII)
LOCK_KEY = 0x6269613134
GROUP_ROLES = ("bia_acq_site", "bia_acq_reader")
_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    """The packaged migrations in version order."""
    out = []
    for f in resources.files("bia_acq.central.migrations").iterdir():
        m = _NAME.match(f.name)
        if m:
            out.append(Migration(int(m.group(1)), m.group(2), f.read_text(encoding="utf-8")))
    return sorted(out, key=lambda m: m.version)


def _grants() -> str:
    return (resources.files("bia_acq.central.migrations") / "grants.sql").read_text("utf-8")


def applied(conn: psycopg.Connection[tuple[Any, ...]]) -> list[int]:
    """Versions applied to the database (empty before the first migration)."""
    row = conn.execute("SELECT to_regclass('bia_acq.schema_migration')").fetchone()
    if row is None or row[0] is None:
        return []
    return [int(r[0]) for r in conn.execute("SELECT version FROM bia_acq.schema_migration")]


def migrate(conn: psycopg.Connection[tuple[Any, ...]]) -> list[str]:
    """Create or upgrade the schema; return the names of the migrations applied now.

    Idempotent: with every migration applied it only re-applies the grants. A
    database migrated by a newer bia-acq is refused.
    """
    missing = [
        r
        for r in GROUP_ROLES
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (r,)).fetchone() is None
    ]
    conn.rollback()
    if missing:
        raise BiaError(
            f"role(s) {', '.join(missing)} missing on the central server "
            "(create them first: docs/central.md, step 2)"
        )
    known = migrations()
    done: list[str] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {SCHEMA}.schema_migration ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
    while True:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            have = set(applied(conn))
            newer = sorted(have - {m.version for m in known})
            if newer:
                raise BiaError(
                    f"the central schema has migration(s) {newer} this bia-acq does not "
                    "know: it was migrated by a newer version; upgrade bia-acq"
                )
            todo = [m for m in known if m.version not in have]
            if not todo:
                conn.execute(f"SET LOCAL search_path = {SCHEMA}")
                conn.execute(_grants().encode())
                return done
            m = todo[0]
            conn.execute(f"SET LOCAL search_path = {SCHEMA}")
            conn.execute(m.sql.encode())
            conn.execute(
                f"INSERT INTO {SCHEMA}.schema_migration (version, name) VALUES (%s, %s)",
                (m.version, m.name),
            )
            done.append(f"{m.version:03d}_{m.name}")
