"""A virtual analyzer on a pseudo-terminal.

The simulator holds the master side of a pty; the slave side is a real tty that
``bia-acq run`` (or any terminal program) opens like ``/dev/ttyUSB0``. Like a
real analyzer it only talks while something listens: it sends a measurement
when a reader has the port open (the master sees no hang-up), so nothing it
sends falls into an unread buffer that pyserial flushes on open.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import errno
import json
import logging
import os
import select
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np

from bia_acq.drivers import Profile
from bia_acq.model import Reading
from bia_acq.simulator.population import CONDITIONS, Subject, make_subject, measure, truth_record

if TYPE_CHECKING:
    from bia_acq.simulator.pcmode import PCModeDevice

log = logging.getLogger(__name__)


class VirtualAnalyzer:
    """Sends simulated measurements, encoded by the profile's own codec, on a pty."""

    def __init__(
        self,
        profile: Profile,
        *,
        seed: int | None = None,
        interval_s: float = 1.0,
        count: int | None = None,
        link: str | os.PathLike[str] | None = None,
        truth: IO[str] | None = None,
        subjects: int = 6,
        on_sent: Callable[[int, Subject, Reading], None] | None = None,
    ) -> None:
        self.profile = profile
        self.codec = profile.codec()
        self.rng = np.random.default_rng(seed)
        self.interval_s = interval_s
        self.count = count
        self.link = Path(link) if link else None
        self.truth = truth
        self.on_sent = on_sent
        self.sent = 0
        opts = {**profile.options, **profile.simulator}  # the simulator section may override
        self.freqs = [float(f) for f in opts.get("frequencies_khz", [5, 50, 250])]
        self.segments = [
            str(s) for s in opts.get("segments", ["right_arm", "left_arm", "right_leg", "left_leg"])
        ]
        self.subjects = [
            make_subject(self.rng, f"{1001 + i:016d}", CONDITIONS[i % len(CONDITIONS)])
            for i in range(subjects)
        ]
        self._master: int | None = None
        self.path = ""
        self.pcmode: PCModeDevice | None = None
        if profile.dialogue is not None:
            from bia_acq.simulator.pcmode import PCModeDevice

            self.pcmode = PCModeDevice(self)

    def open(self) -> str:
        """Create the pty (and the link, if asked); return the device path."""
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no CR/LF translation, even before a reader sets it
        self.path = os.ttyname(slave)
        os.close(slave)  # readers open the path; the master then sees them come and go
        os.set_blocking(master, False)
        self._master = master
        if self.link is not None:
            tmp = self.link.with_name(self.link.name + ".tmp")
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(self.path)
            tmp.replace(self.link)
        return self.path

    def close(self) -> None:
        if self._master is not None:
            os.close(self._master)
            self._master = None
        if self.link is not None and self.link.is_symlink() and os.readlink(self.link) == self.path:
            self.link.unlink()

    def __enter__(self) -> VirtualAnalyzer:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reader_present(self) -> bool:
        """True while some process has the slave side open."""
        assert self._master is not None
        p = select.poll()
        p.register(self._master, select.POLLHUP)
        return not p.poll(0)

    def _drain(self) -> None:
        assert self._master is not None
        try:
            while os.read(self._master, 4096):
                pass
        except OSError:
            pass

    def _write_all(self, data: bytes, stop: threading.Event) -> bool:
        assert self._master is not None
        view = memoryview(data)
        while view and not stop.is_set():
            try:
                n = os.write(self._master, view)
                view = view[n:]
            except BlockingIOError:
                select.select([], [self._master], [], 0.05)
            except OSError as exc:
                if exc.errno == errno.EIO:  # reader went away mid-frame
                    return False
                raise
        return not view

    def next_measurement(self) -> tuple[Subject, Reading]:
        subject = self.subjects[int(self.rng.integers(len(self.subjects)))]
        reading = measure(
            subject,
            self.freqs,
            self.segments,
            self.rng,
            dt.datetime.now(),
            model=str(self.profile.simulator.get("model", self.profile.name)),
        )
        own = self.profile.simulator.get("device_values")
        if isinstance(own, dict):  # the device's own keys for what it computes itself
            truth = truth_record(subject)
            values: dict[str, float | int | str] = {
                str(k): round(float(truth[str(q)]), 3 if "ratio" in str(q) else 1)  # type: ignore[arg-type]
                for k, q in own.items()
            }
            reading = dataclasses.replace(reading, device_values=values)
        return subject, reading

    def record_sent(self, subject: Subject, reading: Reading) -> None:
        """Count a measurement that went out; write its truth record."""
        self.sent += 1
        if self.truth is not None:
            rec = {"seq": self.sent, "reading": reading.to_json(), "truth": truth_record(subject)}
            self.truth.write(json.dumps(rec) + "\n")
            self.truth.flush()
        if self.on_sent is not None:
            self.on_sent(self.sent, subject, reading)

    def run(self, stop: threading.Event) -> int:
        """Send until ``count`` measurements went out or ``stop`` is set."""
        if self._master is None:
            self.open()
        if self.pcmode is not None:  # a polled device: it measures when told to
            return self.pcmode.run(stop)
        next_at = time.monotonic()
        while not stop.is_set() and (self.count is None or self.sent < self.count):
            self._drain()
            if not self.reader_present():
                stop.wait(0.05)
                continue
            delay = next_at - time.monotonic()
            if delay > 0:
                stop.wait(min(delay, 0.05))
                continue
            subject, reading = self.next_measurement()
            frame = self.codec.encode(reading)
            if not self._write_all(frame, stop):
                continue
            self.record_sent(subject, reading)
            next_at = time.monotonic() + self.interval_s
        # give the reader time to take the last bytes before the pty can go away
        deadline = time.monotonic() + 1.0
        while self.sent and time.monotonic() < deadline and self.reader_present():
            time.sleep(0.05)
        return self.sent
