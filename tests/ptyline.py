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
from pathlib import Path

from bia_acq.simulator.endpoint import PtyEndpoint


class PtyLine(PtyEndpoint):
    """A :class:`~bia_acq.simulator.endpoint.PtyEndpoint` the test drives by hand."""

    def __init__(self, link: Path) -> None:
        super().__init__(link)
        self.link: Path = link
        self.written = 0

    @property
    def master(self) -> int | None:
        return self._master

    def plug(self) -> str:
        """Create a pty and point the link at it."""
        return self.open()

    def unplug(self) -> None:
        """Pull the cable: close the master at once, with whatever the reader has not read
        (the reader sees EIO), and remove the link."""
        self._close_master()
        self.link.unlink(missing_ok=True)

    close = unplug

    def __enter__(self) -> PtyLine:
        self.plug()
        return self

    def forget_reader(self) -> None:
        """The reader that opened the port before is gone (its service stopped): wait for
        the next one's own flush. Without this, a service started again before anyone
        looked at the line (no hang-up seen in between) counted as opened by the old
        service's flush, and a frame written while its ``open()`` ran was thrown away."""
        self._pump()
        self._flushed, self._present_since = False, None

    def wait_reader(self, timeout: float = 10.0) -> None:
        """Wait until a reader has opened the port: it flushed its input (pyserial's
        ``open()`` does that last), so it keeps every byte written from now on."""
        deadline = time.monotonic() + timeout
        while not self.reader_opened():
            if time.monotonic() > deadline:
                raise TimeoutError(f"nobody opened {self.path} within {timeout} s")
            time.sleep(0.005)

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
                self.read()  # throw away what the reader wrote to us (the line is one-way)
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
