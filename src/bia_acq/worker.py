"""A second process that decodes and computes while this one journals and stores.

``bia-acq import`` of a large capture uses the machine's second core this way
(:func:`bia_acq.commands.import_.import_file`). The importing process frames the
file and journals each batch of chunks (committed: nothing received is lost,
whatever happens next), then:

1. takes the results of batch k from the worker,
2. hands batch k + 1's frames to the worker, which decodes, screens and computes
   them (:meth:`~bia_acq.acquire.Ingest.compute`),
3. stores batch k's results while it does, then frames and journals batch k + 2.

One batch at a time is in the worker: each process sends only while the other is
waiting to receive, so neither blocks on a full pipe, and the worker holds at most
one batch's readings. The worker never opens the database.

If the worker dies (killed, out of memory, a codec crashing the interpreter),
:meth:`ComputeWorker.result` raises :class:`WorkerDied`: the frames handed to it
are journaled and pending, and the next import decodes them. Ctrl-C reaches the
whole process group: the worker ignores it and the importing process ends it.
When the importing process ends for any reason, the worker reads the end of its
pipe and ends too.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import traceback
import zoneinfo
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from bia_acq.errors import BiaError

if TYPE_CHECKING:
    from bia_acq.acquire import Computed, PendingWork, Rejected
    from bia_acq.model import Reading

log = logging.getLogger(__name__)


class WorkerDied(BiaError):
    """The worker process ended before giving back the batch it was computing."""


@dataclass(frozen=True)
class WorkerSpec:
    """What the worker needs to compute as the importing process would."""

    driver: str
    drivers_dirs: tuple[Path, ...]
    method: str
    port: str
    timezone: str | None
    log_level: int


class ComputeWorker:
    """The worker process, one batch at a time: :meth:`submit`, then :meth:`result`."""

    def __init__(self, spec: WorkerSpec) -> None:
        ctx = multiprocessing.get_context("spawn")  # never fork a process holding SQLite
        their_tasks, self._tasks = ctx.Pipe(duplex=False)
        self._results, their_results = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(
            target=_serve,
            args=(spec, their_tasks, their_results),
            name="bia-acq-compute",
            daemon=True,
        )
        self._proc.start()
        # only the worker holds its ends now: either side reads EOF when the other ends
        their_tasks.close()
        their_results.close()
        self.busy = False
        self._frames: list[PendingWork] = []
        log.info("frames are decoded and computed in worker process %s", self._proc.pid)

    def submit(self, frames: list[PendingWork]) -> None:
        """Hand the worker a batch of journaled frames (it has none in hand)."""
        assert not self.busy, "one batch at a time"
        try:
            self._tasks.send(frames)
        except OSError:
            raise WorkerDied(self._ended()) from None
        self._frames = frames
        self.busy = True

    def result(self) -> Computed:
        """What the worker made of the batch it was given; WorkerDied if it ended."""
        assert self.busy, "no batch in the worker"
        try:
            out: Packed | str = self._results.recv()
        except (EOFError, OSError):
            raise WorkerDied(self._ended()) from None
        self.busy = False
        if isinstance(out, str):  # a bug in the computation: its traceback
            log.debug("the worker process failed:\n%s", out)
            raise WorkerDied(f"the worker process failed: {out.strip().splitlines()[-1]}")
        return _unpack(self._frames, out)

    def _ended(self) -> str:
        self._proc.join(5)
        code = self._proc.exitcode
        how = (
            "still running"
            if code is None
            else f"killed by signal {-code}"
            if code < 0
            else f"exit status {code}"
        )
        return f"the worker process decoding and computing frames ended ({how})"

    def close(self) -> None:
        """End the worker: at once if it has a batch in hand (its results are not
        wanted), else when it reads the end of its pipe."""
        self._tasks.close()
        self._results.close()
        if self.busy:
            self._proc.kill()
        self._proc.join(30)
        if self._proc.is_alive():  # a hang: never leave it behind
            self._proc.kill()
            self._proc.join()

    def __enter__(self) -> ComputeWorker:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


#: what the worker sends back for a batch: a Computed without what the importing
#: process has already (the frames), in plain tuples (a dataclass pickles with the names
#: of its fields): the rejected frames, then per measurement to store its position in
#: the batch, its reading, measured time, warnings and result rows
Packed = tuple[
    list["Rejected"],
    list[tuple[int, "Reading", float | None, list[str], list[tuple[object, ...]]]],
]


def _pack(frames: list[PendingWork], computed: Computed) -> Packed:
    position = {id(f): k for k, f in enumerate(frames)}
    return computed.rejected, [
        (position[id(d.work)], it.reading, it.measured_epoch, it.warnings, it.result_rows or [])
        for d, it in computed.items
    ]


def _unpack(frames: list[PendingWork], packed: Packed) -> Computed:
    from bia_acq.acquire import Computed, Decoded
    from bia_acq.store.writer import ToSave

    rejected, items = packed
    out = []
    for k, reading, measured, warnings, rows in items:
        w = frames[k]
        save = ToSave(
            w.raw_frame_id, w.data, reading, measured, [], warnings, w.received_epoch, rows
        )
        out.append((Decoded(w, reading, None, []), save))
    return Computed(out, rejected)


def _serve(spec: WorkerSpec, tasks: Connection, results: Connection) -> None:
    """The worker process: compute each batch it receives until its pipe ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the importing process decides
    logging.basicConfig(
        level=spec.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from bia_acq.acquire import Ingest, PortRuntime
    from bia_acq.drivers import get_profile

    profile = get_profile(spec.driver, list(spec.drivers_dirs))
    ingest = Ingest(None, spec.method, profiles={profile.name: profile})
    zone = zoneinfo.ZoneInfo(spec.timezone) if spec.timezone else None
    rt = PortRuntime(spec.port, profile.name, profile.codec(), zone, live=False)
    while True:
        try:
            frames = tasks.recv()
        except (EOFError, OSError):
            return  # the importing process is done, or ended
        try:
            out: Packed | str = _pack(frames, ingest.compute(rt, frames))
        except Exception:
            out = traceback.format_exc()
        try:
            results.send(out)
        except OSError:
            return
