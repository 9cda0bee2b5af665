"""`bia-acq import`: captured byte streams through the same path as live data."""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import sqlite3
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import IO, TYPE_CHECKING

from bia_acq.cli import add_drivers_dir, setup_logging
from bia_acq.commands.decode import SNIFF_BYTES, choose_profile, unreadable
from bia_acq.errors import BiaError, ConfigError, FrameError
from bia_acq.protocols.base import is_container

if TYPE_CHECKING:
    from bia_acq.acquire import Computed, Ingest, PortRuntime
    from bia_acq.drivers import Profile
    from bia_acq.protocols.base import Chunk
    from bia_acq.worker import ComputeWorker

READ_BYTES = 1 << 20
#: chunks per transaction: the capture file is the durable copy, so a crash
#: only loses the batch in hand, which the next import does again
BATCH_CHUNKS = 1000
#: how long a batch waits for the write lock another writer holds (the service, another
#: import: one transaction, seconds, more on a busy machine); the service's own 5 s
#: suits it (it spools), an import has nowhere to put its batch and waits
LOCK_WAIT_MS = 600_000
#: from this many bytes of input (about 1,300 MC-780 frames) a worker process may decode
#: and compute while this one journals and stores (bia_acq.worker); below it, the worker's
#: start (0.4 s of imports) would cost more than it saves
WORKER_MIN_BYTES = 1 << 20
#: True or False: a worker always or never (tests, benchmarks); None: see worker_pays
WORKER: bool | None = None


def worker_pays(total_bytes: int) -> bool:
    """Whether a worker process would make this import faster: a large input, and a core
    to spare (a 1-minute load below the cores but one). On a machine whose cores are
    busy the two processes share them with the others and import slower than one
    (measured on 2 cores at load 3: about 20 % slower, 30 % more CPU a frame)."""
    if WORKER is not None:
        return WORKER
    cores = len(os.sched_getaffinity(0))
    return total_bytes >= WORKER_MIN_BYTES and cores > 1 and os.getloadavg()[0] < cores - 1


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "import",
        help="ingest captured byte streams (as received, junk included) into the database",
        description="Feed captured bytes through the same journal, decoder, core and store "
        "as live data. Importing a file again stores nothing twice; a file that grew adds "
        "only its new part. Prints a summary of accepted and rejected frames.",
    )
    p.add_argument(
        "--driver",
        required=True,
        help="device profile, e.g. tanita-mc780, or auto: the profile that decodes the first file",
    )
    p.add_argument("--db", required=True, type=Path, help="database file (created if needed)")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE", help="captured bytes")
    p.add_argument(
        "--port",
        default="import",
        help="port name the measurements are attributed to (default: import); give the live "
        "port's name so a frame already received live is recognised as the same measurement",
    )
    p.add_argument("--method", default="hanai-bis", help="estimation method (default hanai-bis)")
    p.add_argument(
        "--timezone",
        help="IANA zone of the analyzer clock, e.g. Europe/Berlin (default: this PC's)",
    )
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on standard error (default: when it is a terminal)",
    )
    p.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    add_drivers_dir(p)
    p.set_defaults(handler=run)


@dataclass
class Tally:
    """What an import did: frames = stored + duplicates + rejected + frames_already."""

    frames: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    frames_already: int = 0  # journaled by an earlier import of these bytes: not again
    junk: int = 0  # junk and truncated chunks journaled now
    truncated: int = 0
    others_already: int = 0  # junk and truncated chunks an earlier import journaled

    def add(self, other: Tally) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def line(self) -> str:
        kept = f"{self.junk} junk and {self.truncated} truncated chunk(s) kept"
        if self.others_already:
            kept += f", {self.others_already} already imported"
        return (
            f"{self.frames} frame(s): {self.stored} stored, {self.duplicates} already stored, "
            f"{self.rejected} rejected, {self.frames_already} already imported; {kept}"
        )


class Progress:
    """A one-line bar on standard error, redrawn at most five times a second."""

    def __init__(self, out: IO[str], total_bytes: int, enabled: bool) -> None:
        self.out = out
        self.total = max(total_bytes, 1)
        self.enabled = enabled
        self.done = 0
        self.frames = 0
        self._drawn = 0.0

    def advance(self, nbytes: int, frames: int, force: bool = False) -> None:
        self.done += nbytes
        self.frames += frames
        now = time.monotonic()
        if self.enabled and (force or now - self._drawn >= 0.2):
            self._drawn = now
            share = min(self.done / self.total, 1.0)
            self.out.write(f"\r[{'#' * int(share * 30):<30}] {share:6.1%} {self.frames:,} frames")
            self.out.flush()

    def close(self) -> None:
        if self.enabled:
            self.out.write("\n")
            self.out.flush()


def run(args: argparse.Namespace) -> int:
    import zoneinfo

    from bia_acq.acquire import Ingest, PortRuntime
    from bia_acq.core.estimate import get_method
    from bia_acq.drivers import get_profile
    from bia_acq.store.db import open_writer
    from bia_acq.store.writer import Store
    from bia_acq.worker import ComputeWorker, WorkerDied, WorkerSpec

    setup_logging(args.log_level)
    if args.driver != "auto":
        get_profile(args.driver, args.drivers_dir)  # an unknown driver first: a usage mistake
    get_method(args.method)
    zone = None
    if args.timezone:
        try:
            zone = zoneinfo.ZoneInfo(args.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"--timezone: unknown time zone {args.timezone!r}",
                fix="use an IANA name such as Europe/Berlin",
            ) from None
    total_bytes = 0
    heads: list[bytes] = []
    for f in args.files:
        try:
            total_bytes += f.stat().st_size
            with f.open("rb") as fh:
                head = fh.read(SNIFF_BYTES)
                heads.append(head + fh.read() if is_container(head) else head)
        except OSError as exc:
            raise BiaError(f"cannot read {f}: {exc.strerror}") from None
    profile = choose_profile(args.driver, heads[0], str(args.files[0]), args.drivers_dir)
    codec = profile.codec()
    for f, head in zip(args.files, heads, strict=True):  # before anything is stored
        try:
            head = codec.transcode(head) or head
        except FrameError as exc:
            raise BiaError(f"{f}: not imported: {exc.reason}") from None
        refuse(f, head[:SNIFF_BYTES], profile, args.drivers_dir)
    worker = None
    if worker_pays(total_bytes):  # started first: it loads while this process opens the database
        spec = WorkerSpec(
            profile.name,
            tuple(args.drivers_dir),
            args.method,
            args.port,
            args.timezone,
            logging.getLogger().getEffectiveLevel(),
        )
        worker = ComputeWorker(spec)
    store = Store(open_writer(args.db, report_method=args.method, busy_timeout_ms=LOCK_WAIT_MS))
    try:
        ingest = Ingest(store, args.method, profiles={profile.name: profile})
        ingest.chunk_log_level = logging.DEBUG  # the summary reports them
        rt = PortRuntime(args.port, profile.name, codec, zone, live=False)
        ingest.ports[rt.name] = rt
        ingest.recover()  # what an interrupted import left pending
        enabled = sys.stderr.isatty() if args.progress is None else args.progress
        progress = Progress(sys.stderr, total_bytes, enabled)
        total = Tally()
        lines = []
        for path in args.files:
            try:
                tally = import_file(ingest, rt, path, progress, worker)
            except WorkerDied as exc:
                raise BiaError(
                    f"{path}: stopped importing: {exc}; what was read is kept,"
                    " run the same import again to finish it"
                ) from None
            total.add(tally)
            lines.append(f"{path}: {tally.line()}")
        progress.advance(0, 0, force=True)
        progress.close()
    except sqlite3.OperationalError as exc:  # the database took no writes: say so, no traceback
        raise BiaError(
            f"{args.db}: stopped importing: the database does not take writes ({exc});"
            " what was imported before is kept, run the same import again to finish it"
        ) from None
    finally:
        if worker is not None:
            worker.close()
        store.db.close()
    if len(lines) > 1:
        print("\n".join(lines))
    print(f"imported {len(args.files)} file(s) into {args.db}: {total.line()}")
    return 0


def refuse(path: Path, head: bytes, profile: Profile, drivers_dirs: list[Path]) -> None:
    """BiaError (one line) when the file cannot be imported with ``profile`` at all."""
    codec = profile.codec()
    why = codec.preflight(head)
    if why is not None:
        raise BiaError(f"{path}: not imported: {why} (profile {profile.name})")
    framer = codec.framer()
    chunks = framer.feed(head)
    if len(head) < SNIFF_BYTES:
        chunks += framer.flush("end of file")
    if not any(c.kind == "frame" or (c.reason or "").startswith("record:") for c in chunks):
        raise BiaError("not imported: " + unreadable(str(path), head, profile, drivers_dirs))


def import_file(
    ingest: Ingest,
    rt: PortRuntime,
    path: Path,
    progress: Progress,
    worker: ComputeWorker | None = None,
) -> Tally:
    """Frame one captured file and hand it to ``ingest`` in batches, one transaction each.

    Each batch is journaled first (committed). Without a ``worker`` it is then decoded,
    computed and stored here. With one, the worker decodes and computes it while this
    process stores the batch before and frames and journals the next (the order of
    the steps: :mod:`bia_acq.worker`).
    """
    from bia_acq.acquire import Batch

    source = f"file:{path.resolve()}"
    store = ingest.store
    assert store is not None
    framer = rt.codec.framer()
    tally = Tally()
    pending: list[tuple[int, Chunk]] = []
    offset = 0
    before = (ingest.stored, ingest.duplicates, ingest.rejected)

    def store_computed(computed: Computed) -> None:
        with store.db.atomic():
            ingest.store_computed(rt, computed)

    def flush() -> None:
        if not pending:
            return
        # the path, the offset and 48 bits of the bytes' hash (store m010)
        keys = tuple(f"{source}@{o}#{hashlib.sha256(c.data).hexdigest()[:12]}" for o, c in pending)
        batch = Batch(rt.name, rt.driver, [c for _, c in pending], received, chunk_keys=keys)
        with store.db.atomic():  # one transaction per batch: the file is the durable copy
            known = {  # journaled by an earlier import: handle() skips them
                k
                for (k,) in store.conn.execute(
                    f"SELECT chunk_key FROM raw_frame WHERE chunk_key IN ({','.join('?' * len(keys))})",
                    keys,
                )
            }
            for (_, c), k in zip(pending, keys, strict=True):
                if c.kind == "junk" and (c.reason or "").startswith(("header:", "record:")):
                    continue  # a header line or a profile record is no junk
                if k not in known:
                    tally.junk += c.kind == "junk"
                    tally.truncated += c.kind == "truncated"
                elif c.kind == "frame":
                    tally.frames_already += 1
                else:
                    tally.others_already += 1
            if worker is None:
                ingest.handle(batch)
            else:
                _, work = ingest.journal(batch)
        if worker is not None:  # batch k back from the worker, k + 1 to it, k stored
            computed = worker.result() if worker.busy else None
            frames = [f for _, fs in work for f in fs]
            if frames:
                worker.submit(frames)
            if computed is not None:
                store_computed(computed)
        nbytes = sum(len(c.data) for _, c in pending)
        progress.advance(nbytes, sum(c.kind == "frame" for _, c in pending))
        pending.clear()

    try:
        received = path.stat().st_mtime  # when the capture was last written
        with path.open("rb") as fh:
            whole = None
            head = fh.read(4)
            if is_container(head):  # an .xlsx workbook: its sheet as the codec's CSV text
                whole = rt.codec.transcode(head + fh.read())
            fh.seek(0)
            while True:
                if whole is not None:
                    data, whole = whole, b""
                else:
                    data = fh.read(READ_BYTES)
                chunks = framer.feed(data) if data else framer.flush("end of file inside a frame")
                for c in chunks:
                    pending.append((offset, c))
                    offset += len(c.data)
                    tally.frames += c.kind == "frame"
                    if len(pending) >= BATCH_CHUNKS:
                        flush()
                if not data:
                    break
    except OSError as exc:
        raise BiaError(f"cannot read {path}: {exc.strerror}") from None
    flush()
    if worker is not None and worker.busy:  # the file's last batch
        store_computed(worker.result())
    tally.stored = ingest.stored - before[0]
    tally.duplicates = ingest.duplicates - before[1]
    tally.rejected = ingest.rejected - before[2]
    return tally
