"""Database schema: numbered migrations applied in order, then the reader views.

Each migration is ``store/sql/<name>.sql`` (package data), applied once, in the
order of :data:`MIGRATIONS`, in one transaction with its record in
``_sqlite_migrations`` (sqlite-utils migrations). A name's number is its place
in that order. The views (``store/sql/views.sql``) hold no data and are not
migrated: :func:`apply_views` makes them from the current code whenever their
text differs from the database's.

Tables are STRICT, foreign keys are on, timestamps are ISO-8601 UTC text and
epoch seconds side by side, units are in column names. The schema is
documented for readers in docs/analysts.md ("Database schema"); how to add a
migration is in docs/extending.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from importlib.resources import files
from string import Template

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from bia_acq.core.estimate import PUBLISHED_COLUMNS, RESULT_COLUMNS, ResultColumn

MIGRATION_SET = "bia_acq"
#: segments results are stored for (``bia_acq.core.estimate.RESULT_SEGMENTS``)
RESULT_SEGMENT_NAMES = ("right_arm", "left_arm", "trunk", "right_leg", "left_leg", "whole_body")

#: every migration, in the order it applies: ``mNNN_what``, NNN its place (from 1)
MIGRATIONS = (
    "m001_initial",
    "m002_worklist",
    "m003_chunk_key",
    "m004_reader_views",
    "m005_core",
    "m006_simulated",
    "m007_intervals_labels",
    "m008_pseudonym_128",
    "m009_packed_results",
    "m010_short_chunk_keys",
    "m011_packed_measurements",
    "m012_packed_impedance",
)

#: names databases written before the renumbering recorded (then applied in the
#: order m001, m006, m004, m002, m005); :func:`rename_applied` moves them over
RENAMED = {
    "m006_worklist": "m002_worklist",
    "m004_service": "m003_chunk_key",
    "m002_reader_views": "m004_reader_views",
}

#: the views, in the order they are made (later ones read earlier ones): the
#: measurements (m011), impedances (m012) and results (m009) under their old names, the
#: results with their
#: write order, then the reader views
VIEWS = (
    "measurement",
    "impedance",
    "segment_result",
    "result_stream",
    "v_measurement_wide",
    "v_edema_result",
    "v_edema_trend",
    "v_edema_latest",
)
#: INSTEAD OF triggers that make measurement, impedance and segment_result writable
TRIGGERS = (
    "measurement_insert",
    "measurement_update",
    "measurement_delete",
    "impedance_insert",
    "impedance_update",
    "impedance_delete",
    "segment_result_insert",
    "segment_result_update",
    "segment_result_delete",
)


def utc_sql(epoch: str) -> str:
    """SQL for the text of epoch seconds ``epoch`` as :func:`bia_acq.utc.utc_text` writes
    it (ISO-8601 UTC, milliseconds, truncated), NULL for NULL. ``measurement_row`` keeps a
    time's text only where it differs from this (m011), so it must never change."""
    ms = f"CAST({epoch} * 1000 AS INTEGER)"
    return (
        f"strftime('%Y-%m-%dT%H:%M:%S', {ms} / 1000, 'unixepoch') || printf('.%03dZ', {ms} % 1000)"
    )


def segment_result_columns(
    columns: tuple[ResultColumn, ...] = RESULT_COLUMNS,
) -> tuple[tuple[str, bool], ...]:
    """(name, stored as a label id) of every column of ``segment_result``, in its order:
    the key, the result record's columns with ``computed_at_utc`` where m001 put it
    (after ``fit_status``), later columns at the end. TEXT columns are label ids in
    the table ``result`` (m009), under the same names."""
    names = [(c.name, c.sql_type == "TEXT") for c in columns]
    k = [n for n, _ in names].index("fit_status") + 1
    return (
        ("measurement_id", False),
        ("segment", True),
        ("method", True),
        ("method_version", True),
        *names[:k],
        ("computed_at_utc", True),
        *names[k:],
    )


def _text(alias: str, c: ResultColumn) -> str:
    """Column ``c`` of the table result (``alias``) as segment_result shows it."""
    col = f"{alias}.{c.name}"
    return f"(SELECT text FROM label WHERE id = {col})" if c.sql_type == "TEXT" else col


def _result_placeholders(columns: tuple[ResultColumn, ...]) -> dict[str, str]:
    """The $placeholders of segment_result's view and triggers (views.sql)."""
    cols = segment_result_columns(columns)

    def label(expr: str) -> str:
        return f"(SELECT id FROM label WHERE text = {expr})"

    key = [n for n, _ in cols[:4]]
    sep = ",\n    "
    return {
        "result_select": sep.join(
            f"(SELECT text FROM label WHERE id = r.{n}) AS {n}" if lab else f"r.{n}"
            for n, lab in cols
        ),
        "result_names": ", ".join(n for n, _ in cols),
        "new_values": sep.join(label(f"NEW.{n}") if lab else f"NEW.{n}" for n, lab in cols),
        "new_labels": " UNION ".join(
            f"SELECT NEW.{n}{' AS t' if k == 0 else ''}"
            for k, n in enumerate(n for n, lab in cols if lab)
        ),
        "set_new": sep.join(f"{n} = {label(f'NEW.{n}') if lab else f'NEW.{n}'}" for n, lab in cols),
        "old_key": " AND ".join(
            f"{n} = {label(f'OLD.{n}')}" if n != "measurement_id" else f"{n} = OLD.{n}" for n in key
        ),
    }


def sql_text(name: str) -> str:
    """The text of ``store/sql/<name>.sql``."""
    return (files("bia_acq.store") / "sql" / f"{name}.sql").read_text(encoding="utf-8")


def _migration(name: str) -> Callable[[Database], None]:
    def run(db: Database) -> None:
        db.executescript(sql_text(name))

    run.__name__ = name
    return run


migrations = Migrations(MIGRATION_SET)
for _name in MIGRATIONS:
    migrations(name=_name)(_migration(_name))


def rename_applied(db: Database) -> None:
    """Record migrations applied under their names before the renumbering
    (:data:`RENAMED`) under their current names; a no-op read otherwise."""
    conn = db.conn
    if not conn.execute(
        "SELECT 1 FROM sqlite_master WHERE name = ?", (Migrations.migrations_table,)
    ).fetchone():
        return
    old = [
        r[0]
        for r in conn.execute(
            f"SELECT name FROM {Migrations.migrations_table} WHERE migration_set = ?",
            (MIGRATION_SET,),
        )
        if r[0] in RENAMED
    ]
    if old:
        with db.atomic():
            conn.executemany(
                f"UPDATE {Migrations.migrations_table} SET name = ?"
                " WHERE migration_set = ? AND name = ?",
                [(RENAMED[n], MIGRATION_SET, n) for n in old],
            )


def view_placeholders(
    published: tuple[ResultColumn, ...] = PUBLISHED_COLUMNS,
) -> dict[str, str]:
    """The views' $placeholders (views.sql; the central views of bia_acq.central too):
    ``published`` columns are appended to the reader views; segment_result has every
    column of the result record and any published column beyond it."""
    pairs = " ".join(
        f"WHEN '{a}' THEN '{b}'"
        for a, b in (("right_arm", "left_arm"), ("right_leg", "left_leg"))
        for a, b in ((a, b), (b, a))
    )
    names = [c.name for c in published]
    return {
        "pairs": pairs,
        "segments": ", ".join(f"('{s}')" for s in RESULT_SEGMENT_NAMES),
        "wide_extra": "".join(f",\n    wb.{n} AS whole_body_{n}" for n in names),
        "result_extra": "".join(f",\n    r.{n}" for n in names),
        "trend_extra": "".join(f",\n    t.{n}" for n in names),
        "latest_extra": "".join(f",\n    t.{n}" for n in names),
        "measured_utc": utc_sql("m.measured_at_epoch"),
        "received_utc": utc_sql("m.received_at_epoch"),
        "new_measured_utc": utc_sql("NEW.measured_at_epoch"),
        "new_received_utc": utc_sql("NEW.received_at_epoch"),
        # the same, for the local views, which read the table result (TEXT as label ids)
        "wide_extra_packed": "".join(
            f",\n    {_text('wb', c)} AS whole_body_{c.name}" for c in published
        ),
        "result_extra_packed": "".join(f",\n    {_text('r', c)} AS {c.name}" for c in published),
        **_result_placeholders(
            (*RESULT_COLUMNS, *(c for c in published if c not in RESULT_COLUMNS))
        ),
    }


@cache
def view_statements(
    published: tuple[ResultColumn, ...] = PUBLISHED_COLUMNS,
) -> dict[str, str]:
    """The CREATE statement of every view in :data:`VIEWS` and trigger in
    :data:`TRIGGERS`, placeholders filled with the result record's ``published`` columns."""
    text = Template(sql_text("views")).substitute(view_placeholders(published))
    body = re.sub(r"(?m)^--.*\n", "", text)
    statements = [s.strip() for s in re.split(r"(?m)^;$", body) if s.strip()]
    out = {re.match(r"CREATE (?:VIEW|TRIGGER) (\w+)", s).group(1): s for s in statements}  # type: ignore[union-attr]
    assert sorted(out) == sorted(VIEWS + TRIGGERS), tuple(out)
    return out


def apply_views(db: Database) -> None:
    """Make the views (and segment_result's triggers) anew when any differs from
    :func:`view_statements` (a read otherwise); in one transaction, so readers see old
    or new views. Dropping a view drops its triggers."""
    want = view_statements()
    have = dict(
        db.conn.execute("SELECT name, sql FROM sqlite_master WHERE type IN ('view', 'trigger')")
    )
    if all(have.get(name) == sql for name, sql in want.items()):
        return
    with db.atomic():
        for name in reversed(VIEWS):
            db.conn.execute(f"DROP VIEW IF EXISTS {name}")
        for sql in want.values():
            db.conn.execute(sql)


__all__ = [
    "MIGRATIONS",
    "MIGRATION_SET",
    "TRIGGERS",
    "VIEWS",
    "apply_views",
    "migrations",
    "rename_applied",
    "segment_result_columns",
    "sql_text",
    "view_statements",
]
