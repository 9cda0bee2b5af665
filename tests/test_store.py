"""The store: a real SQLite file in WAL mode; journal first; nothing twice; read-only readers."""

from __future__ import annotations

import sqlite3
import stat
import time
from pathlib import Path

import pytest
from conftest import EXAMPLE_FRAME

from bia_acq.acquire import Batch, Ingest
from bia_acq.config import Config, PortConfig
from bia_acq.drivers import get_profile
from bia_acq.errors import StorageError
from bia_acq.protocols.base import Chunk
from bia_acq.service import Service
from bia_acq.store.db import open_readonly, open_writer
from bia_acq.store.schema import segment_result_columns
from bia_acq.store.writer import Store


def _port() -> PortConfig:
    profile = get_profile("tanita-mc780")
    return PortConfig("p1", "loop://", profile.name, profile, profile.serial)


def _ingest(path: Path) -> tuple[Store, Ingest]:
    store = Store(open_writer(path, report_method="hanai-bis"))
    ingest = Ingest(store, "hanai-bis")
    ingest.add_port(_port())
    return store, ingest


def test_new_database_is_owner_only_wal_strict_with_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    db = open_writer(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    sql = {
        r[0]: r[1] for r in db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
    }
    for table in (
        "device",
        "subject",
        "raw_frame",
        "measurement_row",
        "impedance_row",
        "result",
        "label",
    ):
        assert "STRICT" in sql[table].rsplit(")", 1)[-1].upper(), table
    with pytest.raises(sqlite3.IntegrityError):
        db.execute(
            "INSERT INTO impedance (measurement_id, segment, freq_khz, r_ohm, x_ohm)"
            " VALUES (999, 'right_arm', 50.0, 1.0, -1.0)"
        )
    db.close()


def test_frames_are_journaled_decoded_and_never_stored_twice(tmp_path: Path) -> None:
    store, ingest = _ingest(tmp_path / "a.db")
    now = time.time()
    bad = EXAMPLE_FRAME.replace(b"Wk,71.4", b"Wk,71.5")
    ingest.handle(
        Batch(
            "p1",
            "tanita-mc780",
            [Chunk("junk", b"\x00\x01"), Chunk("frame", EXAMPLE_FRAME), Chunk("frame", bad)],
            now,
        )
    )
    ingest.handle(
        Batch("p1", "tanita-mc780", [Chunk("frame", EXAMPLE_FRAME)], now + 5)
    )  # a replayed frame
    c = store.conn
    rows = c.execute(
        "SELECT kind, status, reason, error_offset FROM raw_frame ORDER BY id"
    ).fetchall()
    assert rows[0] == ("junk", "discarded", None, None)
    assert rows[1][:2] == ("frame", "decoded")
    assert (
        rows[2][:2] == ("frame", "rejected")
        and "checksum" in rows[2][2]
        and rows[2][3] == len(bad) - 4
    )
    assert rows[3][:2] == ("frame", "duplicate")
    assert c.execute("SELECT count(*) FROM measurement").fetchone() == (1,)
    assert c.execute("SELECT count(*) FROM impedance").fetchone() == (12,)
    assert (
        bytes(c.execute("SELECT data FROM raw_frame WHERE id = 3").fetchone()[0]) == bad
    )  # kept as received
    wide = c.execute(
        "SELECT subject_external_id, whole_body_ecw_tbw_ratio, device_clock FROM v_measurement_wide"
    ).fetchall()
    assert len(wide) == 1 and wide[0][0] == "0000000000000042" and 0.3 < wide[0][1] < 0.5
    assert wide[0][2] == "2026-11-03T09:41:00"
    store.db.close()


def test_pending_frames_left_by_a_crash_are_decoded_at_start(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    store = Store(open_writer(path))
    store.journal("p1", "tanita-mc780", [Chunk("frame", EXAMPLE_FRAME)], time.time())
    store.db.close()  # "crash" between journal and decode
    service = Service(Config(database=path, ports=()))
    service.start()
    assert service.recovered.wait(10)
    service.stop()
    db = sqlite3.connect(path)
    assert db.execute("SELECT status FROM raw_frame").fetchall() == [("decoded",)]
    assert db.execute("SELECT count(*) FROM measurement").fetchone() == (1,)


def test_readers_open_read_only(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    open_writer(path).close()
    ro = open_readonly(path)
    assert ro.execute("SELECT count(*) FROM v_measurement_wide").fetchone()[0] == 0
    with pytest.raises(sqlite3.OperationalError):
        ro.execute("DELETE FROM raw_frame")
    ro.close()
    with pytest.raises(StorageError, match="does not exist"):
        open_readonly(tmp_path / "missing.db")


def test_a_database_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    db = open_writer(path)
    db.execute(
        "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES ('bia_acq', 'm999_future', 'x')"
    )
    db.close()
    with pytest.raises(StorageError, match="newer"):
        open_writer(path)


def test_pseudonyms_are_stable_and_not_the_id(tmp_path: Path) -> None:
    store = Store(open_writer(tmp_path / "a.db"))
    p = store.pseudonym("0000000000000042")
    assert (
        p == store.pseudonym("0000000000000042") and p.startswith("P-") and len(p) == 34
    )  # 128 bits
    assert p != store.pseudonym("0000000000000043")
    store.db.close()


def test_a_writer_transaction_holds_the_write_lock_from_its_start(tmp_path: Path) -> None:
    # a transaction that reads first (an import's batch) must not leave another writer a
    # window in which to commit: upgrading its read lock later fails at once with "database
    # is locked" (no busy wait), so it takes the write lock at BEGIN and waits there
    path = tmp_path / "a.db"
    db = open_writer(path)
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        with db.atomic():
            db.execute("SELECT count(*) FROM raw_frame").fetchone()
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
            db.execute("UPDATE meta SET value = value WHERE key = 'report_method'")
        other.execute("BEGIN IMMEDIATE")  # released at commit
        other.execute("ROLLBACK")
    finally:
        other.close()
        db.close()


def test_segment_result_reads_and_writes_through_the_packed_table(tmp_path: Path) -> None:
    """segment_result (a view since m009) takes INSERT, INSERT OR REPLACE, UPDATE and
    DELETE as the table did; texts are stored once, as labels."""
    store, ingest = _ingest(tmp_path / "a.db")
    ingest.handle(Batch("p1", "tanita-mc780", [Chunk("frame", EXAMPLE_FRAME)], time.time()))
    c = store.conn
    cols = [r[1] for r in c.execute("PRAGMA table_info(segment_result)")]
    rows = c.execute("SELECT * FROM segment_result ORDER BY segment, method").fetchall()
    assert rows and cols[:4] == ["measurement_id", "segment", "method", "method_version"]
    labelled = [k for k, (_, lab) in enumerate(segment_result_columns()) if lab]
    texts = {r[k] for r in rows for k in labelled} - {None}
    assert len(texts) < len(rows) * len(labelled)  # texts repeat: each is one label
    assert c.execute(  # the labels of results (m011 adds the device values' keys)
        "SELECT count(*) FROM label WHERE id NOT IN"
        " (SELECT value_keys FROM measurement_row WHERE value_keys IS NOT NULL)"
    ).fetchone()[0] == len(texts)
    with store.db.atomic():
        c.execute("DELETE FROM segment_result WHERE method = 'hanai-bis'")
    assert (
        c.execute("SELECT count(*) FROM segment_result WHERE method = 'hanai-bis'").fetchone()[0]
        == 0
    )
    with store.db.atomic():
        c.executemany(
            f"INSERT INTO segment_result VALUES ({', '.join('?' * len(cols))})",
            [r for r in rows if r[2] == "hanai-bis"],
        )
    assert c.execute("SELECT * FROM segment_result ORDER BY segment, method").fetchall() == rows
    with pytest.raises(sqlite3.IntegrityError), store.db.atomic():  # the key is unique
        c.execute(f"INSERT INTO segment_result VALUES ({', '.join('?' * len(cols))})", rows[0])
    with store.db.atomic():
        c.execute(
            f"INSERT OR REPLACE INTO segment_result VALUES ({', '.join('?' * len(cols))})",
            (*rows[0][:14], "a new label", *rows[0][15:]),
        )
        c.execute(
            "UPDATE segment_result SET fit_status = 'another', r0_ohm = 1.5"
            " WHERE measurement_id = ? AND segment = ? AND method = ?",
            rows[1][:3],
        )
    got = c.execute("SELECT * FROM segment_result ORDER BY segment, method").fetchall()
    assert got[0] == (*rows[0][:14], "a new label", *rows[0][15:])
    i, j = cols.index("fit_status"), cols.index("r0_ohm")
    assert (got[1][i], got[1][j]) == ("another", 1.5)
    assert got[2:] == rows[2:]


def test_a_rolled_back_label_is_never_referenced(tmp_path: Path) -> None:
    """Label ids are looked up in each transaction: one made in a rolled-back savepoint
    is made again, not reused (so no result points at a missing label)."""
    store = Store(open_writer(tmp_path / "a.db"))
    with store.db.atomic():
        with pytest.raises(RuntimeError), store.db.atomic():
            assert store.label_ids(["only in the savepoint"])
            raise RuntimeError
        ids = store.label_ids(["only in the savepoint"])
    (text,) = store.conn.execute(
        "SELECT text FROM label WHERE id = ?", (ids["only in the savepoint"],)
    ).fetchone()
    assert text == "only in the savepoint"


#: device values the measurement view must give back as the writer's text would be
ODD_VALUES: list[dict[str, object]] = [
    {},
    {'Körper/Wasser "x"\n': 0.1 + 0.2, "a": 1e-05, "b": -0.0, "c": 10**20, "d": "7 %"},
    {"t": True, "f": False, "n": None, "big": 1e16, "tiny": 5e-324, "s": "é\u2028"},
    {"nan": float("nan"), "x": 1.5},  # not JSON SQLite reads: kept as its text
]


def test_measurement_view_gives_the_texts_the_writer_was_given(tmp_path: Path) -> None:
    """measurement (a view since m011): device values, warnings, hash and times as the
    writer would have stored them before m011 (json.dumps(values, sort_keys=True))."""
    import hashlib
    import json

    from bia_acq.model import Reading
    from bia_acq.store.writer import ToSave
    from bia_acq.utc import utc_text

    store = Store(open_writer(tmp_path / "a.db"))
    notes = [[], ["one note"], ["one note"], ["für \u00b5", "two"]]
    items = [
        ToSave(
            k + 1, b"frame %d" % k, Reading(device_values=v), 1.7e9 + k / 3, [], w, 1.8e9 + k / 7
        )
        for k, (v, w) in enumerate(zip(ODD_VALUES, notes, strict=True))
    ]
    store.journal("p", "x", [Chunk("frame", it.frame) for it in items], 1.8e9)
    assert all(store.save_many("p", "x", items))
    c = store.conn
    rows = c.execute(
        "SELECT device_values_json, warnings_json, frame_sha256, measured_at_utc,"
        " received_at_utc FROM measurement ORDER BY id"
    ).fetchall()
    for it, row in zip(items, rows, strict=True):
        assert row == (
            json.dumps(it.reading.device_values, sort_keys=True),
            json.dumps(it.warnings),
            hashlib.sha256(it.frame).hexdigest(),
            utc_text(it.measured_epoch or 0),
            utc_text(it.received_epoch),
        )
    packed = c.execute(
        "SELECT value_keys IS NOT NULL, device_values_json IS NULL, typeof(frame_sha256),"
        " measured_at_utc, received_at_utc FROM measurement_row ORDER BY id"
    ).fetchall()
    assert packed == [(1, 1, "blob", None, None)] * 3 + [(0, 0, "blob", None, None)]
    # the same notes twice: the second time as a label
    assert [r[0] for r in c.execute("SELECT typeof(warnings) FROM measurement_row")] == [
        "text",
        "text",
        "integer",
        "text",
    ]
    # a frame sent again is found, whether its hash is stored as bytes or as hex text
    assert store.save_many("p", "x", items[:1]) == [None]
    with store.db.atomic():
        c.execute("UPDATE measurement_row SET frame_sha256 = lower(hex(frame_sha256)) WHERE id = 2")
    assert store.save_many("p", "x", items[1:2]) == [None]
    assert c.execute("SELECT count(*) FROM measurement").fetchone() == (4,)
    store.db.close()


def test_measurement_reads_and_writes_through_the_packed_table(tmp_path: Path) -> None:
    """INSERT, UPDATE and DELETE on the measurement view act on measurement_row, and
    what is read back is what was written."""
    store, ingest = _ingest(tmp_path / "a.db")
    ingest.handle(Batch("p1", "tanita-mc780", [Chunk("frame", EXAMPLE_FRAME)], time.time()))
    c = store.conn
    (old,) = c.execute("SELECT * FROM measurement").fetchall()
    new = (
        None,
        *old[1:4],
        "ab" * 32,
        "2026-01-02T03:04:05",
        "2026-01-02 03:04:05",  # not the epoch's text: kept as it is
        *old[7:14],
        '{"b": [1, 2], "a": 1}',
        '["x"]',
    )
    with store.db.atomic():
        c.execute(f"INSERT INTO measurement VALUES ({', '.join('?' for _ in new)})", new)
    got = c.execute("SELECT * FROM measurement WHERE id = 2").fetchone()
    assert got == (2, *new[1:])
    with store.db.atomic():
        c.execute("UPDATE measurement SET weight_kg = 50.5, warnings_json = '[]' WHERE id = 1")
    assert c.execute("SELECT * FROM measurement WHERE id = 1").fetchone() == (
        *old[:13],
        50.5,
        old[14],
        "[]",
    )
    assert c.execute("SELECT value_keys IS NOT NULL FROM measurement_row WHERE id = 1").fetchone()[
        0
    ]
    with store.db.atomic():
        c.execute("UPDATE measurement SET device_values_json = '{\"Name\": 1}' WHERE id = 1")
        c.execute("DELETE FROM measurement WHERE id = 2")
    assert c.execute("SELECT id, device_values_json FROM measurement").fetchall() == [
        (1, '{"Name": 1}')
    ]
    store.db.close()


def test_a_pseudonym_collision_rejects_the_frame_and_stores_none_of_its_batch(
    tmp_path: Path,
) -> None:
    """Two patient IDs mapping to one pseudonym: the batch is refused, never stored under
    the other patient (subjects are looked up together, in one query)."""
    from bia_acq.model import Reading
    from bia_acq.store.writer import PseudonymCollision, ToSave

    store = Store(open_writer(tmp_path / "a.db"))
    with store.db.atomic():
        store.conn.execute(
            "INSERT INTO subject (external_id, pseudonym, first_seen_utc) VALUES ('x', ?, '')",
            (store.pseudonym("0042"),),
        )
    items = [
        ToSave(k + 1, b"f%d" % k, Reading(subject_id=s), None, [], [], 1.8e9)
        for k, s in enumerate(("0041", "0042"))
    ]
    store.journal("p", "x", [Chunk("frame", it.frame) for it in items], 1.8e9)
    with pytest.raises(PseudonymCollision):
        store.save_many("p", "x", items)
    assert store.conn.execute("SELECT external_id FROM subject").fetchall() == [("x",)]
    saved = store.save_many("p", "x", items[:1])  # the other one alone is stored
    assert saved[0] is not None and saved[0].subject_pseudonym == store.pseudonym("0041")
    store.db.close()


def test_impedance_reads_and_writes_through_the_packed_table(tmp_path: Path) -> None:
    """impedance (a view since m012): segments stored as labels, read back as names;
    INSERT, UPDATE and DELETE on the view act on impedance_row."""
    store, ingest = _ingest(tmp_path / "a.db")
    ingest.handle(Batch("p1", "tanita-mc780", [Chunk("frame", EXAMPLE_FRAME)], time.time()))
    c = store.conn
    points = c.execute("SELECT * FROM impedance ORDER BY segment, freq_khz").fetchall()
    assert len(points) == 12 and {p[1] for p in points} == {
        "right_arm",
        "left_arm",
        "right_leg",
        "left_leg",
    }
    stored = c.execute(
        "SELECT l.text, i.freq_khz FROM impedance_row i JOIN label l ON l.id = i.segment"
        " ORDER BY 1, 2"
    ).fetchall()
    assert stored == [p[1:3] for p in points]
    with store.db.atomic():
        c.execute("INSERT INTO impedance VALUES (1, 'a new path', 7.0, 100.0, NULL, 1)")
        c.execute("UPDATE impedance SET r_ohm = 101.0 WHERE segment = 'a new path'")
        c.execute("DELETE FROM impedance WHERE segment = 'right_arm'")
    after = c.execute("SELECT * FROM impedance ORDER BY segment, freq_khz").fetchall()
    assert after == sorted(
        [p for p in points if p[1] != "right_arm"] + [(1, "a new path", 7.0, 101.0, None, 1)],
        key=lambda p: (p[1], p[2]),
    )
    store.db.close()
