"""Soak campaign (issue 11): faults, SIGKILLs, unplugs and fuzzing at the promised scale.

Not a CI test: a campaign that takes a while (about 20-40 minutes on a loaded 2-core
machine at the defaults) and prints what happened to every byte sent.

Run: ``python bench/soak.py [--frames 10000] [--kills 20] [--unplugs 50] [--fuzz 100000]``

Part 1, the service: a real ``bia-acq run`` process reads a pty this script writes
(``tests/ptyline.py``). Of the frames, about ``--fault-rate`` (5 %) go out through the
simulator's fault engine (:mod:`bia_acq.simulator.faults`: split, drop, flip, garbage,
bad_checksum, truncate, stall, wrong_baud, each as likely) or carry impossible content
with a correct checksum (an overflowing age, a device date in year 1, |Z| of 10^300, a
control prefix only); ``--unplugs`` frames are preceded by an unplug of the cable
(the pty closed, a new one behind the same link later); at ``--kills`` random moments
the process is killed with SIGKILL and started again. After each kill the database
must pass ``integrity_check`` and ``foreign_key_check``.

What a SIGKILL can lose is what the process holds and has not journaled yet: the
bytes in the reader's hand, the batches in the queue to the writer (bounded in
bytes) and what the kernel's tty buffer held. Those are the frames sent last: a frame
is counted "in flight at a SIGKILL" when it and every frame after it up to the kill are
missing from the journal; any other missing frame is "lost".

Part 2, the codecs: ``--fuzz`` inputs per codec (random bytes, and valid frames with
bytes flipped, dropped, repeated or cut) go through framer → journal → decode →
estimate → store into a real SQLite file, in batches as the service writes them. Every
input byte must be journaled, no exception may escape, no non-finite number may be
stored.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import numpy as np
from ptyline import PtyLine, make_frames, write_config

from bia_acq.acquire import Batch, Ingest, PortRuntime
from bia_acq.drivers import builtin_profiles, get_profile
from bia_acq.protocols.tanita import checksum
from bia_acq.simulator.faults import KINDS, Fault, FaultEngine
from bia_acq.spool import spool_path
from bia_acq.store.db import open_writer
from bia_acq.store.writer import Store

LINE_KINDS = [k for k in KINDS if k != "unplug"]  # unplugs are counted out separately


def tanita_with(frame: bytes, key: str, value: str) -> bytes:
    """``frame`` with one field's value replaced and the checksum made right again."""
    body = frame.rstrip(b"\r\n")
    head = body[: body.rfind(b",CS,") + 1].decode()
    start = head.find(f",{key},")
    if start < 0:
        head = head + f"{key},{value},"
    else:
        end = head.index(",", start + len(key) + 2)
        head = head[: start + len(key) + 2] + value + head[end:]
    data = head.encode()
    return data + b"CS," + checksum(data).encode() + b"\r\n"


CONTENT_FAULTS = {
    "age_overflow": lambda f: tanita_with(f, "AG", "99999999999999999999"),
    "year_1": lambda f: tanita_with(f, "Da", '"01/01/0001"'),
    "impedance_1e300": lambda f: tanita_with(f, "GR", "1e300"),
    "control_prefix_only": lambda f: tanita_with(b"{0,16,~0,1,~1,1,~2,1,CS,00\r\n", "~2", "1"),
}


class Sent:
    """What went on the line, per frame: bytes, whether intact, which fault."""

    def __init__(self) -> None:
        self.frames: list[tuple[bytes, bool, str]] = []  # (frame as sent, intact, fault)
        self.kill_marks: list[int] = []  # number of frames sent before each kill
        self.events: list[tuple[float, str]] = []  # (time, what): kills, unplugs
        self.times: list[float] = []  # when each frame was sent
        self.originals: list[bytes] = []  # each frame as made, before any fault
        self.bytes = 0


def start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "bia_acq", "run", "--config", str(config), "--log-level", "info"],
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def integrity(db: Path) -> bool:
    c = sqlite3.connect(db, timeout=30)
    try:
        ok = c.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return ok and c.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        c.close()


def wait_journaled(db: Path, data: bytes, timeout: float = 30.0) -> None:
    """Wait until ``data`` (the last frame sent) is journaled: the reader has taken what
    was sent before. A pty has no baud rate, so the sender runs ahead of the reader; a
    device at 9600 baud cannot, so an unplug between frames must find the line empty.
    A damaged frame may never be journaled as it was sent: give it a short timeout."""
    sha = hashlib.sha256(data).hexdigest()
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        c = sqlite3.connect(db, timeout=30)
        try:
            found = c.execute("SELECT 1 FROM raw_frame WHERE sha256 = ?", (sha,)).fetchone()
        except sqlite3.OperationalError:
            found = None
        finally:
            c.close()
        if found:
            return
        time.sleep(0.05)


def campaign(args: argparse.Namespace, folder: Path) -> dict[str, object]:
    rng = random.Random(args.seed)
    nprng = np.random.default_rng(args.seed)
    profile = get_profile("tanita-mc780")
    frames = make_frames(args.frames, seed=args.seed)
    db = folder / "soak.db"
    log = folder / "service.log"
    line = PtyLine(folder / "analyzer")
    line.plug()
    config = write_config(
        folder / "soak.yaml",
        db,
        [{"name": "soak", "url": str(line.link), "driver": profile.name, "silence_s": 0.5}],
    )
    per_kind = args.fault_rate / (len(LINE_KINDS) + 1)  # +1: impossible content
    engine = FaultEngine(
        [Fault(k, probability=per_kind, value=0.2 if k == "stall" else None) for k in LINE_KINDS],
        profile.serial,
        nprng,
        silence_s=0.5,
    )
    unplug_at = set(rng.sample(range(1, args.frames), args.unplugs))
    kill_at = set(rng.sample(range(1, args.frames), args.kills))
    sent = Sent()
    integrity_ok = integrity_runs = 0
    proc = start(config, log)
    line.wait_reader(timeout=60)
    t0 = time.monotonic()
    for i, frame in enumerate(frames):
        if i in kill_at:  # a random moment: after a random part of this frame, or between
            time.sleep(rng.uniform(0.0, 0.3))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            sent.events.append((time.time(), "SIGKILL"))
            sent.kill_marks.append(len(sent.frames))
            integrity_runs += 1
            integrity_ok += integrity(db)
            line.unplug()  # what the kernel held for the dead reader goes with it
            line.plug()
            proc = start(config, log)
            line.wait_reader(timeout=60)
            time.sleep(0.5)  # the reader's open finished (termios set): bytes sent earlier
            # meet a tty not yet in raw mode, as a device's would
        if i in unplug_at:
            if sent.frames:  # the cable is pulled between frames
                last, intact, _ = sent.frames[-1]
                wait_journaled(db, last, 30.0 if intact else 3.0)
            line.unplug()
            sent.events.append((time.time(), "unplug"))
            time.sleep(rng.uniform(0.05, 0.5))
            line.plug()
            line.wait_reader(timeout=60)
            time.sleep(0.5)
        if rng.random() < per_kind:  # impossible content, correct checksum
            kind = rng.choice(sorted(CONTENT_FAULTS))
            data = CONTENT_FAULTS[kind](frame)
            pieces: list[tuple[bytes, float]] = [(data, 0.0)]
            intact, fault = False, f"content:{kind}"
        else:
            plan = engine.plan(i + 1, frame)
            pieces = plan.pieces
            intact = plan.intact
            fault = ",".join(plan.fired)
            data = b"".join(p for p, _ in pieces)
        for piece, pause in pieces:
            line.write(piece)
            if pause:
                time.sleep(pause)
        sent.frames.append((data, intact, fault))
        sent.originals.append(frame)
        sent.times.append(time.time())
        sent.bytes += len(data)
        if not intact or fault:
            time.sleep(1.0)  # past the framer's silence: the next frame starts clean
        if i % 500 == 0:
            print(f"  {i:,} frames sent, {time.monotonic() - t0:.0f} s", flush=True)
    wait_journaled(db, sent.frames[-1][0], 120.0 if sent.frames[-1][1] else 10.0)
    deadline = time.monotonic() + 300  # the writer catches up, the spool empties
    while time.monotonic() < deadline:
        c = sqlite3.connect(db, timeout=30)
        pending = c.execute("SELECT count(*) FROM raw_frame WHERE status = 'pending'").fetchone()[0]
        c.close()
        if pending == 0 and not spool_path(db).exists():
            break
        time.sleep(0.5)
    time.sleep(2.0)
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=60)
    line.unplug()
    integrity_runs += 1
    integrity_ok += integrity(db)
    return tally(db, sent, log, code, integrity_ok, integrity_runs, time.monotonic() - t0)


def tally(
    db: Path, sent: Sent, log: Path, code: int, ok: int, runs: int, seconds: float
) -> dict[str, object]:
    c = sqlite3.connect(db)
    journal = [bytes(d) for (d,) in c.execute("SELECT data FROM raw_frame ORDER BY id")]
    stored = collections.Counter(s for (s,) in c.execute("SELECT frame_sha256 FROM measurement"))
    reasons = collections.Counter(
        (r or "").split(":")[0][:60]
        for (r,) in c.execute("SELECT reason FROM raw_frame WHERE status = 'rejected'")
    )
    statuses = dict(c.execute("SELECT status, count(*) FROM raw_frame GROUP BY 1").fetchall())
    c.close()
    stream = b"".join(journal)
    # every frame sent: is its content in the journal (as a frame or inside a chunk)?
    # (order aside: a spool moved in after a restart puts older frames after newer ones)
    chunks = set(journal)
    journaled = [data in chunks or stream.find(data) >= 0 for data, _, _ in sent.frames]
    # missing frames right before a kill are in flight; any other is lost
    in_flight = 0
    in_flight_bytes_max = 0
    excused: set[int] = set()
    for mark in sent.kill_marks:
        k = mark - 1
        nbytes = 0
        while k >= 0 and not journaled[k]:
            excused.add(k)
            nbytes += len(sent.frames[k][0])
            k -= 1
        in_flight += mark - 1 - k
        in_flight_bytes_max = max(in_flight_bytes_max, nbytes)
    lost = [k for k, j in enumerate(journaled) if not j and k not in excused]
    if lost:
        print(f"  lost frames (index): {lost[:20]}; kills after frames {sent.kill_marks}")
        (log.parent / "lost.json").write_text(
            json.dumps(
                {
                    "lost": [(k, sent.times[k], sent.frames[k][2]) for k in lost],
                    "events": sent.events,
                },
                indent=0,
            )
        )
    once = twice = 0
    intact_missing: collections.Counter[str] = collections.Counter()
    for k, (_, intact, fault) in enumerate(sent.frames):
        if not intact:
            continue
        # the frame as made: garbage before it is not part of it
        n = stored.get(hashlib.sha256(sent.originals[k]).hexdigest(), 0)
        once += n == 1
        twice += n > 1
        if n == 0 and k not in excused:
            intact_missing[fault or "none"] += 1
    faults = collections.Counter(
        f.split(",")[0].split(":")[0] if f else "none" for _, _, f in sent.frames
    )
    text = log.read_text(errors="replace")
    return {
        "frames sent": len(sent.frames),
        "bytes sent": sent.bytes,
        "frames with a fault": len(sent.frames) - faults["none"],
        "faults by kind": dict(
            sorted(
                collections.Counter(k for _, _, f in sent.frames for k in f.split(",") if f).items()
            )
        ),
        "frames journaled": sum(journaled),
        "bytes journaled": len(stream),
        "intact frames stored once": once,
        "intact frames stored twice": twice,
        "intact frames not stored (not in flight), by fault": dict(intact_missing),
        "lost": len(lost),
        "in flight at a SIGKILL (frames)": in_flight,
        "in flight at a SIGKILL, most bytes at one kill": in_flight_bytes_max,
        "raw_frame rows by status": statuses,
        "rejected with reason": dict(reasons.most_common(12)),
        "rejected without reason": reasons.get("", 0),
        "SIGKILLs": len(sent.kill_marks),
        "integrity checks passed": f"{ok} of {runs}",
        "reconnections": text.count(": connected") - len(sent.kill_marks) - 1,
        "last exit code": code,
        "tracebacks in the log": text.count("Traceback"),
        "seconds": round(seconds),
    }


def mutate(frame: bytes, rng: random.Random) -> bytes:
    data = bytearray(frame)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        i = rng.randrange(len(data)) if data else 0
        if op == 0 and data:
            data[i] ^= 1 << rng.randrange(8)
        elif op == 1 and data:
            del data[i]
        elif op == 2:
            data[i:i] = data[i : i + rng.randint(1, 16)]
        elif op == 3:
            data = data[: rng.randrange(len(data) + 1)]
        else:
            data[i:i] = rng.choice([b"1e308", b"-0", b"nan", b"99999999999999999999", b'"', b","])
    return bytes(data)


def fuzz(n: int, folder: Path, seed: int) -> dict[str, dict[str, int]]:
    """``n`` fuzzed inputs per codec through the writer's whole path."""
    from bia_acq.simulator.device import VirtualAnalyzer

    rng = random.Random(seed)
    out = {}
    by_protocol = {p.protocol: p for p in sorted(builtin_profiles().values(), key=lambda p: p.name)}
    for protocol, profile in sorted(by_protocol.items()):
        path = folder / f"fuzz-{protocol}.db"
        store = Store(open_writer(path, report_method="hanai-bis"))
        ingest = Ingest(store, "hanai-bis", profiles={profile.name: profile})
        ingest.chunk_log_level = 0
        rt = PortRuntime("fuzz", profile.name, profile.codec(), None, live=False)
        ingest.ports["fuzz"] = rt
        sim = VirtualAnalyzer(profile, seed=seed)
        seeds = [sim.codec.encode(sim.next_measurement()[1]) for _ in range(50)]
        escaped = sent = 0
        t0 = time.monotonic()
        framer = rt.codec.framer()
        chunks = []
        for k in range(n):
            if k % 4 == 0:
                data = rng.randbytes(rng.randrange(300))
            else:
                data = mutate(rng.choice(seeds), rng)
            sent += len(data)
            chunks += framer.feed(data, float(k))
            chunks += framer.flush("fuzz: end of input")
            if len(chunks) >= 256 or k == n - 1:
                try:
                    ingest.handle(Batch("fuzz", rt.driver, chunks, 1.7e9))
                except Exception as exc:  # counted: the property is that none escapes
                    escaped += 1
                    print(f"  {protocol}: {type(exc).__name__}: {str(exc)[:120]}", flush=True)
                chunks = []
        store.db.close()
        c = sqlite3.connect(path)
        (journaled,) = c.execute("SELECT coalesce(sum(length(data)), 0) FROM raw_frame").fetchone()
        rows = dict(c.execute("SELECT status, count(*) FROM raw_frame GROUP BY 1").fetchall())
        nonfinite = 0
        for t in ("measurement", "impedance", "segment_result"):
            for _, col, typ, *_ in c.execute(f"PRAGMA table_info({t})"):
                if typ.upper() == "REAL":
                    nonfinite += c.execute(
                        f'SELECT count(*) FROM {t} WHERE abs("{col}") > 1.7e308'
                    ).fetchone()[0]
        for (text,) in c.execute("SELECT device_values_json FROM measurement"):
            values = json.loads(text)  # NaN and Infinity, if any, come back as floats
            nonfinite += any(isinstance(v, float) and not math.isfinite(v) for v in values.values())
        c.close()
        out[protocol] = {
            "inputs": n,
            "bytes": sent,
            "bytes journaled": int(journaled),
            "exceptions escaped": escaped,
            "non-finite values stored": nonfinite,
            **{f"chunks {k}": int(v) for k, v in sorted(rows.items())},
            "seconds": round(time.monotonic() - t0),
        }
        print(f"  fuzz {protocol}: {out[protocol]}", flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=10_000)
    ap.add_argument("--fault-rate", type=float, default=0.05)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--unplugs", type=int, default=50)
    ap.add_argument("--fuzz", type=int, default=100_000, help="fuzzed inputs per codec")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--dir", type=Path, help="work folder (default: a temporary one)")
    ap.add_argument("--skip-service", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folder = Path(tempfile.mkdtemp(dir=args.dir)) if args.keep else Path(tmp)
        print(f"work folder: {folder}")
        if not args.skip_service:
            print(
                f"service: {args.frames:,} frames, {args.fault_rate:.0%} faults, "
                f"{args.kills} SIGKILLs, {args.unplugs} unplugs",
                flush=True,
            )
            result = campaign(args, folder)
            for k, v in result.items():
                print(f"{k:>48}: {v}")
        if args.fuzz:
            print(f"codecs: {args.fuzz:,} fuzzed inputs each", flush=True)
            fz = fuzz(args.fuzz, folder, args.seed)
            for protocol, row in fz.items():
                print(f"{protocol:>16}: " + ", ".join(f"{k} {v:,}" for k, v in row.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
