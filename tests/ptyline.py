"""A serial line under the tests' control: a real pty whose master side the test drives.

The service opens the slave through a stable symlink (like /dev/serial/by-id/...).
The test writes bytes to the master: whole, split into pieces, with pauses; it can
pull the cable (close the master: the reader's next read fails with EIO) and plug
it back (a new pty behind the same symlink, as a USB adapter re-enumerating).
"""

from __future__ import annotations

import errno
import os
import select
import time
import tty
from pathlib import Path


class PtyLine:
    def __init__(self, link: Path) -> None:
        self.link = link
        self.master: int | None = None
        self.path = ""
        self.written = 0

    def plug(self) -> str:
        """Create a pty and point the link at it."""
        master, slave = os.openpty()
        tty.setraw(slave)
        self.path = os.ttyname(slave)
        os.close(slave)
        os.set_blocking(master, False)
        self.master = master
        tmp = self.link.with_name(self.link.name + ".tmp")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(self.path)
        tmp.replace(self.link)
        return self.path

    def unplug(self) -> None:
        """Pull the cable: close the master (the reader sees EIO) and remove the link."""
        if self.master is not None:
            os.close(self.master)
            self.master = None
        self.link.unlink(missing_ok=True)

    close = unplug

    def __enter__(self) -> PtyLine:
        self.plug()
        return self

    def __exit__(self, *exc: object) -> None:
        self.unplug()

    def reader_present(self) -> bool:
        assert self.master is not None
        p = select.poll()
        p.register(self.master, select.POLLHUP)
        return not p.poll(0)

    def wait_reader(self, timeout: float = 10.0) -> None:
        """Wait until a reader has the port open (pyserial flushes input on open)."""
        deadline = time.monotonic() + timeout
        while not self.reader_present():
            if time.monotonic() > deadline:
                raise TimeoutError(f"nobody opened {self.path} within {timeout} s")
            time.sleep(0.02)
        time.sleep(0.15)  # let the open finish (termios setup, input flush)

    def drain(self) -> None:
        """Throw away what the reader wrote to us (the line is one-way)."""
        assert self.master is not None
        try:
            while os.read(self.master, 4096):
                pass
        except OSError:
            pass

    def write(self, data: bytes, *, pieces: int = 1, pause_s: float = 0.0) -> None:
        """Write ``data`` in ``pieces`` roughly equal writes with a pause between them."""
        assert self.master is not None
        n = max(1, pieces)
        step = max(1, -(-len(data) // n))
        for i in range(0, len(data), step):
            self._write_all(data[i : i + step])
            if pause_s and i + step < len(data):
                time.sleep(pause_s)

    def _write_all(self, data: bytes) -> None:
        assert self.master is not None
        view = memoryview(data)
        while view:
            try:
                k = os.write(self.master, view)
            except BlockingIOError:
                self.drain()
                if not self.reader_present():
                    raise ConnectionError("the reader closed the port") from None
                select.select([], [self.master], [], 0.05)
                continue
            except OSError as exc:  # pragma: no cover - the reader vanished
                if exc.errno == errno.EIO:
                    raise ConnectionError("the reader closed the port") from exc
                raise
            view = view[k:]
            self.written += k

    def wait_drained(self, timeout: float = 10.0) -> None:
        """Wait until the reader took everything written (the tty queue is empty)."""
        import fcntl
        import struct
        import termios

        assert self.master is not None
        deadline = time.monotonic() + timeout
        while True:
            # bytes still queued towards the slave side
            buf = fcntl.ioctl(self.master, termios.TIOCOUTQ, b"\0\0\0\0")
            if struct.unpack("i", buf)[0] == 0 or time.monotonic() > deadline:
                return
            time.sleep(0.01)


def make_frames(n: int, seed: int = 1, driver: str = "tanita-mc780") -> list[bytes]:
    """``n`` distinct, valid frames from the simulator's population model."""
    from bia_acq.drivers import get_profile
    from bia_acq.simulator.device import VirtualAnalyzer

    sim = VirtualAnalyzer(get_profile(driver), seed=seed)
    out: list[bytes] = []
    seen: set[bytes] = set()
    while len(out) < n:
        frame = sim.codec.encode(sim.next_measurement()[1])
        if frame not in seen:
            seen.add(frame)
            out.append(frame)
    return out


def write_config(path: Path, database: Path, ports: list[dict[str, object]], **top: object) -> Path:
    """A configuration file with these ports (YAML is a superset of JSON)."""
    import json

    doc = {"database": str(database), "ports": ports, **top}
    path.write_text(json.dumps(doc, indent=1))
    return path
