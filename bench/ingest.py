"""Ingest benchmark: latency from a frame's last byte to its committed rows, and
sustained frames per second over a pty at full speed, with full fsync.

Run: ``python bench/ingest.py [--frames 3000] [--latency-frames 300]``

Everything is real: a pty whose master this script writes, the service's reader and
writer threads, an SQLite file in WAL mode with ``synchronous=FULL`` in a temporary
folder (put it on the disk you care about with ``--dir``). Baselines measured in the
same run, on the same disk:

* ``one commit``: one fsynced INSERT + COMMIT of a small row (the floor for latency);
* ``frame per transaction``: every frame journaled and stored in its own
  transactions through the same ``Ingest`` code, no pty (what the service would do
  without batching).

Targets (issue 4): p99 latency under 20 ms, at least 1,000 frames/s.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from ptyline import PtyLine, make_frames

from bia_acq.acquire import Batch, Ingest
from bia_acq.config import Config, PortConfig
from bia_acq.drivers import all_profiles, get_profile
from bia_acq.protocols.base import Chunk
from bia_acq.service import Service
from bia_acq.store.db import open_writer
from bia_acq.store.writer import SavedMeasurement, Store


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q / 100 * (len(s) - 1)))]


def baseline_commit_ms(folder: Path, n: int = 200) -> list[float]:
    c = sqlite3.connect(folder / "commit.db", isolation_level=None)
    c.execute("PRAGMA journal_mode = WAL")
    c.execute("PRAGMA synchronous = FULL")
    c.execute("CREATE TABLE t (x BLOB)")
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        c.execute("BEGIN")
        c.execute("INSERT INTO t VALUES (?)", (b"x" * 800,))
        c.execute("COMMIT")
        out.append((time.perf_counter() - t0) * 1000)
    c.close()
    return out


def baseline_frame_per_transaction(folder: Path, frames: list[bytes]) -> float:
    store = Store(open_writer(folder / "baseline.db"))
    ingest = Ingest(store, "hanai-bis", profiles=all_profiles())
    t0 = time.perf_counter()
    for f in frames:
        ingest.handle(Batch("p", "tanita-mc780", [Chunk("frame", f)], time.time()))
    dt = time.perf_counter() - t0
    store.db.close()
    return len(frames) / dt


class Run:
    """The service on a pty; records when each frame's rows were committed."""

    def __init__(self, folder: Path, name: str) -> None:
        self.line = PtyLine(folder / f"{name}.tty")
        self.line.plug()
        profile = get_profile("tanita-mc780")
        port = PortConfig("bench", str(self.line.link), profile.name, profile, profile.serial)
        self.committed: list[float] = []
        self.done = threading.Condition()
        self.service = Service(
            Config(database=folder / f"{name}.db", ports=(port,)), on_saved=self._saved
        )
        self.service.start()
        self.line.wait_reader()

    def _saved(self, m: SavedMeasurement) -> None:
        with self.done:
            self.committed.append(time.perf_counter())
            self.done.notify_all()

    def wait(self, n: int, timeout: float = 120) -> None:
        with self.done:
            if not self.done.wait_for(lambda: len(self.committed) >= n, timeout):
                raise TimeoutError(f"{len(self.committed)} of {n} frames committed")

    def close(self) -> None:
        self.service.stop()
        self.line.unplug()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=3000, help="frames for the throughput run")
    ap.add_argument("--latency-frames", type=int, default=300)
    ap.add_argument("--dir", type=Path, help="folder for the databases (default: a temp dir)")
    args = ap.parse_args()
    frames = make_frames(args.frames + args.latency_frames, seed=5)
    lat_frames, tput_frames = frames[: args.latency_frames], frames[args.latency_frames :]

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folder = Path(tmp)
        commit = baseline_commit_ms(folder)
        base_fps = baseline_frame_per_transaction(folder, tput_frames[: min(500, len(tput_frames))])

        # latency: one frame at a time, paced, last byte -> committed rows
        run = Run(folder, "latency")
        latencies = []
        try:
            for i, f in enumerate(lat_frames):
                run.line.write(f)
                t_last_byte = time.perf_counter()
                run.wait(i + 1)
                latencies.append((run.committed[i] - t_last_byte) * 1000)
                time.sleep(0.005)
        finally:
            run.close()

        # throughput: every frame back to back at full pty speed
        run = Run(folder, "throughput")
        try:
            blob = b"".join(tput_frames)
            t0 = time.perf_counter()
            run.line.write(blob)
            run.wait(len(tput_frames))
            fps = len(tput_frames) / (run.committed[-1] - t0)
        finally:
            run.close()

    c50, c99 = statistics.median(commit), pct(commit, 99)
    p50, p99 = statistics.median(latencies), pct(latencies, 99)
    print(f"baseline: one fsynced commit         p50 {c50:6.2f} ms  p99 {c99:6.2f} ms")
    print(
        f"latency last byte -> committed rows  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms"
        f"  (p99 = {p99 / c99:.1f}x one commit; target < 20 ms)"
    )
    print(f"baseline: one frame per transaction  {base_fps:8.0f} frames/s (no pty)")
    print(
        f"sustained over a pty                 {fps:8.0f} frames/s"
        f"  ({fps / base_fps:.1f}x the baseline; target >= 1000; "
        f"{fps * len(tput_frames[0]) * 10 / 9600:.0f}x a 9600-baud line)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
