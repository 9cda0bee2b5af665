"""Decode and import throughput, with ratios against baselines measured in the same run.

    python bench/decode.py [--frames N] [--import-frames N] [--lookinbody-rows N]
    python bench/decode.py --capture-mb 1000 [--tmp DIR]

1. Decoding MC-780 frames (as the simulator sends them: six paths, three measured
   frequencies, ~770 bytes) with the tanita codec, one core. Baseline: the C JSON
   parser (``json.loads``) reading the same readings as JSON, the cheapest
   structured parse Python offers. Target: >= 20,000 frames/s. Two figures, each
   against the baseline run the same way: frame by frame with each result
   dropped after use (what ``decode`` and ``import`` do), and all results kept in
   one list (then Python's garbage collector walks every live object it tracks on
   its full passes: a Reading is 2 such objects, its impedance points arrays; a
   ``json.loads`` result is 2 too; with the points as 18 objects it was ~20 and
   the collector took half the time).
2. ``bia-acq import`` of a capture of N frames (with junk between some) into a new
   SQLite file, end to end as a real process: framing, journal, decode, core,
   store; with its worker process (decode and core in the worker, journal and store
   in the importing process) and all in one process. Baseline: inserting the same frames' bytes as rows into a one-table
   SQLite file (WAL, synchronous=FULL, executemany, one transaction per 1,000
   rows), the floor for storing anything per frame. Target: >= 5,000 frames/s.
3. ``bia-acq import`` of a LookinBody export of N rows (InBody 120, the real 87-column
   set, from the simulator's rows) end to end, twice: sparse rows (only the columns the
   profile reads) and real-size rows (every non-identifying cell filled, as a real
   export has them): rows per second, the database size (file plus WAL) against the
   export's, and the bytes per export row of each table with its indexes. Target: at
   most 3x the input. The same baseline as 2, with the export's rows.

4. ``--capture-mb MB``: ``bia-acq import`` of an MC-780 capture of that size (1,000 MB:
   1.3 million frames), with its resident memory sampled as it reads the file (its
   file position from /proc): bounded memory is a flat curve. The database needs
   about six times the capture's size on disk (``--tmp`` says where).

Decode rates are per CPU second (``time.process_time``), best of five; import
rates are wall clock (it is a process that waits on fsync) with its CPU seconds
and peak resident memory beside them. The machine's load is printed with each:
absolute rates depend on the machine; the ratios are what to compare across runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import machine

from bia_acq.drivers import get_profile
from bia_acq.protocols.tanita import checksum
from bia_acq.simulator.device import VirtualAnalyzer


def frames(n: int) -> tuple[list[bytes], list[str]]:
    sim = VirtualAnalyzer(get_profile("tanita-mc780"), seed=1)
    out, js = [], []
    for _ in range(n):
        _, reading = sim.next_measurement()
        out.append(sim.codec.encode(reading))
        js.append(json.dumps(reading.to_json()))
    return out, js


def unique(frame: bytes, k: int) -> bytes:
    """The frame measured ``k`` days later: the same bytes twice would be one measurement."""
    if k == 0:
        return frame
    i = frame.index(b'Da,"') + 4
    day = dt.datetime.strptime(frame[i : i + 10].decode(), "%d/%m/%Y") + dt.timedelta(days=k)
    body = frame[:i] + day.strftime("%d/%m/%Y").encode() + frame[i + 10 : frame.rindex(b"CS,")]
    return body + b"CS," + checksum(body).encode() + b"\r\n"


def best_rate(fn: object, n: int, repeat: int = 5) -> float:
    """Items per CPU second: n over the shortest CPU time of ``repeat`` runs."""
    assert callable(fn)
    return n / machine.best_of(fn, repeat)[0]


def bench_decode(n: int) -> None:
    data, js = frames(n)
    codec = get_profile("tanita-mc780").codec()
    decode = codec.decode

    def each(fn: object, items: list[bytes] | list[str]) -> None:
        assert callable(fn)
        for x in items:
            fn(x)

    size = sum(map(len, data)) / n
    print(f"decode {n:,} MC-780 frames ({size:.0f} bytes), one core ({machine.load()})")
    rate = best_rate(lambda: each(decode, data), n)
    base = best_rate(lambda: each(json.loads, js), n)
    print(
        f"  frame by frame: {rate:,.0f} frames/s (target 20,000);"
        f" json.loads of the same readings {base:,.0f}/s; ratio {rate / base:.2f}"
    )
    rate = best_rate(lambda: [decode(f) for f in data], n)
    base = best_rate(lambda: [json.loads(s) for s in js], n)
    print(
        f"  all results kept: {rate:,.0f} frames/s;"
        f" json.loads of the same readings {base:,.0f}/s; ratio {rate / base:.2f}"
    )


def baseline_rate(path: Path, blobs: list[bytes]) -> float:
    """Rows per second of the floor for storing anything per frame: the bytes as rows of
    a one-table SQLite file (WAL, synchronous=FULL, executemany, 1,000 rows a transaction)."""
    t = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE f (id INTEGER PRIMARY KEY, data BLOB NOT NULL) STRICT")
    for start in range(0, len(blobs), 1000):
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO f (data) VALUES (?)", [(b,) for b in blobs[start : start + 1000]]
        )
        conn.execute("COMMIT")
    conn.close()
    return len(blobs) / (time.perf_counter() - t)


def write_capture(path: Path, data: list[bytes], n: int | None, size: int | None = None) -> int:
    """A capture of ``n`` frames (or of at least ``size`` bytes) from ``data``, each frame
    measured a day later on every pass over ``data``, line noise after every 1,000th;
    written as it goes (a gigabyte is never in memory). Returns the frames written."""
    i = written = 0
    with path.open("wb") as fh:
        while (n is not None and i < n) or (size is not None and written < size):
            frame = unique(data[i % len(data)], i // len(data))
            written += fh.write(frame)
            if i % 1000 == 0:
                written += fh.write(b"\x00\x13junk~")  # line noise between frames
            i += 1
    return i


def import_argv(db: Path, cap: Path) -> list[str]:
    return ["import", "--driver", "tanita-mc780", "--db", str(db), "--no-progress", str(cap)]


#: run before the command: import with a worker process, or all in one, whatever the
#: size and the machine's load (its own rule: commands.import_.worker_pays)
WITH_WORKER = "from bia_acq.commands import import_\nimport_.WORKER = True\n"
ONE_PROCESS = "from bia_acq.commands import import_\nimport_.WORKER = False\n"


def bench_import(n: int) -> None:
    """Import the capture twice, each as a real process: with a worker process that
    decodes and computes while the importing one journals and stores, and all in one
    process (`import` chooses by the input's size and the machine's load)."""
    data, _ = frames(min(n, 2000))
    with tempfile.TemporaryDirectory() as tmp:
        cap = Path(tmp) / "capture.bin"
        write_capture(cap, data, n)
        size_mb = cap.stat().st_size / 1e6
        runs = []
        for prelude in (WITH_WORKER, ONE_PROCESS):
            db = Path(tmp) / f"import{len(runs)}.db"
            runs.append((machine.run_cli(import_argv(db, cap), prelude), machine.load()))
        conn = sqlite3.connect(Path(tmp) / "import0.db")
        stored = conn.execute("SELECT count(*) FROM raw_frame WHERE kind = 'frame'").fetchone()[0]
        conn.close()
        base = baseline_rate(Path(tmp) / "baseline.db", [data[i % len(data)] for i in range(n)])
    (wall, cpu_s, rss, out), load = runs[0]
    rate = n / wall
    print(
        f"import {n:,} captured frames ({size_mb:.0f} MB) end to end: {rate:,.0f} frames/s"
        f" (target 5,000); {n / cpu_s:,.0f} per CPU second (both processes); peak RSS"
        f" {rss:,.0f} MB ({load})"
    )
    print(f"  {out.strip().splitlines()[-1]}")
    print(f"  journaled frames: {stored:,}")
    (wall1, cpu1, rss1, _), load1 = runs[1]
    print(
        f"  the same in one process: {n / wall1:,.0f} frames/s,"
        f" {n / cpu1:,.0f} per CPU second; peak RSS {rss1:,.0f} MB ({load1}); with the"
        f" worker {wall1 / wall:.2f}x as fast, {cpu_s / cpu1:.2f}x the CPU"
    )
    print(f"  baseline executemany of the frame bytes into SQLite: {base:,.0f} frames/s")
    print(f"  ratio import/baseline: {rate / base:.3f}")


def bench_capture(mb: int, where: Path | None) -> None:
    """Import a capture of ``mb`` MB and print its resident memory as it goes: bounded
    memory means the curve flattens, whatever the size."""
    data, _ = frames(2000)
    with tempfile.TemporaryDirectory(dir=where) as tmp:
        cap = Path(tmp) / "capture.bin"
        t = time.perf_counter()
        n = write_capture(cap, data, None, mb * 1_000_000)
        size = cap.stat().st_size
        print(
            f"import a {size / 1e6:,.0f} MB capture ({n:,} frames; written in"
            f" {time.perf_counter() - t:.0f} s; {machine.load()})"
        )
        db = Path(tmp) / "import.db"
        wall, cpu_s, rss, out, samples = machine.run_cli_watched(import_argv(db, cap), cap)
        db_size = sum(p.stat().st_size for p in Path(tmp).glob("import.db*"))
    print(
        f"  {n / wall:,.0f} frames/s wall, {n / cpu_s:,.0f} per CPU second; peak RSS"
        f" {rss:,.0f} MB; database {db_size / 1e6:,.0f} MB ({machine.load()})"
    )
    print(f"  {out.strip().splitlines()[-1]}")
    print("  resident memory as the file is read (MB read: RSS MB):")
    shown = [s for k, s in enumerate(samples) if k % max(1, len(samples) // 12) == 0]
    print("    " + ", ".join(f"{pos / 1e6:,.0f}: {mem:,.0f}" for pos, mem in shown))


#: header words of the columns the InBody 120 profile reads (or the simulator fills):
#: what a "sparse" row keeps
NEEDED = ("2. ID", "3. Height", "5. Gender", "6. Age", "14. Test Date", "15. Weight", "TBW (Total")
#: identifying columns: left empty in every variant (an export with them is a patient's)
PERSONAL = ("Name", "Birth", "Mobile", "Phone", "Zip", "Address", "E-mail", "Registration", "Memo")
#: not numbers: left as the simulator writes them (the model, a site's own fields)
AS_WRITTEN = ("InBody Type", "Local ID", "Medical History", "Group")


def lookinbody_rows(n: int, k: int, realistic: bool) -> tuple[bytes, list[bytes]]:
    """A LookinBody 120 export of ``n`` rows from ``k`` simulated ones, each again for other
    subjects and days. ``realistic``: every non-identifying cell holds a value, as in a
    real export (tests/data/real/inbody270-lookinbody-site-export.csv: 474 bytes a row),
    cells the simulator leaves empty filled with a number; else only the columns the
    profile reads, the rest empty (the smallest row the profile takes)."""
    from bia_acq.simulator.device import write_capture

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sim.csv"
        write_capture(get_profile("inbody120-lookinbody"), path, k, seed=7)
        head, *sim = path.read_bytes().splitlines(keepends=True)
    names = head.decode("utf-8-sig").rstrip("\r\n").split(",")
    personal = {j for j, h in enumerate(names) if any(w in h for w in PERSONAL)}
    keep = {j for j, h in enumerate(names) if "Impedance" in h or h.startswith(NEEDED)}
    written = {j for j, h in enumerate(names) if any(w in h for w in AS_WRITTEN)}
    rows = []
    for i in range(n):
        cells = sim[i % k].rstrip(b"\r\n").split(b",")
        for j in range(len(cells)):
            if j in personal or not (realistic or j in keep):
                cells[j] = b""
            elif realistic and not cells[j] and j not in written:
                cells[j] = b"%.1f" % (10 + (i * 7 + j * 13) % 900 / 10)
        cells[1] = b"%010d" % i  # 2. ID
        t = dt.datetime(2020, 1, 1) + dt.timedelta(minutes=i)
        cells[13] = t.strftime("%Y%m%d%H%M%S").encode()  # 14. Test Date / Time
        rows.append(b",".join(cells) + b"\r\n")
    return head, rows


def table_sizes(db: Path) -> dict[str, int]:
    """Bytes per table, each with its indexes (dbstat)."""
    conn = sqlite3.connect(db)
    owner = dict(conn.execute("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index'"))
    out: dict[str, int] = {}
    for name, size in conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"):
        if name.startswith("sqlite_autoindex_"):
            name = name[len("sqlite_autoindex_") :].rsplit("_", 1)[0]
        out[owner.get(name, name)] = out.get(owner.get(name, name), 0) + int(size)
    conn.close()
    return out


def bench_lookinbody(n: int) -> None:
    """Import a LookinBody 120 export twice (sparse and real-size rows): rows/s, database
    size against the export's, and where the bytes go (per export row, by table)."""
    for realistic in (False, True):
        with tempfile.TemporaryDirectory() as tmp:
            head, rows = lookinbody_rows(n, min(n, 500), realistic)
            export = Path(tmp) / "InBodyExcelData.csv"
            export.write_bytes(head + b"".join(rows))
            size = export.stat().st_size
            db = Path(tmp) / "lookinbody.db"
            args = ["import", "--driver", "inbody120-lookinbody", "--db", str(db), "--no-progress"]
            wall, cpu_s, rss, out = machine.run_cli([*args, str(export)])
            db_size = sum(p.stat().st_size for p in Path(tmp).glob("lookinbody.db*"))
            by_table = table_sizes(db)
            base = baseline_rate(Path(tmp) / "baseline.db", rows)
        kind = "real-size rows" if realistic else "sparse rows (only the columns read)"
        print(
            f"import a LookinBody 120 export of {n:,} {kind}, {size / n:.0f} bytes a row"
            f" ({size / 1e6:.1f} MB): {n / wall:,.0f} rows/s; {n / cpu_s:,.0f} per CPU second;"
            f" peak RSS {rss:,.0f} MB ({machine.load()})"
        )
        print(f"  {out.strip().splitlines()[-1]}")
        print(
            f"  database {db_size / 1e6:.1f} MB = {db_size / size:.2f} x the export (target <= 3)"
        )
        top = sorted(by_table.items(), key=lambda kv: -kv[1])
        print(
            "  bytes per export row, by table with its indexes: "
            + ", ".join(f"{k} {v / n:,.0f}" for k, v in top if v / n >= 1)
        )
        print(f"  baseline executemany of the rows into SQLite: {base:,.0f} rows/s")
        print(f"  ratio import/baseline: {n / wall / base:.3f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=20_000, help="frames for the decode benchmark")
    p.add_argument("--import-frames", type=int, default=100_000, help="frames to import")
    p.add_argument(
        "--lookinbody-rows", type=int, default=100_000, help="rows of the LookinBody export"
    )
    p.add_argument("--only-lookinbody", action="store_true", help="run benchmark 3 only")
    p.add_argument(
        "--capture-mb",
        type=int,
        metavar="MB",
        help="only: import an MC-780 capture of this size, its memory as it goes (4)",
    )
    p.add_argument("--tmp", type=Path, help="where benchmark 4 writes (a capture and its database)")
    args = p.parse_args()
    print(machine.header())
    if args.capture_mb:
        bench_capture(args.capture_mb, args.tmp)
        return
    if not args.only_lookinbody:
        bench_decode(args.frames)
        bench_import(args.import_frames)
    bench_lookinbody(args.lookinbody_rows)


if __name__ == "__main__":
    main()
