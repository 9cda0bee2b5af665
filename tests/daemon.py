"""``bia-acq run`` as a real process, waited for by facts: :func:`running_service`.

Ready means the service said so the way it tells systemd (``READY=1`` on
``NOTIFY_SOCKET``: configuration and database open, sources started), and, given a
:class:`~ptyline.PtyLine`, that its reader has the port open (it flushed its input).
Output goes to files, never to a pipe nobody reads (a full pipe would stop the
service's logging, and with it the service).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from ptyline import PtyLine


def wait_until(cond: Callable[[], object], what: str = "", timeout: float = 60.0) -> None:
    """Wait until ``cond()`` is true; ``timeout`` is a bound against a hang, not a speed."""
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"not in {timeout:g} s: {what or cond}")
        time.sleep(0.02)


class Daemon:
    """A started ``bia-acq run``; after :meth:`stop`, ``code``, ``out`` and ``err``."""

    def __init__(self, argv: list[str], env: dict[str, str] | None) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="bia-acq-run-"))
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        name = f"bia-acq-test-{uuid.uuid4().hex}"
        self.notify.bind(f"\0{name}")  # abstract: no path length limit, nothing to remove
        self.notify.settimeout(0.05)
        self._out = (self.folder / "stdout").open("wb")
        self._err = (self.folder / "stderr").open("wb")
        self.proc = subprocess.Popen(
            argv,
            stdout=self._out,
            stderr=self._err,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "NOTIFY_SOCKET": f"@{name}", **(env or {})},
        )
        self.code: int | None = None
        self.stopped = False
        self.out = self.err = ""

    def stderr(self) -> str:
        """What it logged so far."""
        return (self.folder / "stderr").read_text(errors="replace")

    def stdout(self) -> str:
        return (self.folder / "stdout").read_text(errors="replace")

    def wait_ready(self, timeout: float = 60.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with contextlib.suppress(TimeoutError):
                if b"READY=1" in self.notify.recv(4096):
                    # nothing reads it from now on: closed, the service's later STATUS= get
                    # ECONNREFUSED at once (an unread socket would fill after 10 datagrams,
                    # net.unix.max_dgram_qlen, and block the service's main loop in sendto)
                    self.notify.close()
                    return
            if self.proc.poll() is not None:
                break
        self.stop()
        raise AssertionError(f"the service never got ready (exit {self.code}): {self.err[-2000:]}")

    def wait_exit(self, timeout: float = 60.0) -> int | None:
        """Wait for it to end by itself (bounded); its code, None if it did not."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            return self.proc.wait(timeout=timeout)
        return None

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM (a clean stop), then SIGKILL if it has not ended within ``timeout``."""
        if self.stopped:
            return self.code if self.code is not None else -1
        self.stopped = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.code = None  # it did not stop: no exit code to trust
        finally:
            self.notify.close()
            self._out.close()
            self._err.close()
        self.out, self.err = self.stdout(), self.stderr()
        shutil.rmtree(self.folder, ignore_errors=True)
        return self.code if self.code is not None else -1


@contextlib.contextmanager
def running_service(
    config: Path,
    *args: str,
    line: PtyLine | None = None,
    script: str | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[Daemon]:
    """``bia-acq run --config CONFIG ARGS`` (or ``python -c SCRIPT run …``), ready, and
    always stopped on the way out."""
    head = ["-c", script] if script is not None else ["-m", "bia_acq"]
    if line is not None:
        line.forget_reader()  # a service that ran on this line before is not this one
    daemon = Daemon([sys.executable, *head, "run", "--config", str(config), *args], env)
    try:
        daemon.wait_ready()
        if line is not None:
            line.wait_reader(timeout=60)
        yield daemon
    finally:
        daemon.stop()


@contextlib.contextmanager
def unwritable(folder: Path) -> Iterator[list[str]]:
    """``folder`` and its files read-only, for the processes started with the yielded
    command prefix: as the sync unit has it (ProtectSystem=strict) or a reporting group.
    Mode bits, and as root no capability that overrides them (setpriv, util-linux)."""
    paths = [folder, *folder.iterdir()]
    modes = {p: p.stat().st_mode & 0o7777 for p in paths}
    for p in paths:
        p.chmod(0o500 if p.is_dir() else 0o400)
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        assert setpriv, "setpriv (util-linux) is needed to drop root's file capabilities"
        drop = "-dac_override,-dac_read_search,-fowner"
        prefix = [setpriv, "--bounding-set", drop, "--inh-caps=-all", "--"]
    try:
        yield prefix
    finally:
        for p, mode in modes.items():
            with contextlib.suppress(FileNotFoundError):
                p.chmod(mode)


def stopped_service_database(tmp_path: Path, db: Path, frames: int = 1) -> Daemon:
    """``db`` as a real ``bia-acq run`` leaves it when stopped, with ``frames`` MC-780
    measurements stored; the stopped :class:`Daemon` (its code, out and err)."""
    from ptyline import make_frames, write_config

    with PtyLine(tmp_path / "line") as line:
        port = {"name": "p1", "url": str(line.link), "driver": "tanita-mc780"}
        config = write_config(tmp_path / "c.yaml", db, [port])
        with running_service(config, line=line) as run:
            for frame in make_frames(frames, seed=5):
                line.write(frame)
            wait_until(lambda: run.stdout().count("measurement=") == frames, "frames stored")
    assert run.code == 0, run.err[-2000:]
    return run
