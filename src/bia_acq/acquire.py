"""One port's acquisition: link → framer → journal → decoder → core → store.

A :class:`PortReader` thread owns the link and the framer and hands chunks of
bytes to the writer through a bounded queue. :class:`Ingest` runs in the single
writer thread: it journals every chunk (committed before decoding), decodes the
frames, computes results for the batch at once and stores them.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import queue
import threading
import time
import uuid
import zoneinfo
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from bia_acq import worklist
from bia_acq.config import DEFAULT_METHOD, PortConfig
from bia_acq.core.estimate import ROW_KEYS, estimate
from bia_acq.core.methods import Bands, Uncertainty, profile_uncertainty
from bia_acq.drivers import Profile
from bia_acq.errors import DeviceDisconnected, FrameError, PortInUse, TransportError
from bia_acq.link import Link, Transport
from bia_acq.model import Reading
from bia_acq.plausibility import (
    mark_implausible,
    points_within_bounds,
    reading_problem,
    volumes_within_bounds,
)
from bia_acq.protocols.base import Chunk, Protocol
from bia_acq.source import Item, Source
from bia_acq.store.writer import FileCursor, SavedMeasurement, Store, ToSave, refuses_writes

log = logging.getLogger(__name__)

CLOCK_WARNING_S = 15 * 60


@dataclass(frozen=True)
class PendingWork:
    """A journaled frame to decode."""

    raw_frame_id: int
    data: bytes
    received_epoch: float
    #: for polled analyzers: the work-list entry the frame was measured for
    worklist_id: int | None = None


@dataclass(frozen=True)
class Decoded:
    """A frame the codec decoded, with the work-list entry it was measured for."""

    work: PendingWork
    reading: Reading
    entry: worklist.Entry | None
    notes: list[str]


@dataclass(frozen=True)
class Rejected:
    """A frame decoding, screening or computing rejected, with the reason to store."""

    raw_frame_id: int
    reason: str
    offset: int | None
    entry: worklist.Entry | None = None


@dataclass
class Computed:
    """What :meth:`Ingest.compute` made of journaled frames: the measurements to store
    with their results, and the frames rejected."""

    items: list[tuple[Decoded, ToSave]]
    rejected: list[Rejected]


@dataclass(frozen=True)
class Batch:
    """Chunks one source received together.

    ``key`` is unique per batch (a random hex string): chunk ``i`` is journaled
    with the key ``f"{key}.{i}"``, so moving a batch into the database twice
    (a spool replayed after a crash mid-move, a write retried after a partial
    failure) stores it once.
    """

    port: str
    driver: str
    chunks: list[Chunk]
    received_epoch: float
    #: for folder sources: how far the file is journaled once these chunks are
    cursor: FileCursor | None = None
    #: for polled analyzers: the work-list entry the frame in this batch was measured for
    worklist_id: int | None = None
    key: str = field(default_factory=lambda: uuid.uuid4().hex)
    #: for imported captures: one key per chunk (file, byte offset, SHA-256) instead of
    #: ``KEY.i``, so importing a file again, or a grown file, journals nothing twice
    chunk_keys: tuple[str, ...] | None = None


class PortReader(Source):
    """Reads one port until stopped; reconnects with doubling backoff.

    States (one log line per change): ``starting``, ``waiting`` (the port is
    not there), ``in use`` (another process holds it), ``connected``,
    ``disconnected``, ``failed`` (an internal error; retried), ``stopped``.
    ``heartbeat`` (monotonic seconds) moves on every turn of the loop, also
    while waiting, so a supervisor can tell a hung loop from an idle one.

    The bytes come from ``transport``: a :class:`~bia_acq.link.Link` on the
    port's URL unless another byte pipe is given (tests inject lossy fakes).
    """

    kind = "port"
    thread_prefix = "reader"
    log = log

    def __init__(
        self,
        port: PortConfig,
        out: queue.Queue[Item],
        stop: threading.Event | None = None,
        *,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        read_timeout_s: float = 0.1,
        stop_grace_s: float = 1.0,
        transport: Transport | None = None,
    ) -> None:
        super().__init__(port.name, out, stop)
        self.port = port
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.stop_grace_s = stop_grace_s
        self.link: Transport = (
            transport
            if transport is not None
            else Link(port.url, port.serial, read_timeout_s=read_timeout_s)
        )
        self.framer = port.profile.codec().framer()
        if port.silence_s is not None:
            self.framer.silence_s = port.silence_s
        self.frames = 0
        self._in_hand = b""  # bytes read and not yet through the framer

    def _wait(self, seconds: float) -> None:
        """Sleep until stopped, keeping the heartbeat moving."""
        until = time.monotonic() + seconds
        while not self.stopping.is_set():
            self.heartbeat = now = time.monotonic()
            if now >= until:
                return
            self.stopping.wait(min(1.0, until - now))

    def _emit(self, chunks: list[Chunk]) -> None:
        if not chunks:
            return
        n = sum(c.kind == "frame" for c in chunks)
        if n:
            self.last_frame_at = time.time()
            self.frames += n
        self._put(Batch(self.port.name, self.port.driver, chunks, time.time()))

    def _safe_flush(self, reason: str) -> list[Chunk]:
        try:
            return self.framer.flush(reason)
        except Exception:  # a broken framer: its buffer cannot be trusted or read
            log.exception("port %s: the framer failed to give back its bytes", self.port.name)
            return []

    # -- the loop -------------------------------------------------------------------
    def run(self) -> None:
        delay = self.backoff_initial_s
        while not self.stopping.is_set():
            self.heartbeat = time.monotonic()
            try:
                self.link.open()
            except PortInUse as exc:
                self._set_state("in use", f"{exc}; retrying", logging.WARNING)
            except TransportError as exc:
                self._set_state("waiting", f"{exc}; retrying, up to every {self.backoff_max_s:g} s")
            else:
                self._set_state("connected", f"{self.port.url}, {self.port.serial.describe()}")
                frames_before = self.frames
                try:
                    self._read_until_stopped()
                except DeviceDisconnected as exc:
                    self._emit(self.framer.flush("device disconnected inside a frame"))
                    self._set_state("disconnected", f"{exc}; retrying", logging.WARNING)
                except Exception as exc:  # a framer or link bug must not end this port
                    log.exception("port %s: reading failed", self.port.name)
                    reason = f"internal error: {type(exc).__name__}: {exc}"
                    chunks = self._safe_flush(reason)
                    if self._in_hand:  # the bytes the framer failed on are kept too
                        chunks.append(Chunk("junk", self._in_hand, reason))
                    self._emit(chunks)
                    self.framer = self.port.profile.codec().framer()  # start clean
                    self._set_state("failed", f"{type(exc).__name__}: {exc}; retrying")
                finally:
                    self.link.close()
                if self.frames > frames_before:  # a good frame on this connection
                    delay = self.backoff_initial_s
            if self.stopping.is_set():
                break
            self._wait(delay)
            delay = min(delay * 2, self.backoff_max_s)
        self._emit(self.framer.flush("service stopped inside a frame"))
        self._set_state("stopped")

    def _read_until_stopped(self) -> None:
        grace_until: float | None = None
        while True:
            self.heartbeat = now = time.monotonic()
            if self.stopping.is_set():
                # finish the frame in hand: keep reading briefly while one is partial or
                # bytes the device already sent wait in the driver's buffer
                if grace_until is None:
                    grace_until = now + self.stop_grace_s
                if (not self.framer.pending and not self.link.waiting()) or now > grace_until:
                    return
            self._in_hand = data = self.link.read()
            now = time.monotonic()
            self._emit(self.framer.feed(data, now) if data else self.framer.poll(now))
            self._in_hand = b""


@dataclass
class PortRuntime:
    name: str
    driver: str
    codec: Protocol
    zone: dt.tzinfo | None
    #: live data: warn when the device clock is far from the receive time (not for imports)
    live: bool = True
    #: the built-in simulator: its devices and subjects are stored as simulated
    simulated: bool = False


class Ingest:
    """Journal, decode, compute and store; runs in the writer thread only."""

    def __init__(
        self,
        store: Store | None,
        method: str,
        *,
        on_saved: Callable[[SavedMeasurement], None] | None = None,
        profiles: Mapping[str, Profile] | None = None,
        bands: Mapping[str, Bands] | None = None,
    ) -> None:
        self.store = store  # None while the database cannot be opened (the service spools)
        self.method = method
        self.bands = dict(bands or {})  # configured thresholds overriding a method's own
        self.on_saved = on_saved
        self.profiles = dict(profiles or {})
        self.ports: dict[str, PortRuntime] = {}
        self._by_driver: dict[str, PortRuntime] = {}
        self.rejected = 0
        self.stored = 0
        self.duplicates = 0
        #: level of the log line per kept junk chunk or rejected frame: WARNING for live
        #: data, DEBUG for a bulk import (its summary counts them)
        self.chunk_log_level = logging.WARNING

    def method_for(self, rt: PortRuntime) -> str:
        """The method for a port: the configured one, or with ``method: default`` the
        default its driver profile names for what the analyzer measures."""
        if self.method != DEFAULT_METHOD:
            return self.method
        profile = self.profiles.get(rt.driver)
        return (profile.default_method if profile else "") or "hanai-bis"

    def uncertainty_for(self, rt: PortRuntime) -> Uncertainty | None:
        """The port's profile's stated measurement uncertainty (None: by the model)."""
        profile = self.profiles.get(rt.driver)
        return profile_uncertainty(profile) if profile is not None else None

    def add_port(self, port: PortConfig) -> None:
        zone = zoneinfo.ZoneInfo(port.timezone) if port.timezone else None
        self.ports[port.name] = PortRuntime(
            port.name, port.driver, port.profile.codec(), zone, simulated=port.simulated
        )

    def runtime(self, port: str, driver: str) -> PortRuntime | None:
        """The port's codec and zone; for a port no longer configured, its driver's codec."""
        rt = self.ports.get(port)
        if rt is not None and rt.driver == driver:
            return rt
        if driver not in self._by_driver:
            profile = self.profiles.get(driver)
            if profile is None:
                return None
            self._by_driver[driver] = PortRuntime("", driver, profile.codec(), None)
        base = self._by_driver[driver]
        return PortRuntime(port, driver, base.codec, base.zone)

    def handle(self, *batches: Batch, decode: bool = True) -> int:
        """Journal the batches (once each, by key) in one transaction, commit, then decode
        and store their new frames in a second one. With ``decode=False`` (a stop in a
        hurry) frames stay pending: the next start decodes them.

        Returns how many chunks were new to the journal."""
        store = self.store
        assert store is not None
        new, work = self.journal(*batches)
        if not decode or not work:
            return new
        saved: list[SavedMeasurement] = []
        with store.db.atomic():
            for rt, frames in work:
                saved += self.process(rt, frames, notify=False)
        if self.on_saved is not None:  # after the commit
            for m in saved:
                self.on_saved(m)
        return new

    def journal(self, *batches: Batch) -> tuple[int, list[tuple[PortRuntime, list[PendingWork]]]]:
        """Journal the batches (once each, by key) in one transaction and commit.

        Returns how many chunks were new to the journal, and the frames to decode
        (journaled now or before and still pending), per port: one vectorised estimate
        for each."""
        store = self.store
        assert store is not None
        with store.db.atomic():  # a folder's cursor moves with its journal, or not at all
            journaled = []
            for b in batches:
                journaled.append(
                    store.journal(b.port, b.driver, b.chunks, b.received_epoch, b.key, b.chunk_keys)
                )
                if b.cursor is not None:
                    store.save_cursor(b.cursor)
        new = sum(j.new for js in journaled for j in js)
        work: dict[tuple[str, str], tuple[PortRuntime, list[PendingWork]]] = {}
        for batch, js in zip(batches, journaled, strict=True):
            frames = []
            for j, c in zip(js, batch.chunks, strict=True):
                if c.kind == "frame":
                    if j.status == "pending":
                        frames.append(
                            PendingWork(
                                j.raw_frame_id,
                                c.context + c.data,  # a CSV row: its header + the row
                                batch.received_epoch,
                                batch.worklist_id,
                            )
                        )
                elif j.new:
                    quiet = (c.reason or "").startswith("dialogue: ")  # a polled device's replies
                    log.log(
                        logging.DEBUG if quiet else self.chunk_log_level,
                        "port %s: %d bytes kept as %s: %s",
                        batch.port,
                        len(c.data),
                        c.kind,
                        c.reason,
                    )
            if not frames:
                continue
            rt = self.runtime(batch.port, batch.driver)
            if rt is None:
                log.error(
                    "port %s: driver %r is not available; %d frame(s) kept pending",
                    batch.port,
                    batch.driver,
                    len(frames),
                )
                continue
            work.setdefault((batch.port, batch.driver), (rt, []))[1].extend(frames)
        return new, list(work.values())

    def process(
        self,
        rt: PortRuntime,
        frames: Sequence[PendingWork],
        *,
        notify: bool = True,
    ) -> list[SavedMeasurement]:
        """Decode, compute and store journaled frames; one transaction for them all.

        A frame measured for a work-list entry (a polled analyzer) is stored for that
        entry's subject and the entry is marked done, or failed with the reason.

        Returns what was stored; ``on_saved`` is called after the commit unless
        ``notify`` is False (the caller's transaction commits later).
        """
        store = self.store
        assert store is not None
        entries: dict[int, worklist.Entry | None] = {}
        for work in frames:
            if work.worklist_id is not None and work.worklist_id not in entries:
                entries[work.worklist_id] = worklist.get(store.conn, work.worklist_id)
        with store.db.atomic():
            saved = self.store_computed(rt, self.compute(rt, frames, entries))
        if notify and self.on_saved is not None:  # after the commit
            for m in saved:
                self.on_saved(m)
        return saved

    def compute(
        self,
        rt: PortRuntime,
        frames: Sequence[PendingWork],
        entries: Mapping[int, worklist.Entry | None] | None = None,
    ) -> Computed:
        """Decode the frames, screen them and compute their results, all at once; the
        database is not touched (`import` runs this in a worker process: see
        :mod:`bia_acq.worker`). ``entries``: the work-list entries the frames were
        measured for, by id.

        The steps: decode each frame (a codec's error rejects it with its reason);
        screen the batch's impedance points at once (``points_within_bounds``) and
        walk only a reading with a point out of bounds for its reason; then the
        method's estimate and the analyzer's own figures for the whole batch.
        """
        rejected: list[Rejected] = []
        candidates: list[Decoded] = []
        for work in frames:
            entry = (entries or {}).get(work.worklist_id) if work.worklist_id is not None else None
            try:
                reading = rt.codec.decode(work.data)
                if not isinstance(reading, Reading):
                    raise TypeError("the codec returned no Reading")
                notes: list[str] = []
                if entry is not None:  # measured for this work-list entry's subject
                    reading, notes = worklist.attribute(reading, entry)
                candidates.append(Decoded(work, reading, entry, notes))
            except Exception as exc:
                rejected.append(self._rejected(rt, work.raw_frame_id, exc, entry))
        # plausibility: the batch's impedance points screened at once
        decoded: list[Decoded] = []
        screened = points_within_bounds([d.reading for d in candidates])
        for d, ok in zip(candidates, screened, strict=True):
            try:
                problem = reading_problem(d.reading, points_checked=ok)
                if problem is not None:
                    raise FrameError(problem, None)
                self._measured_epoch(rt, d.reading)  # a time that cannot be placed
                decoded.append(d)
            except Exception as exc:
                rejected.append(self._rejected(rt, d.work.raw_frame_id, exc, d.entry))
        return Computed(self._compute(rt, decoded, rejected), rejected)

    def store_computed(self, rt: PortRuntime, computed: Computed) -> list[SavedMeasurement]:
        """Store what :meth:`compute` made: the rejections with their reasons, the
        measurements with their results (the caller holds the transaction). Returns
        what was stored; a frame that repeats a stored measurement is not stored twice."""
        store = self.store
        assert store is not None
        for r in computed.rejected:
            self._reject(rt, r.raw_frame_id, r.reason, r.offset, r.entry)
        saved: list[SavedMeasurement] = []
        for d, m in self._save(rt, computed.items):
            raw_id, entry = d.work.raw_frame_id, d.entry
            if m is None:
                self.duplicates += 1
                log.log(
                    min(self.chunk_log_level, logging.INFO),
                    "port %s: frame %d repeats a stored measurement, not stored twice",
                    rt.name,
                    raw_id,
                )
            else:
                self.stored += 1
                saved.append(m)
            if entry is not None:
                if m is None:
                    worklist.fail(store.conn, entry.id, "the analyzer repeated a stored frame")
                else:
                    worklist.mark_done(store.conn, entry.id, m.measurement_id)
        return saved

    def _compute(
        self, rt: PortRuntime, decoded: list[Decoded], rejected: list[Rejected]
    ) -> list[tuple[Decoded, ToSave]]:
        """Results for the decoded frames, all at once; if that fails, one at a time,
        rejecting the frames whose computation fails (added to ``rejected``)."""
        if not decoded:
            return []
        try:
            return self._compute_all(rt, decoded)
        except Exception:  # one of them: find it
            pass
        out = []
        for d in decoded:
            try:
                out += self._compute_all(rt, [d])
            except Exception as exc:
                reason = f"cannot be computed: {_why(exc)}"
                rejected.append(Rejected(d.work.raw_frame_id, reason, None, d.entry))
        return out

    def _compute_all(self, rt: PortRuntime, decoded: list[Decoded]) -> list[tuple[Decoded, ToSave]]:
        """The method's results for the decoded frames at once, and the analyzer's own
        figures beside them where it sent any; each measurement's result rows as tuples
        in the store's column order, made from the arrays at once (``Results.tuples``).
        The batch's volumes are screened at once (``volumes_within_bounds``): only a
        measurement with a segment out of bounds is walked row by row for its reasons
        (``mark_implausible``, each method on its own: one method's impossible volumes
        say nothing of the analyzer's own figures)."""
        readings = [d.reading for d in decoded]
        with np.errstate(all="ignore"):  # overflow and NaN are checked in the results
            results = estimate(
                readings, self.method_for(rt), self.bands, uncertainty=self.uncertainty_for(rt)
            )
            tables = [results]
            sent = np.zeros(len(decoded), dtype=bool)
            if results.method.name != "device":  # the analyzer's own beside ours
                own = estimate(
                    readings,
                    "device",
                    self.bands,
                    uncertainty=self.uncertainty_for(rt),
                    cole_fit=results.volumes.fit if results.volumes else None,  # not fitted again
                )
                tables.append(own)
                sent = np.isfinite(own.ecw_tbw_ratio[:, -1]) | np.isfinite(own.tbw_l[:, -1])
        weight = np.array([_num(r.weight_kg) for r in readings], dtype=float)
        s = len(results.segments)
        screened = []
        for t in tables:  # (measurement, segment, method, ..., computed_at) per row
            rows = [r[1:-1] for r in t.tuples(range(len(decoded)), "")]
            ok = volumes_within_bounds(t, weight)
            screened.append((rows, ok))
        out = []
        for i, d in enumerate(decoded):
            w, reading, notes = d.work, d.reading, d.notes
            try:
                notes = [*notes, *rt.codec.check(reading)]
            except Exception:  # a codec bug must not lose the measurement
                log.exception(
                    "port %s: consistency check failed on frame %d", rt.name, w.raw_frame_id
                )
            rows_i: list[tuple[object, ...]] = []
            for k, (rows, ok) in enumerate(screened):
                if k and not sent[i]:
                    continue
                group = rows[i * s : (i + 1) * s]
                if not ok[i]:
                    group = _marked_implausible(group, reading.weight_kg, notes)
                rows_i += group
            item = ToSave(
                w.raw_frame_id,
                w.data,
                reading,
                self._measured_epoch(rt, reading),
                [_row_dict(r) for r in rows_i] if self.on_saved is not None else [],
                self._warnings(rt, reading, w.received_epoch, [*results.notes[i], *notes]),
                w.received_epoch,
                result_rows=rows_i,
            )
            out.append((d, item))
        return out

    def _save(
        self, rt: PortRuntime, items: list[tuple[Decoded, ToSave]]
    ) -> list[tuple[Decoded, SavedMeasurement | None]]:
        """Store the items in one savepoint; if one item's content is what fails, each
        in its own, rejecting those that fail. An error meaning the database does not
        take writes (locked, full, read-only, I/O) is raised: the service spools."""
        store = self.store
        assert store is not None
        if not items:
            return []
        try:
            with store.db.atomic():
                stored = store.save_many(
                    rt.name, rt.driver, [it for _, it in items], simulated=rt.simulated
                )
            return list(zip([d for d, _ in items], stored, strict=True))
        except Exception as exc:
            if refuses_writes(exc):
                raise
        out = []
        for d, it in items:
            try:
                with store.db.atomic():
                    (m,) = store.save_many(rt.name, rt.driver, [it], simulated=rt.simulated)
                out.append((d, m))
            except Exception as exc:
                if refuses_writes(exc):
                    raise
                self._reject(rt, it.raw_frame_id, f"cannot be stored: {_why(exc)}", None, d.entry)
        return out

    @staticmethod
    def _measured_epoch(rt: PortRuntime, reading: Reading) -> float | None:
        """The device clock as epoch seconds; FrameError when it cannot be placed in time
        (year 1 or 9999 pushed out of range by a time zone)."""
        if reading.measured_at is None:
            return None
        t = reading.measured_at
        try:
            return (t.replace(tzinfo=rt.zone) if rt.zone else t.astimezone()).timestamp()
        except (OverflowError, ValueError, OSError):
            raise FrameError(
                f"device date in year {t.year} cannot be placed in time (check the analyzer's clock)",
                None,
            ) from None

    def _warnings(
        self, rt: PortRuntime, reading: Reading, received_epoch: float, notes: Sequence[str]
    ) -> list[str]:
        warnings = list(notes)
        measured = self._measured_epoch(rt, reading)
        if rt.live and measured is not None and abs(measured - received_epoch) > CLOCK_WARNING_S:
            off = measured - received_epoch
            warnings.append(f"device clock is {off / 60:+.0f} min from this PC's clock")
        return warnings

    @staticmethod
    def _rejected(
        rt: PortRuntime, raw_id: int, exc: Exception, entry: worklist.Entry | None
    ) -> Rejected:
        """The rejection of a frame its decoding or plausibility check raised on: a
        FrameError with its reason; anything else is a codec bug, which must not lose the
        frame or stop the port (the reason names the type only: a codec's message may
        quote a patient ID)."""
        if isinstance(exc, FrameError):
            return Rejected(raw_id, exc.reason, exc.offset, entry)
        log.warning("port %s: decoding frame %d failed (%s)", rt.name, raw_id, type(exc).__name__)
        return Rejected(raw_id, f"internal decoder error: {type(exc).__name__}", None, entry)

    def _reject(
        self,
        rt: PortRuntime,
        raw_id: int,
        reason: str,
        offset: int | None,
        entry: worklist.Entry | None = None,
    ) -> None:
        self.rejected += 1
        assert self.store is not None
        self.store.reject(raw_id, reason, offset)
        if entry is not None:
            worklist.fail(self.store.conn, entry.id, f"measurement rejected: {reason}")
        where = f" at byte {offset}" if offset is not None else ""
        log.log(
            self.chunk_log_level,
            "port %s: frame %d rejected%s: %s (kept in raw_frame)",
            rt.name,
            raw_id,
            where,
            reason,
        )

    def recover(self, stop: threading.Event | None = None, group: int = 64) -> int:
        """Decode frames a crash left pending (journaled, not yet decoded), in groups.

        Returns how many were processed; stops early (the rest stays pending) when
        ``stop`` is set.
        """
        assert self.store is not None
        n = 0
        pending = self.store.pending()
        i = 0
        while i < len(pending) and not (stop is not None and stop.is_set()):
            p = pending[i]
            j = i + 1
            while (
                j < len(pending)
                and j - i < group
                and (pending[j].port, pending[j].driver) == (p.port, p.driver)
            ):
                j += 1
            rt = self.runtime(p.port, p.driver)
            if rt is not None:
                self.process(
                    rt,
                    [
                        PendingWork(q.raw_frame_id, q.data, q.received_at_epoch)
                        for q in pending[i:j]
                    ],
                )
                n += j - i
            i = j
        return n


def _row_dict(row: tuple[object, ...]) -> dict[str, object]:
    """A result row as a dict by column (what ``on_saved`` gets); NaN → None."""
    return {
        k: None if isinstance(v, float) and not math.isfinite(v) else v
        for k, v in zip(ROW_KEYS, row, strict=True)
    }


def _marked_implausible(
    rows: list[tuple[object, ...]], weight_kg: float | None, notes: list[str]
) -> list[tuple[object, ...]]:
    """One method's rows of a measurement through :func:`mark_implausible` (its notes
    added to ``notes``)."""
    dicts = [_row_dict(r) for r in rows]
    notes += mark_implausible(dicts, weight_kg)
    return [tuple(d[k] for k in ROW_KEYS) for d in dicts]


def _num(v: float | None) -> float:
    return float(v) if v is not None else np.nan


def _why(exc: BaseException) -> str:
    """One line for a rejection reason: the exception's type and its first line (an
    exception's text from the decoder, the core or SQLite names fields, not values)."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__
