"""Link supervision over real ptys: absent ports, unplug and replug, stale partial frames,
a port in use, and several ports that never stop each other."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
import serial
from conftest import query
from daemon import wait_until
from ptyline import PtyLine, make_frames

from bia_acq.config import Config, PortConfig
from bia_acq.drivers import Profile, get_profile
from bia_acq.model import Reading
from bia_acq.protocols import base
from bia_acq.protocols.base import Chunk, Framer
from bia_acq.protocols.tanita import TanitaProtocol
from bia_acq.service import Service

FRAMES = make_frames(10, seed=3)
FAST = {"backoff_initial_s": 0.05, "backoff_max_s": 0.2}


def port(name: str, line: PtyLine, profile: Profile | None = None, **kw: object) -> PortConfig:
    p = profile or get_profile("tanita-mc780")
    return PortConfig(name, str(line.link), p.name, p, p.serial, **kw)  # type: ignore[arg-type]


def stored(db: Path, name: str) -> int:
    return int(
        query(
            db,
            "SELECT count(*) FROM measurement m JOIN device d ON d.id = m.device_id "
            "WHERE d.port = ?",
            name,
        )[0][0]
    )


def test_absent_port_is_waited_for_unplug_journals_the_partial_and_replug_resumes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bia_acq")
    db = tmp_path / "a.db"
    line = PtyLine(tmp_path / "analyzer")
    service = Service(Config(database=db, ports=(port("p1", line),)), reader_options=FAST)
    service.start()
    try:
        reader = service.sources["p1"]
        wait_until(lambda: reader.state == "waiting")
        time.sleep(0.6)  # several retries, one log line
        assert sum("p1: waiting" in r.getMessage() for r in caplog.records) == 1
        line.plug()
        line.wait_reader()
        line.write(FRAMES[0])
        wait_until(lambda: stored(db, "p1") == 1)
        line.write(FRAMES[1][:200])  # the cable is pulled in the middle of a frame
        wait_until(lambda: reader.framer.pending == 200)  # read, not only sent
        line.unplug()
        wait_until(lambda: reader.state == "waiting")
        assert reader.is_alive()
        line.plug()  # the adapter comes back under the same name
        line.wait_reader()
        line.write(FRAMES[2])
        wait_until(lambda: stored(db, "p1") == 2)
    finally:
        service.stop()
        line.unplug()
    assert query(db, "SELECT kind, status, reason, data FROM raw_frame ORDER BY id") == [
        ("frame", "decoded", None, FRAMES[0]),
        ("truncated", "discarded", "device disconnected inside a frame", FRAMES[1][:200]),
        ("frame", "decoded", None, FRAMES[2]),
    ]
    states = [r.getMessage().split(" (")[0] for r in caplog.records if r.name == "bia_acq.acquire"]
    assert [s for s in states if "bytes kept" not in s] == [
        "port p1: waiting",
        "port p1: connected",
        "port p1: disconnected",
        "port p1: waiting",
        "port p1: connected",
        "port p1: stopped",
    ]


def test_a_stale_partial_frame_is_dropped_after_the_configured_silence(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    with PtyLine(tmp_path / "analyzer") as line:
        service = Service(Config(database=db, ports=(port("p1", line, silence_s=0.3),)))
        service.start()
        try:
            line.wait_reader()
            line.write(FRAMES[0][:100])
            # the analyzer stopped mid-frame: the partial is journaled once silence_s passed
            wait_until(lambda: query(db, "SELECT count(*) FROM raw_frame") == [(1,)])
            line.write(FRAMES[0])  # and sends the whole frame again
            wait_until(lambda: stored(db, "p1") == 1)
        finally:
            service.stop()
    assert query(db, "SELECT kind, status, reason FROM raw_frame ORDER BY id") == [
        ("truncated", "discarded", "no bytes for 0.3 s inside a frame"),
        ("frame", "decoded", None),
    ]


def test_a_port_in_use_is_a_clear_state_and_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bia_acq")
    db = tmp_path / "a.db"
    with PtyLine(tmp_path / "analyzer") as line:
        other = serial.Serial(line.path, exclusive=True)  # another program has the port
        service = Service(Config(database=db, ports=(port("p1", line),)), reader_options=FAST)
        service.start()
        try:
            wait_until(lambda: service.sources["p1"].state == "in use")
            assert "p1: in use" in service.describe()
            other.close()
            wait_until(lambda: service.sources["p1"].state == "connected")
            line.wait_reader()
            line.write(FRAMES[0])
            wait_until(lambda: stored(db, "p1") == 1)
        finally:
            other.close()
            service.stop()
    msgs = [r.getMessage() for r in caplog.records if "p1: in use" in r.getMessage()]
    assert len(msgs) == 1 and "in use by another process" in msgs[0]


class _BuggyFramer(Framer):
    def feed(self, data: bytes, now: float | None = None) -> list[Chunk]:
        if b"\x07" in data:
            raise RuntimeError("framer bug")
        return super().feed(data, now)


class BuggyProtocol(TanitaProtocol):
    """A driver with bugs: its framer raises on BEL, its decoder on every frame."""

    name = "buggy"

    def framer(self) -> Framer:
        return _BuggyFramer(start=b"{", end=b"\r\n")

    def decode(self, frame: bytes) -> Reading:
        raise ZeroDivisionError("decoder bug")


def test_one_failing_port_or_driver_never_stops_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(base.BUILTIN, "buggy", f"{__name__}:BuggyProtocol")
    buggy = Profile("buggy-test", "", "buggy", get_profile("tanita-mc780").serial)
    db = tmp_path / "a.db"
    with PtyLine(tmp_path / "a") as a, PtyLine(tmp_path / "b") as b:
        cfg = Config(database=db, ports=(port("a", a, buggy), port("b", b)))
        service = Service(cfg, reader_options=FAST)
        service.start()
        try:
            a.wait_reader()
            b.wait_reader()
            b.write(FRAMES[0])
            a.write(FRAMES[1])  # a's decoder fails: rejected, kept
            wait_until(lambda: bool(query(db, "SELECT 1 FROM raw_frame WHERE port = 'a'")))
            a.write(b"{ab\x07cd")  # a's framer fails: a's loop restarts, the bytes are kept
            b.write(FRAMES[2])
            wait_until(lambda: stored(db, "b") == 2)
            a.unplug()  # a's cable is pulled
            b.write(FRAMES[3], pieces=5, pause_s=0.02)
            wait_until(lambda: stored(db, "b") == 3)
            assert service.sources["a"].is_alive() and service.sources["b"].is_alive()
            assert service.hung() == []
        finally:
            service.stop()
    assert query(
        db, "SELECT status, reason FROM raw_frame WHERE port = 'a' AND kind = 'frame'"
    ) == [
        ("rejected", "internal decoder error: ZeroDivisionError")  # no message: it may quote an ID
    ]
    assert query(db, "SELECT status FROM raw_frame WHERE port = 'b'") == [("decoded",)] * 3
    kept = query(db, "SELECT data FROM raw_frame WHERE port = 'a' ORDER BY id")
    assert b"".join(bytes(d) for (d,) in kept) == FRAMES[1] + b"{ab\x07cd"  # every byte


def test_a_line_waits_for_the_next_readers_own_flush_after_forget_reader(tmp_path: Path) -> None:
    # a service stopped and started again with nobody looking at the line in between: the
    # first one's flush must not count for the second, whose open() has not flushed yet
    import os
    import termios

    with PtyLine(tmp_path / "line") as line:
        first = serial.Serial(str(line.link))  # pyserial's open() ends with the flush
        line.wait_reader()
        first.close()
        fd = os.open(line.link, os.O_RDWR | os.O_NOCTTY)  # the next one, still opening
        try:
            assert line.reader_opened()  # stale: why a frame written now was lost
            line.forget_reader()
            assert line.reader_present() and not line.reader_opened()
            termios.tcflush(fd, termios.TCIFLUSH)
            assert line.reader_opened()
        finally:
            os.close(fd)
