"""Versioned migrations of the central schema (``bia_acq`` schema in PostgreSQL).

Migrations are the package's ``migrations/NNN_name.sql`` files, applied in order,
each in its own transaction and recorded in ``bia_acq.schema_migration``; a
transaction-scoped advisory lock makes concurrent runs wait for each other.
A change of schema is a new file, never an edit of an applied one. After them, at
every run and in one transaction: the result columns of the one definition
(:data:`bia_acq.core.estimate.RESULT_COLUMNS`) that ``segment_result`` lacks are
added, the views (``views.sql``, the local views' placeholders filled the same way)
are made anew, and ``grants.sql`` is applied. So a new result column needs no
central file: ``bia-acq central migrate`` adds it and publishes it in the views.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from string import Template
from typing import TYPE_CHECKING, Any

from bia_acq.errors import BiaError

if TYPE_CHECKING:
    import psycopg

    from bia_acq.core.estimate import ResultColumn

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


def _text(name: str) -> str:
    return (resources.files("bia_acq.central.migrations") / name).read_text("utf-8")


#: SQLite type of a result column -> PostgreSQL type
PG_TYPES = {"REAL": "double precision", "TEXT": "text", "INTEGER": "bigint"}


def view_statements(published: tuple[ResultColumn, ...] | None = None) -> list[tuple[str, str]]:
    """(name, CREATE VIEW statement) of the central views, in creation order."""
    from bia_acq.store.schema import view_placeholders

    holes = view_placeholders() if published is None else view_placeholders(published)
    text = Template(_text("views.sql")).substitute(holes)
    body = re.sub(r"(?m)^--.*\n", "", text)
    statements = [s.strip() for s in re.split(r"(?m)^;$", body) if s.strip()]
    return [(re.match(r"CREATE VIEW ([\w.]+)", s).group(1), s) for s in statements]  # type: ignore[union-attr]


def every_run(
    conn: psycopg.Connection[tuple[Any, ...]], columns: tuple[ResultColumn, ...] | None = None
) -> None:
    """Result columns of the one definition, the views anew, the grants (``columns``:
    the result columns, default the result record's)."""
    from bia_acq.core.estimate import RESULT_COLUMNS

    columns = RESULT_COLUMNS if columns is None else columns
    for c in columns:
        conn.execute(
            f"ALTER TABLE segment_result ADD COLUMN IF NOT EXISTS {c.name} {PG_TYPES[c.sql_type]}"
        )
    conn.execute("CREATE SCHEMA IF NOT EXISTS bia_acq_read")
    views = view_statements(tuple(c for c in columns if c.published))
    for name, _ in reversed(views):
        conn.execute(f"DROP VIEW IF EXISTS {name}")
    for _, statement in views:
        conn.execute(statement.encode())
    conn.execute(_text("grants.sql").encode())


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
                every_run(conn)
                return done
            m = todo[0]
            conn.execute(f"SET LOCAL search_path = {SCHEMA}")
            conn.execute(m.sql.encode())
            conn.execute(
                f"INSERT INTO {SCHEMA}.schema_migration (version, name) VALUES (%s, %s)",
                (m.version, m.name),
            )
            done.append(f"{m.version:03d}_{m.name}")
