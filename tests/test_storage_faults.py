"""Storage faults: a reader or another writer holding the database, a full database, a
read-only file. Acquisition goes on through the spool; nothing is lost or stored twice.

Everything is real: a pty the test drives, the service's threads, an SQLite file in WAL
mode, a second connection holding locks.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from daemon import wait_until
from ptyline import PtyLine, make_frames

from bia_acq.acquire import Batch, Ingest
from bia_acq.config import Config, FolderConfig, PortConfig
from bia_acq.drivers import all_profiles, get_profile
from bia_acq.protocols.base import Chunk
from bia_acq.service import Service
from bia_acq.spool import Spool, spool_path
from bia_acq.store.db import open_writer
from bia_acq.store.writer import FileCursor, Store

FRAMES = make_frames(12, seed=11)


@dataclass
class Rig:
    service: Service
    line: PtyLine
    db: Path

    @property
    def spool(self) -> Path:
        return spool_path(self.db)

    def count(self, sql: str = "SELECT count(*) FROM measurement") -> int:
        return count(self.db, sql)


def count(db: Path, sql: str = "SELECT count(*) FROM measurement") -> int:
    c = sqlite3.connect(db, timeout=5)
    try:
        return int(c.execute(sql).fetchone()[0])
    finally:
        c.close()


def start(tmp_path: Path, *, line: PtyLine | None = None) -> Rig:
    profile = get_profile("tanita-mc780")
    line = line or PtyLine(tmp_path / "line")
    if line.master is None:
        line.plug()
    port = PortConfig("p1", str(line.link), profile.name, profile, profile.serial)
    db = tmp_path / "acq.db"
    service = Service(
        Config(database=db, ports=(port,)),
        busy_timeout_ms=200,
        retry_initial_s=0.1,
        retry_max_s=0.4,
    )
    service.start()
    line.wait_reader()
    return Rig(service, line, db)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = start(tmp_path)
    yield r
    r.service.stop()
    r.line.unplug()


def assert_each_frame_once(rig: Rig, frames: list[bytes]) -> None:
    c = sqlite3.connect(rig.db)
    rows = c.execute(
        "SELECT data, status FROM raw_frame WHERE kind = 'frame' ORDER BY id"
    ).fetchall()
    assert [bytes(d) for d, _ in rows] == frames  # in order, exactly once
    assert {s for _, s in rows} == {"decoded"}
    assert c.execute("SELECT count(*) FROM measurement").fetchone() == (len(frames),)
    assert c.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    c.close()


def test_a_reader_holding_a_snapshot_never_blocks_the_writer(rig: Rig) -> None:
    reader = sqlite3.connect(f"{rig.db.as_uri()}?mode=ro", uri=True)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM measurement").fetchone() == (0,)
    for f in FRAMES[:4]:
        rig.line.write(f)
    wait_until(lambda: rig.count() == 4)
    assert reader.execute("SELECT count(*) FROM measurement").fetchone() == (0,)  # its snapshot
    reader.close()
    assert not rig.spool.exists()
    assert_each_frame_once(rig, FRAMES[:4])


def test_a_writer_lock_past_the_busy_timeout_spools_then_moves_in_order(rig: Rig) -> None:
    rig.line.write(FRAMES[0])
    wait_until(lambda: rig.count() == 1)
    other = sqlite3.connect(rig.db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another program holds the write lock
    for f in FRAMES[1:5]:
        rig.line.write(f, pieces=3, pause_s=0.01)
    wait_until(
        lambda: len(rig.service.spool) >= 1 and rig.count("SELECT count(*) FROM raw_frame") == 1
    )
    time.sleep(0.3)
    assert rig.count() == 1
    assert stat.S_IMODE(rig.spool.stat().st_mode) == 0o600
    assert "database unavailable" in rig.service.describe()
    other.execute("ROLLBACK")
    other.close()
    wait_until(lambda: not rig.spool.exists() and rig.count() == 5)
    rig.line.write(FRAMES[5])  # and acquisition goes on normally
    wait_until(lambda: rig.count() == 6)
    assert "database ok" in rig.service.describe()
    assert_each_frame_once(rig, FRAMES[:6])


def test_a_full_database_spools_then_moves_once_there_is_room(rig: Rig) -> None:
    store = rig.service.store
    assert store is not None
    pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
    store.conn.execute(f"PRAGMA max_page_count = {pages}")  # the disk fills up
    for f in FRAMES:
        rig.line.write(f)
    wait_until(lambda: len(rig.service.spool) >= 1)
    time.sleep(0.3)
    assert rig.count() < len(FRAMES) and "full" in (rig.service.db_problem or "")
    store.conn.execute("PRAGMA max_page_count = 1073741823")  # room again
    wait_until(lambda: not rig.spool.exists() and rig.count() == len(FRAMES))
    assert_each_frame_once(rig, FRAMES)


def _make_unwritable(path: Path) -> Callable[[], None]:
    """Make the database file read-only; return the undo. Root ignores modes: chattr +i."""
    if os.geteuid() != 0:
        path.chmod(0o400)
        return lambda: path.chmod(0o600)
    chattr = shutil.which("chattr")
    if chattr and subprocess.run([chattr, "+i", str(path)], capture_output=True).returncode == 0:
        return lambda: subprocess.run([chattr, "-i", str(path)], check=True)
    # no way to make a file read-only for root here: make it unreadable as a database
    # instead (the same path through the service: it cannot be opened for writing)
    aside = path.with_name(path.name + ".aside")
    path.replace(aside)
    path.write_bytes(b"this is not a database" * 100)
    return lambda: aside.replace(path)


def test_a_read_only_database_at_start_spools_and_moves_when_writable(tmp_path: Path) -> None:
    db = tmp_path / "acq.db"
    open_writer(db).close()
    undo = _make_unwritable(db)
    try:
        rig = start(tmp_path)
    except BaseException:
        undo()
        raise
    try:
        assert rig.service.store is None and rig.service.db_problem
        for f in FRAMES[:3]:
            rig.line.write(f)
        wait_until(lambda: len(rig.service.spool) >= 1)
        time.sleep(0.3)
        undo()
        wait_until(lambda: not rig.spool.exists())
        assert_each_frame_once(rig, FRAMES[:3])
    finally:
        rig.service.stop()
        rig.line.unplug()


def _batch(frame: bytes, key: str) -> Batch:
    return Batch(
        "p1", "tanita-mc780", [Chunk("junk", b"\x00"), Chunk("frame", frame)], 1e9, key=key
    )


def test_a_crash_in_the_middle_of_moving_the_spool_stores_nothing_twice(tmp_path: Path) -> None:
    db = tmp_path / "acq.db"
    spool = Spool(spool_path(db))
    batches = [_batch(f, f"k{i}") for i, f in enumerate(FRAMES[:5])]
    for b in batches:
        spool.append(b)
    # the first move got three batches in, then the process died before emptying the spool
    ingest = Ingest(Store(open_writer(db)), "hanai-bis", profiles=all_profiles())
    for b in batches[:3]:
        ingest.handle(b)
    assert ingest.store is not None
    ingest.store.db.close()
    # and the last record was being written when the power went
    with spool.path.open("ab") as f:
        f.write(b'{"key":"k9","port":"p1","chu')
    service = Service(Config(database=db, ports=()))
    service.start()
    wait_until(lambda: not spool.path.exists())
    service.stop()
    c = sqlite3.connect(db)
    rows = c.execute("SELECT chunk_key, kind, status FROM raw_frame ORDER BY id").fetchall()
    assert [k for k, _, _ in rows] == [f"k{i}.{j}" for i in range(5) for j in (0, 1)]
    assert c.execute("SELECT count(*) FROM measurement").fetchone() == (5,)
    c.close()
    kept = list(tmp_path.glob("acq.db.spool.damaged-*"))  # the cut record is kept aside
    assert len(kept) == 1 and kept[0].read_bytes().endswith(b'"chu')


def test_the_spool_is_private_and_group_readable_when_configured(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "a.spool")
    spool.append(_batch(FRAMES[0], "k"))
    assert stat.S_IMODE(spool.path.stat().st_mode) == 0o600
    import grp

    group = grp.getgrgid(os.getgid()).gr_name
    shared = Spool(tmp_path / "b.spool", group=group)
    shared.append(_batch(FRAMES[0], "k"))
    assert stat.S_IMODE(shared.path.stat().st_mode) == 0o640
    assert [b.chunks for b in shared.read()] == [_batch(FRAMES[0], "k").chunks]
    # what a folder source and a polled port attach travels through the spool too
    cursor = FileCursor("inbody", "/srv/export/a.csv", 2049, 77, 1234)
    b = Batch("inbody", "inbody-lookinbody-csv", [Chunk("frame", b"x\n")], 5.0, cursor, 3)
    spool.append(b)
    assert spool.read()[-1] == b


def test_a_folder_source_spools_with_its_cursor_and_resumes_after_restart(tmp_path: Path) -> None:
    lines = (Path(__file__).parent / "data" / "lookinbody-export.csv").read_bytes().split(b"\n")
    header, row1, row2 = (line + b"\n" for line in lines[:3])
    folder = tmp_path / "export"
    folder.mkdir()
    export = folder / "a.csv"
    export.write_bytes(header)
    profile = all_profiles()["inbody-lookinbody-csv"]
    db = tmp_path / "acq.db"
    config = Config(
        database=db,
        folders=(FolderConfig("inbody", folder, profile.name, profile, poll_seconds=0.1),),
    )

    def make() -> Service:
        return Service(config, busy_timeout_ms=100, retry_initial_s=0.1, retry_max_s=0.3)

    service = make()
    service.start()
    try:
        lock = sqlite3.connect(db, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        with export.open("ab") as fh:
            fh.write(row1 + row2)
        wait_until(lambda: len(service.spool) >= 1)
        lock.execute("ROLLBACK")
        lock.close()
        wait_until(lambda: not spool_path(db).exists() and count(db) == 2)
        assert count(db, "SELECT offset_bytes FROM source_file") == export.stat().st_size
    finally:
        service.stop()
    frames_before = count(db, "SELECT count(*) FROM raw_frame")
    service = make()  # a restart resumes at the cursor: nothing read twice
    service.start()
    time.sleep(0.5)
    service.stop()
    assert count(db, "SELECT count(*) FROM raw_frame") == frames_before
    assert count(db) == 2
