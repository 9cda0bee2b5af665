"""Migrations: an explicit order, and databases written by earlier releases upgrade to
exactly the schema of a fresh database, their rows kept.

``tests/data/schema/vN.db`` was written by the bia-acq release whose schema had the
first N migrations (tests/data/schema/README.md says which commit and how).
"""

from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path

import pytest
from conftest import EXAMPLE_FRAME

from bia_acq.acquire import Batch, Ingest
from bia_acq.core.estimate import PUBLISHED_COLUMNS, RESULT_COLUMNS, ROW_KEYS, ResultColumn
from bia_acq.drivers import get_profile
from bia_acq.protocols.base import Chunk
from bia_acq.store.db import open_writer
from bia_acq.store.schema import MIGRATIONS, RENAMED, VIEWS, sql_text, view_statements
from bia_acq.store.writer import Store

FIXTURES = Path(__file__).parent / "data" / "schema"


def test_migrations_are_numbered_in_the_order_they_apply() -> None:
    for k, name in enumerate(MIGRATIONS, start=1):
        assert re.fullmatch(rf"m{k:03d}_[a-z0-9_]+", name), name
        assert sql_text(name).startswith(f"-- {name}\n")  # and its file exists
    assert not set(RENAMED) & set(MIGRATIONS)


def test_a_fixture_for_every_schema_version() -> None:
    """Keep them from now on: a new migration mN comes with vN.db (README there)."""
    names = sorted(p.name for p in FIXTURES.glob("v*.db"))
    assert names == sorted(f"v{k}.db" for k in range(1, len(MIGRATIONS) + 1))


def test_every_result_column_is_a_column_of_segment_result(tmp_path: Path) -> None:
    """A column added to the result record needs its migration (docs/extending.md)."""
    db = open_writer(tmp_path / "a.db")
    have = {r[1]: r[2] for r in db.execute("PRAGMA table_info(segment_result)")}
    db.close()
    assert set(ROW_KEYS) <= set(have)
    for c in RESULT_COLUMNS:
        assert have[c.name] == c.sql_type, c.name


def _schema(conn: sqlite3.Connection) -> dict[str, object]:
    """Tables' columns, keys and indexes, and the views' text: what a reader sees."""
    out: dict[str, object] = {}
    for name, kind, sql in conn.execute(
        "SELECT name, type, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
    ):
        if kind == "table":
            out[name] = (
                conn.execute(f"PRAGMA table_xinfo({name})").fetchall(),
                conn.execute(f"PRAGMA foreign_key_list({name})").fetchall(),
                sorted(r[1:3] for r in conn.execute(f"PRAGMA index_list({name})")),
                "STRICT" in sql.upper().rsplit(")", 1)[-1],
            )
        elif kind == "index":
            out[name] = conn.execute(f"PRAGMA index_xinfo({name})").fetchall()
        else:
            out[name] = (kind, sql)
    return out


def _rows(conn: sqlite3.Connection, table: str) -> list[tuple[object, ...]]:
    """The rows of a table or view, in an order of their own (m009 made segment_result a
    view and impedance a table without rowid)."""
    return sorted(conn.execute(f"SELECT * FROM {table}").fetchall(), key=repr)


def _by_frame(conn: sqlite3.Connection) -> dict[str, tuple[object, ...]]:
    """Per frame: what was measured, decoded from its bytes."""
    out = {}
    for row in conn.execute(
        "SELECT m.id, m.frame_sha256, m.device_clock, m.received_at_utc, m.received_at_epoch,"
        " m.sex, m.age_years, m.height_cm, m.weight_kg, m.device_values_json, s.external_id,"
        " d.model, d.serial_number FROM measurement m JOIN device d ON d.id = m.device_id"
        " LEFT JOIN subject s ON s.id = m.subject_id"
    ):
        z = conn.execute(
            "SELECT segment, freq_khz, r_ohm, x_ohm, magnitude_only FROM impedance"
            " WHERE measurement_id = ? ORDER BY segment, freq_khz",
            (row[0],),
        ).fetchall()
        out[row[1]] = (*row[1:], z)
    return out


def _results(conn: sqlite3.Connection) -> dict[tuple[object, ...], tuple[object, ...]]:
    cols = ", ".join(f"r.{c}" for c in ROW_KEYS)
    return {
        (r[0], *r[1:4]): r[4:]
        for r in conn.execute(
            f"SELECT m.frame_sha256, {cols} FROM segment_result r"
            " JOIN measurement m ON m.id = r.measurement_id"
        )
    }


@pytest.mark.parametrize("version", range(1, len(MIGRATIONS) + 1))
def test_an_earlier_database_upgrades_to_the_fresh_schema_keeping_its_rows(
    tmp_path: Path, version: int
) -> None:
    path = tmp_path / "old.db"
    shutil.copyfile(FIXTURES / f"v{version}.db", path)
    old = sqlite3.connect(path)
    tables = [
        r[0]
        for r in old.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if r[0] not in ("method", "_sqlite_migrations", "sqlite_sequence")
    ]
    # and the views under the tables' old names (m009: segment_result; m011: measurement)
    tables += [
        r[0]
        for r in old.execute(
            "SELECT name FROM sqlite_master WHERE type = 'view'"
            " AND name IN ('measurement', 'segment_result')"
        )
    ]
    before = {t: _rows(old, t) for t in tables}
    assert before["measurement"], "the fixture holds measurements"
    old.close()

    upgraded = open_writer(path)
    fresh = open_writer(tmp_path / "fresh.db")
    assert _schema(upgraded.conn) == _schema(fresh.conn)
    assert [r[0] for r in upgraded.execute("SELECT name FROM _sqlite_migrations ORDER BY id")] == [
        *MIGRATIONS
    ]
    assert {
        r[0] for r in upgraded.execute("SELECT name FROM sqlite_master WHERE type = 'view'")
    } == set(VIEWS)
    # every row kept, columns added since hold their defaults
    for t, rows in before.items():
        width = len(rows[0]) if rows else 0
        after = [r[:width] for r in _rows(upgraded.conn, t)]
        if t == "subject" and version < 8:  # m008: pseudonyms lengthened, the old one their start
            assert all(
                len(a[2]) == 34 and a[2].startswith(b[2]) for a, b in zip(after, rows, strict=True)
            )
            after = [(*a[:2], b[2], *a[3:]) for a, b in zip(after, rows, strict=True)]
        if t == "label" and version < 12:  # m011, m012 add values' keys, notes, segments
            assert set(rows) <= set(after)
            continue
        assert after == rows, t
    # the method table: this release's methods and bands, as in a fresh database
    fresh_methods = {r[:2]: r for r in fresh.execute("SELECT * FROM method")}
    cols = [r[1] for r in fresh.execute("PRAGMA table_info(method)")]
    stamp = cols.index("updated_at_utc")
    for key, row in fresh_methods.items():
        mine = upgraded.execute(
            "SELECT * FROM method WHERE name = ? AND version = ?", key
        ).fetchone()
        assert mine is not None and [*mine[:stamp], *mine[stamp + 1 :]] == [
            *row[:stamp],
            *row[stamp + 1 :],
        ]

    # the same frames, decoded by this release into the fresh database: the same rows
    profile = get_profile("tanita-mc780")
    ingest = Ingest(Store(fresh), "hanai-bis", profiles={profile.name: profile})
    for port, driver, data, epoch in upgraded.execute(
        "SELECT port, driver, data, received_at_epoch FROM raw_frame WHERE kind = 'frame'"
        " ORDER BY id"
    ):
        ingest.handle(Batch(port, driver, [Chunk("frame", bytes(data))], epoch))
    assert _by_frame(upgraded.conn) == _by_frame(fresh.conn)
    # results of a method version both hold agree (older versions compute differently)
    mine, theirs = _results(upgraded.conn), _results(fresh.conn)
    same = mine.keys() & theirs.keys()
    if version == len(MIGRATIONS):
        assert same, "the current schema's fixture holds results of a current method"
    for key in same:
        for a, b in zip(mine[key], theirs[key], strict=True):
            assert a == (pytest.approx(b, rel=1e-9) if isinstance(b, float) else b), key
    # a second open changes nothing (views and records are stable)
    upgraded.close()
    schema = _schema(fresh.conn)
    fresh.close()
    again = open_writer(path)
    assert _schema(again.conn) == schema
    again.close()


def test_a_published_result_column_reaches_every_view(tmp_path: Path) -> None:
    """What a new column with ``published=True`` gets, given its migration."""
    db = open_writer(tmp_path / "a.db")
    db.execute("ALTER TABLE result ADD COLUMN demo_l REAL")
    # the published columns already in the record (issue 12's intervals, which the trend
    # view's change-vs-MDC reads), then the new one
    demo = ResultColumn("demo_l", "REAL", published=True)
    statements = view_statements((*PUBLISHED_COLUMNS, demo))
    for name in reversed(VIEWS):
        db.execute(f"DROP VIEW {name}")
    for sql in statements.values():
        db.execute(sql)
    for view, col in (
        ("v_measurement_wide", "whole_body_demo_l"),
        ("v_edema_result", "demo_l"),
        ("v_edema_trend", "demo_l"),
        ("v_edema_latest", "demo_l"),
    ):
        names = [r[1] for r in db.execute(f"PRAGMA table_info({view})")]
        assert names[-1] == col, view
    db.close()


@pytest.mark.parametrize("version", [3, 4])
def test_reports_read_a_database_not_yet_opened_by_this_release(
    tmp_path: Path, version: int
) -> None:
    """Read-only readers accept the old name of the reader-views migration."""
    from bia_acq.errors import BiaError
    from bia_acq.report.data import require_reader_schema
    from bia_acq.store.db import open_readonly

    path = tmp_path / "old.db"
    shutil.copyfile(FIXTURES / f"v{version}.db", path)
    conn = open_readonly(path)
    try:
        if version < 4:  # written before the reader views existed
            with pytest.raises(BiaError, match="no reader views"):
                require_reader_schema(conn, path)
        else:
            require_reader_schema(conn, path)
            assert conn.execute("SELECT count(*) FROM v_edema_latest").fetchone()[0] > 0
    finally:
        conn.close()


def test_m009_readers_see_the_same_rows_before_and_after(tmp_path: Path) -> None:
    """m009 packs results and impedances; every reader view, segment_result and impedance
    give the same rows as before it, on a database written before it (v8)."""
    path = tmp_path / "v8.db"
    shutil.copyfile(FIXTURES / "v8.db", path)
    old = sqlite3.connect(path)
    readers = [v for v in VIEWS if v.startswith("v_")]
    for name in reversed(readers):  # the reader views of the release before m009
        old.execute(f"DROP VIEW IF EXISTS {name}")
    old.executescript((FIXTURES / "views_before_m009.sql").read_text())
    # other versions of the reported method: views show the highest (as text: '10' < '3')
    for mid, version in ((1, "10"), (2, "4")):
        old.execute(
            "CREATE TEMP TABLE v AS SELECT * FROM segment_result WHERE measurement_id = ?"
            " AND method = (SELECT value FROM meta WHERE key = 'report_method')",
            (mid,),
        )
        old.execute("UPDATE v SET method_version = ?, ecw_l = ecw_l + 1", (version,))
        old.execute("INSERT INTO segment_result SELECT * FROM v")
        old.execute("DROP TABLE v")
    names = (*readers, "segment_result", "impedance")
    before = {n: _rows(old, n) for n in names}
    old.commit()
    old.close()
    assert all(before[n] for n in ("v_measurement_wide", "v_edema_latest", "segment_result"))
    assert {r[15] for r in before["v_measurement_wide"]} == {"3", "4"}  # method_version
    db = open_writer(path)
    assert (
        db.conn.execute("SELECT type FROM sqlite_master WHERE name = 'segment_result'").fetchone()[
            0
        ]
        == "view"
    )
    for n in names:
        assert _rows(db.conn, n) == before[n], n
    db.close()


def test_m010_keys_of_an_earlier_import_still_find_its_chunks(tmp_path: Path) -> None:
    """Chunk keys written with the whole SHA-256 (before m010) are shortened by it, so
    importing the same file again stores nothing twice; service keys stay."""
    import hashlib

    from bia_acq import cli

    capture = tmp_path / "capture.bin"
    capture.write_bytes(b"noise\r\n" + EXAMPLE_FRAME)
    db = tmp_path / "a.db"
    args = ["import", "--driver", "tanita-mc780", "--db", str(db), "--no-progress", str(capture)]
    assert cli.main(args) == 0
    conn = sqlite3.connect(db)
    with conn:  # as the release before m010 wrote them
        conn.create_function("sha", 1, lambda b: hashlib.sha256(b).hexdigest())
        conn.execute(
            "UPDATE raw_frame SET chunk_key = substr(chunk_key, 1, instr(chunk_key, '#')) || sha(data)"
        )
        conn.execute(
            "INSERT INTO raw_frame (port, driver, kind, received_at_utc, received_at_epoch, data,"
            " sha256, status, chunk_key) VALUES ('p', 'x', 'junk', '', 0, x'00', '', 'discarded', 'b.0')"
        )
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm010_short_chunk_keys'")
    old = dict(conn.execute("SELECT id, chunk_key FROM raw_frame"))
    conn.close()
    assert all(len(k.rsplit("#", 1)[1]) == 64 for k in old.values() if k.startswith("file:"))
    assert cli.main(args) == 0  # opening the database applies m010 first
    conn = sqlite3.connect(db)
    new = dict(conn.execute("SELECT id, chunk_key FROM raw_frame"))
    conn.close()
    assert new == {
        i: k[: len(k) - 52] if k.startswith("file:") else k for i, k in old.items()
    }  # no chunk journaled twice, the service key as it was


#: device values texts m011 cannot pack as they are written (kept as text) or packs with
#: SQLite's rendering of a key (the same JSON, other text)
_ODD_DEVICE_VALUES = (
    '{"K\\u00f6rper": 0.30000000000000004, "a": 1e-05, "n": null, "s": "\\u00e9"}',
    '{"x": NaN, "y": 1}',
    '{"b": [1, 2], "a": {"c": 1}}',
)


@pytest.mark.parametrize("version", range(1, 11))
def test_m011_readers_see_the_same_rows_before_and_after(tmp_path: Path, version: int) -> None:
    """m011 packs measurements and m012 impedances; every reader view, measurement,
    segment_result and impedance give the same rows as before them; device values the same
    JSON (the same text where the writer wrote it), on a database of every release before."""
    import json

    from bia_acq.store.db import WriterDatabase, _register_pseudonym
    from bia_acq.store.schema import TRIGGERS, migrations, rename_applied

    path = tmp_path / "old.db"
    shutil.copyfile(FIXTURES / f"v{version}.db", path)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    db = WriterDatabase(conn)
    rename_applied(db)
    _register_pseudonym(conn)
    migrations.apply(db, stop_before="m011_packed_measurements")
    # the views of the release before m011 (the reader views' text is unchanged by it)
    for name in reversed(VIEWS[2:]):  # measurement and impedance: tables before m011, m012
        conn.execute(f"DROP VIEW IF EXISTS {name}")
    for name, sql in view_statements().items():
        if not name.startswith(("measurement", "impedance")):  # tables before m011, m012
            conn.execute(sql)
    assert set(TRIGGERS) - {n for (n,) in conn.execute("SELECT name FROM sqlite_master")} == {
        f"{t}_{op}" for t in ("measurement", "impedance") for op in ("insert", "update", "delete")
    }
    ids = [r[0] for r in conn.execute("SELECT id FROM measurement ORDER BY id")]
    for mid, text in zip(ids, _ODD_DEVICE_VALUES, strict=False):
        conn.execute("UPDATE measurement SET device_values_json = ? WHERE id = ?", (text, mid))
    names = (
        *[v for v in VIEWS if v.startswith("v_")],
        "measurement",
        "segment_result",
        "impedance",
    )
    before = {n: _rows(conn, n) for n in names}
    conn.close()
    assert before["v_edema_result"] or version < 4
    assert before["measurement"]

    db = open_writer(path)
    assert db.conn.execute(
        "SELECT type FROM sqlite_master WHERE name = 'measurement'"
    ).fetchone() == ("view",)
    k = [r[1] for r in db.conn.execute("PRAGMA table_info(measurement)")].index(
        "device_values_json"
    )

    def loaded(rows: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
        """Rows with the device values as the JSON they hold (NaN compares as text)."""
        return sorted(
            (
                (*r[:k], json.dumps(json.loads(str(r[k])), sort_keys=True), *r[k + 1 :])
                for r in rows
            ),
            key=repr,
        )

    for n in names:
        after = _rows(db.conn, n)
        if n != "measurement":
            assert after == before[n], n
            continue
        assert loaded(after) == loaded(before[n])
        odd = {r[0] for r in before[n] if r[k] in _ODD_DEVICE_VALUES}
        assert [r for r in after if r[0] not in odd] == [r for r in before[n] if r[0] not in odd]
        # kept as text where it cannot be packed; packed otherwise
        assert dict(
            db.conn.execute("SELECT id, device_values_json IS NOT NULL FROM measurement_row")
        ) == {r[0]: int(r[k] in _ODD_DEVICE_VALUES[1:]) for r in before[n]}
    db.close()
