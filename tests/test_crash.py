"""Crash safety: SIGKILL at random moments during heavy ingest, then restart.

A real ``bia-acq run`` process reads a pty the test floods with frames; it is killed
with SIGKILL at a random moment, several times, once while the database is locked
so that it is spooling. After every kill the database passes ``integrity_check``,
every journaled frame is still there, and no measurement is half written; after the
last restart nothing is pending and the spool has been replayed.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import threading
import time
from pathlib import Path

from conftest import query
from daemon import running_service, wait_until
from ptyline import PtyLine, make_frames, write_config

from bia_acq.drivers import get_profile
from bia_acq.spool import spool_path

FRAMES = make_frames(800, seed=21)
PER_ROUND = 150  # frames offered per round: heavy, but bounded
CODEC = get_profile("tanita-mc780").codec()
RESULT_ROWS = 12  # five segments and the whole body, by hanai-bis and the device method


class Flood(threading.Thread):
    """Writes frames back to back while a reader has the port open."""

    def __init__(self, line: PtyLine, first: int) -> None:
        super().__init__(daemon=True)
        self.line = line
        self.stop = threading.Event()
        self.i = first
        self.end = first + PER_ROUND

    def run(self) -> None:
        while not self.stop.is_set() and self.i < self.end:
            if not self.line.reader_present():
                time.sleep(0.01)
                continue
            try:
                self.line.write(FRAMES[self.i])
            except (ConnectionError, OSError):
                continue
            self.i += 1


def one_port(tmp_path: Path, line: PtyLine, db_path: Path) -> Path:
    port = {"name": "p1", "url": str(line.link), "driver": "tanita-mc780"}
    return write_config(tmp_path / "config.yaml", db_path, [port])


def check(db_path: Path, before: set[str]) -> set[str]:
    """Integrity, nothing journaled lost, no half measurement; return the chunk keys."""
    db = sqlite3.connect(db_path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        keys = {k for (k,) in db.execute("SELECT chunk_key FROM raw_frame")}
        assert before <= keys, "a journaled chunk disappeared"
        for mid, data in db.execute(
            "SELECT m.id, r.data FROM measurement m JOIN raw_frame r ON r.id = m.raw_frame_id"
        ):
            n_z = db.execute(
                "SELECT count(*) FROM impedance WHERE measurement_id = ?", (mid,)
            ).fetchone()[0]
            n_r = db.execute(
                "SELECT count(*) FROM segment_result WHERE measurement_id = ?", (mid,)
            ).fetchone()[0]
            assert (n_z, n_r) == (len(CODEC.decode(bytes(data)).impedance), RESULT_ROWS)
        # a frame is decoded exactly when its measurement exists
        assert db.execute(
            "SELECT count(*) FROM raw_frame r LEFT JOIN measurement m ON m.raw_frame_id = r.id "
            "WHERE (r.status = 'decoded') != (m.id IS NOT NULL)"
        ).fetchone() == (0,)
        return keys
    finally:
        db.close()


def test_sigkill_during_heavy_ingest_loses_nothing_journaled(tmp_path: Path) -> None:
    rng = random.Random(5)
    db_path = tmp_path / "acq.db"
    with PtyLine(tmp_path / "line") as line:
        config = one_port(tmp_path, line, db_path)
        keys: set[str] = set()
        for round_ in range(4):
            spooling = round_ == 2
            flood = Flood(line, round_ * PER_ROUND)
            lock = None
            try:
                with running_service(config, line=line) as run:
                    if spooling:  # a reporting tool holds the write lock: the service spools
                        lock = sqlite3.connect(db_path, isolation_level=None)
                        lock.execute("BEGIN IMMEDIATE")
                    flood.start()
                    if spooling:
                        wait_until(lambda: spool_path(db_path).exists(), "frames spooled")
                    time.sleep(rng.uniform(0.3, 1.2))
                    run.proc.send_signal(signal.SIGKILL)
                    run.proc.wait(timeout=60)  # a bound against a hang, not a speed check
            finally:
                flood.stop.set()
                flood.join(5)
                if lock is not None:
                    lock.execute("ROLLBACK")
                    lock.close()
            assert flood.i > round_ * PER_ROUND
            keys = check(db_path, keys)
        # the last start replays the spool and decodes what was pending
        with running_service(config, line=line) as run:
            wait_until(lambda: not spool_path(db_path).exists(), "the spool replayed")
    assert run.code == 0, run.err[-2000:]
    keys = check(db_path, keys)
    db = sqlite3.connect(db_path)
    statuses = dict(
        db.execute("SELECT status, count(*) FROM raw_frame WHERE kind = 'frame' GROUP BY 1")
    )
    db.close()
    assert "pending" not in statuses
    assert "duplicate" not in statuses  # every frame sent once, stored once
    assert statuses.get("decoded", 0) > 100  # it really was heavy ingest


def pending(db_path: Path) -> int:
    return int(query(db_path, "SELECT count(*) FROM raw_frame WHERE status = 'pending'")[0][0])


def test_sigterm_with_a_backlog_exits_0_and_keeps_everything(tmp_path: Path) -> None:
    db_path = tmp_path / "acq.db"
    with PtyLine(tmp_path / "line") as line:
        config = one_port(tmp_path, line, db_path)
        flood = Flood(line, 0)
        flood.end = len(FRAMES)
        try:
            with running_service(config, line=line) as run:
                flood.start()
                time.sleep(1.0)  # the writer is behind: a queue of frames to store
                run.stop()  # SIGTERM; a bound against a hang, not a speed check
        finally:
            flood.stop.set()
            flood.join(5)
        assert run.code == 0, run.err[-2000:]
        assert "could not be kept" not in run.err and "lost" not in run.err
        keys = check(db_path, set())
        # what the stop only journaled, the next start decodes
        with running_service(config, line=line) as run:
            wait_until(lambda: pending(db_path) == 0, "the journaled frames decoded")
        assert run.code == 0, run.err[-2000:]
    check(db_path, keys)
    frames = [
        bytes(d) for (d,) in query(db_path, "SELECT data FROM raw_frame WHERE kind = 'frame'")
    ]  # type: ignore[call-overload]
    assert pending(db_path) == 0
    assert len(frames) > 100 and frames == FRAMES[: len(frames)]  # in order, none skipped
