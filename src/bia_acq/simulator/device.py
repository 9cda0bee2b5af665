"""A virtual analyzer: measurements encoded by the profile's own codec, on a real line.

The pieces, each usable on its own (the fault-injection suite uses them as a
library):

* an :class:`~bia_acq.simulator.endpoint.Endpoint` (new pty, real serial port,
  TCP server) carries the bytes;
* a :class:`Line` paces them at the profile's line rate (start bit, data bits,
  parity, stop bits at the profile's baud rate; ``fast`` sends as fast as the
  reader takes them), applies faults (:mod:`bia_acq.simulator.faults`) and
  hands bytes the reader sent to an ``on_read`` hook;
* :class:`VirtualAnalyzer` draws measurements from a source (a scenario's
  population, :mod:`bia_acq.simulator.population`), encodes them, sends them
  every ``interval_s`` while a reader is there, and writes what it sent and
  the ground truth to ``truth`` as JSON lines.

Polled devices: a :class:`Dialogue` set on the analyzer gets every byte the
reader sends (through :meth:`Line.service_input`) and returns the device's
answer; with ``unsolicited = False`` the analyzer sends nothing on its own and
the dialogue calls :meth:`VirtualAnalyzer.take_measurement` when the reader
asks for one.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING, Any, Protocol

import numpy as np

from bia_acq.drivers import Profile, SerialSettings
from bia_acq.errors import FrameError
from bia_acq.model import Reading
from bia_acq.simulator.endpoint import Endpoint, PtyEndpoint
from bia_acq.simulator.faults import Fault, FaultEngine, Plan, bits_per_char
from bia_acq.simulator.population import Population, Scenario, load_scenario

if TYPE_CHECKING:
    from bia_acq.simulator.pcmode import PCModeDevice

log = logging.getLogger(__name__)

DEFAULT_SCENARIO = "healthy-adults"


class Line:
    """An endpoint with the line's pacing, faults and an input hook."""

    def __init__(
        self,
        endpoint: Endpoint,
        settings: SerialSettings,
        *,
        fast: bool = False,
        faults: Sequence[Fault] = (),
        rng: np.random.Generator | None = None,
        silence_s: float = 2.0,
        on_read: Callable[[bytes], bytes | None] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.settings = settings
        self.fast = fast
        self.char_s = bits_per_char(settings) / settings.baudrate
        self.engine = FaultEngine(
            faults, settings, rng or np.random.default_rng(), silence_s=silence_s
        )
        self.on_read = on_read
        self.unplugs = 0

    def send(self, data: bytes, stop: threading.Event) -> bool:
        """Write ``data`` at the line rate (or at once if ``fast``); False if the reader left."""
        if self.fast:
            return self.endpoint.write(data, stop)
        step = max(1, round(0.01 / self.char_s))  # about 10 ms of characters per write
        t0 = time.monotonic()
        for i in range(0, len(data), step):
            piece = data[i : i + step]
            if not self.endpoint.write(piece, stop):
                return False
            due = t0 + (i + len(piece)) * self.char_s
            delay = due - time.monotonic()
            if delay > 0 and stop.wait(delay):
                return False
        return True

    def service_input(self, stop: threading.Event) -> None:
        """Pass what the reader sent to ``on_read`` and send its answer."""
        data = self.endpoint.read()
        if data and self.on_read is not None:
            answer = self.on_read(data)
            if answer:
                self.send(answer, stop)

    def wait_reader(self, stop: threading.Event, timeout_s: float | None = None) -> bool:
        """Wait until a reader has the port open and ready (Endpoint.reader_ready)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not stop.is_set():
            if self.endpoint.reader_ready():
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            stop.wait(0.02)
        return False

    def unplug(self, seconds: float, stop: threading.Event) -> None:
        """Pull the cable for ``seconds``; plug it back in at the same link/address."""
        self.unplugs += 1
        self.endpoint.drain()  # bytes already on the wire still arrive
        self.endpoint.unplug()
        log.warning("unplugged for %g s", seconds)
        stop.wait(seconds)
        address = self.endpoint.replug()
        log.warning("plugged back in at %s", address)

    def send_frame(self, n: int, frame: bytes, stop: threading.Event) -> Plan | None:
        """Send frame number ``n`` with whatever faults fire; None if the reader left."""
        plan = self.engine.plan(n, frame)
        if plan.unplug_s:
            self.unplug(plan.unplug_s, stop)
            if not self.wait_reader(stop):
                return None
        for piece, pause in plan.pieces:
            if not self.send(piece, stop):
                return None
            if pause and stop.wait(pause):
                return None
        return plan


class Dialogue(Protocol):
    """The answering side of a polled device's command dialogue.

    Optional methods, called when present: ``tick(device, now) -> bytes | None``
    about every 5 ms while a reader is connected (for answers that come later,
    such as a measurement that takes time: send it with
    :meth:`VirtualAnalyzer.send_measurement`), and ``reader_gone()`` when the
    reader closes the port. :class:`~bia_acq.simulator.pcmode.PCModeDevice` is
    the one for profiles with a ``dialogue`` (Tanita PC mode).
    """

    #: whether the device sends measurements without being asked
    unsolicited: bool

    def received(self, data: bytes, device: VirtualAnalyzer) -> bytes | None:
        """Bytes the reader sent -> the device's answer (None: no answer)."""


class VirtualAnalyzer:
    """Sends simulated measurements, encoded by the profile's own codec."""

    def __init__(
        self,
        profile: Profile,
        *,
        seed: int | None = None,
        interval_s: float = 1.0,
        count: int | None = None,
        link: str | os.PathLike[str] | None = None,
        endpoint: Endpoint | None = None,
        truth: IO[str] | None = None,
        scenario: str | os.PathLike[str] | Scenario | Population | None = None,
        faults: Sequence[Fault] = (),
        fast: bool = False,
        dialogue: Dialogue | None = None,
        on_sent: Callable[[int, dict[str, Any], Reading], None] | None = None,
    ) -> None:
        self.profile = profile
        self.codec = profile.codec()
        # separate streams: faults firing at random never change the subjects of a seed
        people, faults_seed = np.random.SeedSequence(seed).spawn(2)
        self.rng = np.random.default_rng(people)
        self.interval_s = interval_s
        self.count = count
        self.truth = truth
        self.on_sent = on_sent
        self.pcmode: PCModeDevice | None = None
        if dialogue is None and profile.dialogue is not None:
            from bia_acq.simulator.pcmode import PCModeDevice

            dialogue = self.pcmode = PCModeDevice(self)
        self.dialogue = dialogue
        self.sent = 0
        if isinstance(scenario, Population):
            self.population = scenario
        else:
            if not isinstance(scenario, Scenario):
                scenario = load_scenario(scenario or DEFAULT_SCENARIO)
            self.population = Population(scenario, profile, self.rng)
        self.endpoint = endpoint or PtyEndpoint(link)
        self.line = Line(
            self.endpoint,
            profile.serial,
            fast=fast,
            faults=faults,
            rng=np.random.default_rng(faults_seed),
            silence_s=float(getattr(self.codec.framer(), "silence_s", 2.0)),
            on_read=self._on_read if dialogue is not None else None,
        )
        self.path = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------
    def open(self) -> str:
        """Open the endpoint; return the device path or socket URL a reader uses."""
        self.path = self.endpoint.open()
        return self.path

    def close(self) -> None:
        self.endpoint.close()

    def __enter__(self) -> VirtualAnalyzer:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reader_present(self) -> bool:
        return self.endpoint.reader_present()

    def start(self) -> str:
        """Open and run in a background thread (for tests); return the path or URL."""
        path = self.open()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self.run, args=(self._stop,), name="virtual-analyzer", daemon=True
        )
        self._thread.start()
        return path

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop a :meth:`start`-ed analyzer and close it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self.close()

    # -- measurements ----------------------------------------------------------------
    def _record(self, reading: Reading, truth: dict[str, Any]) -> dict[str, Any]:
        # what the receiver decodes from the frame (rounding, polar form, |Z| only),
        # so validation matches the stored measurement exactly
        frame = self.codec.encode(reading)
        try:
            delivered = self.codec.decode(frame)
        except FrameError:
            delivered = reading
        return {"seq": self.sent + 1, "reading": delivered.to_json(), "truth": truth}

    def take_measurement(self) -> tuple[bytes, dict[str, Any], Reading]:
        """The next measurement: frame bytes, its truth record (unsent) and the reading."""
        reading, truth = self.population.next_measurement(dt.datetime.now())
        return self.codec.encode(reading), self._record(reading, truth), reading

    def next_measurement(self) -> tuple[dict[str, Any], Reading]:
        """The next measurement's truth record and reading, not encoded, not counted."""
        _, record, reading = self.take_measurement()
        return record, reading

    def send_measurement(
        self, reading: Reading, truth: dict[str, Any], stop: threading.Event | None = None
    ) -> bool:
        """Encode, send (with any faults due) and record one measurement; False if lost."""
        record = self._record(reading, truth)
        plan = self.line.send_frame(self.sent + 1, self.codec.encode(reading), stop or self._stop)
        if plan is None:
            return False  # the reader went away mid-frame: that measurement is lost
        record["faults"] = plan.fired
        record["intact"] = plan.intact
        self.record_sent(record, reading)
        return True

    def record_sent(self, record: dict[str, Any], reading: Reading) -> None:
        """Count a measurement as sent; write its truth line."""
        self.sent += 1
        record["seq"] = self.sent
        if self.truth is not None:
            self.truth.write(json.dumps(record) + "\n")
            self.truth.flush()
        if self.on_sent is not None:
            self.on_sent(self.sent, record, reading)

    def _on_read(self, data: bytes) -> bytes | None:
        assert self.dialogue is not None
        return self.dialogue.received(data, self)

    def run(self, stop: threading.Event) -> int:
        """Send until ``count`` measurements went out or ``stop`` is set."""
        if not self.path:
            self.open()
        self._stop = stop
        dialogue = self.dialogue
        unsolicited = dialogue is None or dialogue.unsolicited
        tick = getattr(dialogue, "tick", None)
        gone = getattr(dialogue, "reader_gone", None)
        present = False
        next_at = time.monotonic()
        while not stop.is_set() and (self.count is None or self.sent < self.count):
            self.line.service_input(stop)
            if not self.endpoint.reader_present():
                if present and gone is not None:
                    gone()
                present = False
                stop.wait(0.05)
                continue
            present = True
            if not self.endpoint.reader_ready():  # still opening: it would discard what we send
                stop.wait(0.005)
                continue
            if not unsolicited:
                answer = tick(self, time.monotonic()) if tick is not None else None
                if answer:
                    self.line.send(answer, stop)
                stop.wait(0.005)  # commands come at least 100 ms apart: never merge two
                continue
            delay = next_at - time.monotonic()
            if delay > 0:
                stop.wait(min(delay, 0.05))
                continue
            started = time.monotonic()
            reading, truth = self.population.next_measurement(dt.datetime.now())
            if self.send_measurement(reading, truth, stop):
                next_at = started + self.interval_s  # one every interval, frame time included
        # give the reader time to take the last bytes before the endpoint goes away
        deadline = time.monotonic() + 1.0
        while self.sent and time.monotonic() < deadline and self.endpoint.reader_present():
            time.sleep(0.05)
        return self.sent


def write_capture(
    profile: Profile,
    path: str | os.PathLike[str],
    count: int,
    *,
    seed: int | None = None,
    scenario: str | os.PathLike[str] | Scenario | None = None,
    options: dict[str, Any] | None = None,
    step: dt.timedelta = dt.timedelta(minutes=1),
) -> list[Reading]:
    """Write ``count`` simulated measurements, ``step`` apart, to a file as the device (or
    its software) keeps them: the profile's format with ``options`` over its own
    (``line_end: lf`` and ``checksum_brace`` for BC-601 SD-card lines, ``date_order:
    mdy``, a LookinBody ``column_set``); a path ending in ``.xlsx`` gets an Excel
    workbook (LookinBody 120). Returns what a receiver decodes from each."""
    import dataclasses
    from pathlib import Path

    profile = dataclasses.replace(profile, options={**profile.options, **(options or {})})
    codec = profile.codec()
    people = np.random.SeedSequence(seed).spawn(2)[0]  # the simulator's subjects of a seed
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario or DEFAULT_SCENARIO)
    population = Population(scenario, profile, np.random.default_rng(people))
    start = dt.datetime.now().replace(second=0, microsecond=0)
    readings = [population.next_measurement(start + k * step)[0] for k in range(count)]
    if str(path).lower().endswith(".xlsx"):
        write = getattr(codec, "write_workbook", None)
        if write is None:
            raise ValueError(f"profile {profile.name}: no Excel export (LookinBody profiles only)")
        write(readings, Path(path))
    else:
        Path(path).write_bytes(codec.encode_stream(readings))
    return [codec.decode(codec.encode(r)) for r in readings]
