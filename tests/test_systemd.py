"""systemd integration from the outside: a real notify socket, real signals, a real process."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon import wait_until
from ptyline import PtyLine, make_frames, write_config

from bia_acq.config import Config, PortConfig
from bia_acq.drivers import Profile, SerialSettings, get_profile
from bia_acq.protocols import base
from bia_acq.protocols.base import Chunk, Framer
from bia_acq.protocols.tanita import TanitaProtocol
from bia_acq.service import Service
from bia_acq.systemd import Notifier


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(0.05)
    yield sock
    sock.close()


def received(sock: socket.socket, seconds: float) -> list[str]:
    """Every datagram arriving within ``seconds``."""
    out: list[str] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        with contextlib.suppress(TimeoutError):
            out.append(sock.recv(4096).decode())
    return out


def wait_for(sock: socket.socket, text: str, timeout: float = 15.0) -> list[str]:
    """Datagrams up to and including the first that contains ``text``."""
    out: list[str] = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            msg = sock.recv(4096).decode()
        except TimeoutError:
            continue
        out.append(msg)
        if text in msg:
            return out
    raise AssertionError(f"no {text!r} within {timeout} s; got {out}")


def test_notifier_sends_each_message_as_one_datagram(
    tmp_path: Path, notify_socket: socket.socket
) -> None:
    n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "2000000"})
    assert n.enabled and n.watchdog_s == 2.0
    n.ready("database ok")
    n.status("port a: waiting")
    n.status("port a: waiting")  # unchanged: not sent again
    assert n.watchdog_due()
    n.watchdog()
    assert not n.watchdog_due()  # fed: the next feed is due after half the period
    n.stopping()
    n.close()
    assert received(notify_socket, 0.2) == [
        "READY=1\nSTATUS=database ok",
        "STATUS=port a: waiting",
        "WATCHDOG=1",
        "STOPPING=1",
    ]


def test_notifier_is_a_no_op_outside_systemd_and_for_another_pid(tmp_path: Path) -> None:
    n = Notifier({})
    assert not n.enabled and not n.notify("READY=1") and not n.watchdog_due()
    other = Notifier({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid() + 1)})
    assert other.watchdog_s is None  # the watchdog is meant for another process
    gone = Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    assert not gone.notify("READY=1")  # a vanished manager never breaks the service
    gone.close()


def test_abstract_socket_address(notify_socket: socket.socket) -> None:
    name = f"bia-acq-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(1)
    try:
        n = Notifier({"NOTIFY_SOCKET": "@" + name})
        n.ready()
        n.close()
        assert sock.recv(100) == b"READY=1"
    finally:
        sock.close()


# -- a hung acquisition loop stops the watchdog feed -----------------------------------
RELEASE = threading.Event()


class _HangingFramer(Framer):
    """A framer with a bug: it blocks on a BEL byte."""

    def feed(self, data: bytes, now: float | None = None) -> list[Chunk]:
        if b"\x07" in data:
            RELEASE.wait(30)
        return super().feed(data, now)


class HangingProtocol(TanitaProtocol):
    name = "hanging"

    def framer(self) -> Framer:
        return _HangingFramer(start=b"{", end=b"\r\n")


def test_a_hung_loop_stops_the_watchdog_and_recovery_resumes_it(
    tmp_path: Path, notify_socket: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(base.BUILTIN, "hanging", f"{__name__}:HangingProtocol")
    profile = Profile("hanging-test", "", "hanging", SerialSettings())
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "200000"})
    RELEASE.clear()
    with PtyLine(tmp_path / "line") as line:
        port = PortConfig("bench", str(line.link), profile.name, profile, profile.serial)
        service = Service(Config(database=tmp_path / "a.db", ports=(port,)), hung_after_s=0.5)
        service.start()
        try:
            line.wait_reader()

            def supervise(seconds: float) -> list[str]:
                out: list[str] = []
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    service.supervise(notifier)
                    out += received(notify_socket, 0.05)
                return out

            before = supervise(0.6)
            assert before.count("WATCHDOG=1") >= 3
            assert any(m.startswith("STATUS=") and "bench: connected" in m for m in before)
            line.write(b"\x07")
            supervise(0.7)  # the heartbeat goes stale after 0.5 s
            assert service.hung() == ["port bench"]
            assert "WATCHDOG=1" not in supervise(0.6)
            RELEASE.set()
            wait_until(lambda: service.hung() == [], "the loop runs again")
            assert supervise(0.4).count("WATCHDOG=1") >= 1
        finally:
            RELEASE.set()
            service.stop()
            notifier.close()


# -- the real process: READY, STATUS, WATCHDOG, SIGHUP, SIGTERM, STOPPING ------------------
def _start(config: Path, notify: Path, *extra: str) -> subprocess.Popen[bytes]:
    """``bia-acq run``; its output in files beside ``notify`` (``out``, ``err``)."""
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "NOTIFY_SOCKET": str(notify),
        "WATCHDOG_USEC": "1000000",
    }
    with (notify.parent / "out").open("wb") as out, (notify.parent / "err").open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "bia_acq", "run", "--config", str(config), *extra],
            stdout=out,
            stderr=err,
            env=env,
        )


def test_service_process_notifies_reloads_and_stops_on_sigterm(
    tmp_path: Path, notify_socket: socket.socket
) -> None:
    frames = make_frames(3, seed=4)
    db_path = tmp_path / "acq.db"
    config = write_config(
        tmp_path / "config.yaml",
        db_path,
        [{"name": "absent", "url": str(tmp_path / "not-plugged"), "driver": "tanita-mc780"}],
    )
    line = PtyLine(tmp_path / "line")
    proc = _start(config, tmp_path / "notify")
    try:
        # READY once configuration and database are open, not waiting for a device
        ready = wait_for(notify_socket, "READY=1")
        assert "database ok; absent: " in ready[-1]
        assert db_path.exists()
        wait_for(notify_socket, "absent: waiting")
        wait_for(notify_socket, "WATCHDOG=1")

        # SIGHUP: a new port comes in without a restart, the absent one goes
        line.plug()
        write_config(
            config,
            db_path,
            [{"name": "ward-3", "url": str(line.link), "driver": "tanita-mc780"}],
        )
        proc.send_signal(signal.SIGHUP)
        assert any("RELOADING=1" in m for m in wait_for(notify_socket, "READY=1"))
        line.wait_reader()
        wait_for(notify_socket, "ward-3: connected")
        line.write(frames[0])
        stored = tmp_path / "out"
        wait_until(lambda: stored.read_text().count("port=ward-3") == 1, "the frame stored")
        status = wait_for(notify_socket, "last frame")[-1]
        assert "absent" not in status and "database ok" in status

        # a broken configuration on SIGHUP keeps the running one
        config.write_text("ports: [oops\n")
        proc.send_signal(signal.SIGHUP)
        wait_for(notify_socket, "READY=1")
        line.write(frames[1])
        wait_until(lambda: stored.read_text().count("port=ward-3") == 2, "the frame stored")

        # SIGTERM in the middle of a frame: the frame is finished, committed, exit 0
        line.write(frames[2][:300])
        line.drain(60)  # the service has read the first part: it is inside the frame
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        line.write(frames[2][300:])
        assert proc.wait(timeout=60) == 0  # a bound against a hang, not a speed check
        assert any("STOPPING=1" in m for m in received(notify_socket, 0.2))
    finally:
        proc.kill()
        proc.wait()
        line.unplug()
    log = (tmp_path / "err").read_text()
    assert "reload refused" in log and "port absent: removed" in log
    db = sqlite3.connect(db_path)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert db.execute("SELECT count(*) FROM measurement").fetchone() == (3,)
    assert db.execute("SELECT kind, status FROM raw_frame").fetchall() == [("frame", "decoded")] * 3
    db.close()


def test_a_hung_writer_stops_the_watchdog_too(tmp_path: Path, notify_socket: socket.socket) -> None:
    release = threading.Event()
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "200000"})
    profile = get_profile("tanita-mc780")
    with PtyLine(tmp_path / "line") as line:
        port = PortConfig("bench", str(line.link), profile.name, profile, profile.serial)
        service = Service(
            Config(database=tmp_path / "a.db", ports=(port,)),
            hung_after_s=0.5,
            on_saved=lambda m: release.wait(30),  # a callback that never returns
        )
        service.start()
        try:
            line.wait_reader()
            fed = []
            end = time.monotonic() + 0.4
            while time.monotonic() < end:  # alive: fed
                service.supervise(notifier)
                fed += received(notify_socket, 0.05)
            line.write(make_frames(1, seed=2)[0])
            end = time.monotonic() + 1.0
            while time.monotonic() < end:  # the writer's heartbeat goes stale after 0.5 s
                service.supervise(notifier)
                received(notify_socket, 0.05)
            assert service.hung() == ["database writer"]
            late = []
            end = time.monotonic() + 0.5
            while time.monotonic() < end:
                service.supervise(notifier)
                late += received(notify_socket, 0.05)
            assert "WATCHDOG=1" in fed and "WATCHDOG=1" not in late
        finally:
            release.set()
            service.stop()
            notifier.close()
