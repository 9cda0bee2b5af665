"""One port's acquisition: link → framer → journal → decoder → core → store.

A :class:`PortReader` thread owns the link and the framer and hands chunks of
bytes to the writer through a bounded queue. :class:`Ingest` runs in the single
writer thread: it journals every chunk (committed before decoding), decodes the
frames, computes results for the batch at once and stores them.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
import time
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bia_acq import worklist
from bia_acq.config import PortConfig
from bia_acq.core.estimate import estimate
from bia_acq.core.methods import Bands
from bia_acq.errors import DeviceDisconnected, FrameError, TransportError
from bia_acq.link import Link
from bia_acq.model import Reading
from bia_acq.protocols.base import Chunk, Protocol
from bia_acq.store.writer import FileCursor, SavedMeasurement, Store

log = logging.getLogger(__name__)

CLOCK_WARNING_S = 15 * 60


@dataclass(frozen=True)
class Batch:
    """Chunks one port received together."""

    port: str
    chunks: list[Chunk]
    received_epoch: float
    #: for folder sources: how far the file is journaled once these chunks are
    cursor: FileCursor | None = None
    #: for polled analyzers: the work-list entry the frame in this batch was measured for
    worklist_id: int | None = None


class PortReader(threading.Thread):
    """Reads one port until stopped; reconnects with doubling backoff."""

    def __init__(
        self,
        port: PortConfig,
        out: queue.Queue[Batch | None],
        stop: threading.Event,
        *,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        read_timeout_s: float = 0.1,
    ) -> None:
        super().__init__(name=f"reader-{port.name}", daemon=True)
        self.port = port
        self.out = out
        self.stop = stop
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.link = Link(port.url, port.serial, read_timeout_s=read_timeout_s)
        self.framer = port.profile.codec().framer()
        self.state = "starting"
        self.heartbeat = time.monotonic()
        self.last_frame_at: float | None = None

    def _set_state(self, state: str, detail: str = "") -> None:
        if state != self.state:
            self.state = state
            log.info("port %s: %s%s", self.port.name, state, f" ({detail})" if detail else "")

    def _emit(self, chunks: list[Chunk]) -> None:
        if not chunks:
            return
        if any(c.kind == "frame" for c in chunks):
            self.last_frame_at = time.time()
        batch = Batch(self.port.name, chunks, time.time())
        while True:  # never drop: wait for the writer (back-pressure)
            try:
                self.out.put(batch, timeout=0.5)
                return
            except queue.Full:
                self.heartbeat = time.monotonic()

    def run(self) -> None:
        delay = self.backoff_initial_s
        while not self.stop.is_set():
            self.heartbeat = time.monotonic()
            try:
                self.link.open()
            except TransportError as exc:
                self._set_state("waiting", f"{exc}; retrying, up to every {self.backoff_max_s:g} s")
                self.stop.wait(delay)
                delay = min(delay * 2, self.backoff_max_s)
                continue
            self._set_state("connected", f"{self.port.url}, {self.port.serial.describe()}")
            try:
                self._read_until_stopped()
                delay = self.backoff_initial_s if self.last_frame_at else delay
            except DeviceDisconnected as exc:
                self._emit(self.framer.flush("device disconnected inside a frame"))
                self._set_state("disconnected", str(exc))
                if self.last_frame_at:
                    delay = self.backoff_initial_s
                self.stop.wait(delay)
            finally:
                self.link.close()
        self._emit(self.framer.flush("service stopped inside a frame"))
        self._set_state("stopped")

    def _read_until_stopped(self) -> None:
        grace_until: float | None = None
        while True:
            self.heartbeat = now = time.monotonic()
            if self.stop.is_set():
                # finish the frame in hand: keep reading briefly while one is partial
                if grace_until is None:
                    grace_until = now + 1.0
                if not self.framer.pending or now > grace_until:
                    return
            data = self.link.read()
            now = time.monotonic()
            self._emit(self.framer.feed(data, now) if data else self.framer.poll(now))


@dataclass
class PortRuntime:
    name: str
    driver: str
    codec: Protocol
    zone: dt.tzinfo | None


class Ingest:
    """Journal, decode, compute and store; runs in the writer thread only."""

    def __init__(
        self,
        store: Store,
        method: str,
        *,
        bands: Mapping[str, Bands] | None = None,
        on_saved: Callable[[SavedMeasurement], None] | None = None,
    ) -> None:
        self.store = store
        self.method = method
        self.bands = dict(bands or {})
        self._method_recorded = False
        self.on_saved = on_saved
        self.ports: dict[str, PortRuntime] = {}
        self.rejected = 0

    def add_port(self, port: PortConfig) -> None:
        zone = zoneinfo.ZoneInfo(port.timezone) if port.timezone else None
        self.ports[port.name] = PortRuntime(port.name, port.driver, port.profile.codec(), zone)

    def handle(self, batch: Batch) -> None:
        rt = self.ports[batch.port]
        with self.store.db.atomic():  # a folder's cursor moves with its journal, or not at all
            ids = self.store.journal(rt.name, rt.driver, batch.chunks, batch.received_epoch)
            if batch.cursor is not None:
                self.store.save_cursor(batch.cursor)
        frames = [(i, c.data) for i, c in zip(ids, batch.chunks, strict=True) if c.kind == "frame"]
        for c in batch.chunks:
            if c.kind != "frame":
                quiet = (c.reason or "").startswith("dialogue: ")  # a polled device's replies
                log.log(
                    logging.DEBUG if quiet else logging.WARNING,
                    "port %s: %d bytes kept as %s: %s",
                    rt.name,
                    len(c.data),
                    c.kind,
                    c.reason,
                )
        self.process(rt, frames, batch.received_epoch, worklist_id=batch.worklist_id)

    def process(
        self,
        rt: PortRuntime,
        frames: list[tuple[int, bytes]],
        received_epoch: float,
        *,
        worklist_id: int | None = None,
    ) -> None:
        decoded: list[tuple[int, bytes, Reading]] = []
        entry = worklist.get(self.store.conn, worklist_id) if worklist_id is not None else None
        entry_notes: list[str] = []
        for raw_id, data in frames:
            try:
                reading = rt.codec.decode(data)
                if entry is not None:  # measured for this work-list entry's subject
                    reading, entry_notes = worklist.attribute(reading, entry)
                decoded.append((raw_id, data, reading))
            except FrameError as exc:
                self._reject(rt, raw_id, exc.reason, exc.offset)
                if entry is not None:
                    worklist.fail(self.store.conn, entry.id, f"measurement rejected: {exc.reason}")
            except Exception as exc:  # a codec bug must not lose the frame or stop the port
                log.exception("port %s: decoder failed on frame %d", rt.name, raw_id)
                self._reject(
                    rt, raw_id, f"internal decoder error: {type(exc).__name__}: {exc}", None
                )
        if not decoded:
            return
        results = estimate([r for _, _, r in decoded], self.method, self.bands)
        if not self._method_recorded:
            m = results.method
            self.store.record_method(m, self.bands.get(m.name, m.bands))
            self._method_recorded = True
        for i, (raw_id, data, reading) in enumerate(decoded):
            warnings = list(results.notes[i]) + (entry_notes if entry is not None else [])
            measured_epoch = None
            if reading.measured_at is not None:
                local = (
                    reading.measured_at.replace(tzinfo=rt.zone)
                    if rt.zone
                    else reading.measured_at.astimezone()
                )
                measured_epoch = local.timestamp()
                off = measured_epoch - received_epoch
                if abs(off) > CLOCK_WARNING_S:
                    warnings.append(f"device clock is {off / 60:+.0f} min from this PC's clock")
            saved = self.store.save(
                raw_frame_id=raw_id,
                frame=data,
                port=rt.name,
                driver=rt.driver,
                reading=reading,
                received_epoch=received_epoch,
                measured_epoch=measured_epoch,
                results=results.rows(i),
                warnings=warnings,
            )
            if saved is None:
                log.info(
                    "port %s: frame %d repeats a stored measurement, not stored twice",
                    rt.name,
                    raw_id,
                )
            if entry is not None:
                if saved is None:
                    worklist.fail(self.store.conn, entry.id, "the analyzer repeated a stored frame")
                else:
                    worklist.mark_done(self.store.conn, entry.id, saved.measurement_id)
            if saved is not None and self.on_saved is not None:
                self.on_saved(saved)

    def _reject(self, rt: PortRuntime, raw_id: int, reason: str, offset: int | None) -> None:
        self.rejected += 1
        self.store.reject(raw_id, reason, offset)
        where = f" at byte {offset}" if offset is not None else ""
        log.warning(
            "port %s: frame %d rejected%s: %s (kept in raw_frame)", rt.name, raw_id, where, reason
        )

    def recover(self, runtimes: dict[str, PortRuntime]) -> int:
        """Decode frames a crash left pending (journaled, not yet decoded)."""
        n = 0
        for p in self.store.pending():
            rt = runtimes.get(p.driver)
            if rt is None:
                continue
            self.process(
                PortRuntime(p.port, p.driver, rt.codec, rt.zone),
                [(p.raw_frame_id, p.data)],
                p.received_at_epoch,
            )
            n += 1
        return n
