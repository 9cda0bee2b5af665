"""Fault-injection soak: thousands of frames over a real pty with a few percent of faults.

Frames go out whole or split into pieces with small stalls; some carry garbage before
them, a damaged checksum, or are cut short by the next frame; the cable is pulled and
plugged back, a second program tries to open the port, another program holds the
database's write lock past the busy timeout, and the database fills up for a while.
Afterwards every intact frame is stored exactly once, in order; every damaged one is
journaled with its reason; and the bytes journaled are exactly the bytes sent.
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from daemon import wait_until
from ptyline import PtyLine, make_frames

from bia_acq.config import Config, PortConfig
from bia_acq.drivers import get_profile
from bia_acq.service import Service

N = 2000
FAULT_RATE = 0.04


def journaled_bytes(db: Path) -> int:
    c = sqlite3.connect(db, timeout=5)
    try:
        return int(c.execute("SELECT coalesce(sum(length(data)), 0) FROM raw_frame").fetchone()[0])
    finally:
        c.close()


def journal_state(db: Path) -> tuple[int, int]:
    """Bytes journaled and frames still pending (journaled, not yet decoded and stored)."""
    c = sqlite3.connect(db, timeout=5)
    try:
        pending = c.execute("SELECT count(*) FROM raw_frame WHERE status = 'pending'").fetchone()
        return journaled_bytes(db), int(pending[0])
    finally:
        c.close()


def test_soak_every_intact_frame_once_every_damaged_one_kept_no_byte_lost(tmp_path: Path) -> None:
    rng = random.Random(1234)
    frames = make_frames(N, seed=99)
    profile = get_profile("tanita-mc780")
    db = tmp_path / "acq.db"
    line = PtyLine(tmp_path / "analyzer")
    line.plug()
    port = PortConfig("soak", str(line.link), profile.name, profile, profile.serial, silence_s=0.5)
    service = Service(
        Config(database=db, ports=(port,)),
        busy_timeout_ms=100,
        retry_initial_s=0.05,
        retry_max_s=0.2,
        reader_options={"backoff_initial_s": 0.05, "backoff_max_s": 0.2},
    )
    intact: list[bytes] = []
    corrupted: list[bytes] = []
    cut: list[bytes] = []
    garbage = 0
    prev_cut = False
    events = {N // 5: "lock", 2 * N // 5: "unplug", N // 2: "second-open", 3 * N // 5: "full"}
    events[4 * N // 5] = "unplug"
    service.start()
    try:
        line.wait_reader()

        def settle() -> None:  # everything sent so far is journaled (or spooled and moved)
            wait_until(lambda: journaled_bytes(db) == line.written and not len(service.spool))

        for i, frame in enumerate(frames):
            event = events.get(i)
            if event == "unplug":
                settle()
                line.unplug()
                time.sleep(0.2)
                line.plug()
                line.wait_reader()
            elif event == "second-open":
                other = subprocess.run(
                    [
                        sys.executable,
                        "-c",
                        f"import serial; serial.Serial({line.path!r}, exclusive=True)",
                    ],
                    capture_output=True,
                    text=True,
                    timeout=30,
                )
                assert other.returncode != 0 and "exclusively lock" in other.stderr
            elif event == "lock":
                lock = sqlite3.connect(db, isolation_level=None)
                lock.execute("BEGIN IMMEDIATE")
            elif event == "full":
                store = service.store
                assert store is not None
                pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
                store.conn.execute(f"PRAGMA max_page_count = {pages}")
            if event in ("lock", "full"):
                # keep sending through the fault for a while, then lift it
                release_at = i + 40
                events[release_at] = "release-" + event
            elif event == "release-lock":
                wait_until(lambda: len(service.spool) > 0)
                lock.execute("ROLLBACK")
                lock.close()
            elif event == "release-full":
                wait_until(lambda: len(service.spool) > 0)
                store.conn.execute("PRAGMA max_page_count = 1073741823")

            r = rng.random()
            if prev_cut and FAULT_RATE * 2 / 3 <= r < FAULT_RATE:
                r = 1.0  # noise after a cut frame would join it: send this one clean
            prev_cut = False
            if r < FAULT_RATE / 3:  # a damaged checksum: rejected, kept
                bad = frame.replace(b"Wk,", b"Wk,9", 1)
                corrupted.append(bad)
                line.write(bad, pieces=rng.randint(1, 3))
            elif r < 2 * FAULT_RATE / 3:  # cut short: the next frame starts inside it
                part = frame[: rng.randint(1, len(frame) - 3)]
                cut.append(part)
                line.write(part)
                prev_cut = True
            elif r < FAULT_RATE:  # line noise between frames, then the frame
                noise = bytes(rng.choice(b"\x00\xff\r\nxyz~}#") for _ in range(rng.randint(1, 40)))
                garbage += len(noise)
                intact.append(frame)
                line.write(noise + frame, pieces=rng.randint(1, 4))
            else:
                intact.append(frame)
                stall = 0.02 if rng.random() < 0.01 else 0.0  # a stall well inside silence_s
                line.write(frame, pieces=rng.randint(1, 4), pause_s=stall)
        line.write(b"{")  # the last cut frame (if any) is ended by a frame start
        settle()
    finally:
        service.stop()
        line.unplug()

    c = sqlite3.connect(db)
    rows = c.execute("SELECT kind, status, reason, data FROM raw_frame ORDER BY id").fetchall()
    decoded = [bytes(d) for k, s, _, d in rows if s == "decoded"]
    assert decoded == intact  # every intact frame, in order, exactly once
    assert c.execute("SELECT count(*) FROM measurement").fetchone() == (len(intact),)
    rejected = [(bytes(d), r) for k, s, r, d in rows if s == "rejected"]
    assert [d for d, _ in rejected] == corrupted and all("checksum" in r for _, r in rejected)
    truncated = [(bytes(d), r) for k, s, r, d in rows if k == "truncated"]
    assert [d for d, _ in truncated] == [*cut, b"{"] and all(r for _, r in truncated)
    junk = sum(len(d) for k, _, _, d in rows if k == "junk")
    assert junk == garbage
    assert {s for _, s, _, _ in rows} <= {"decoded", "rejected", "discarded"}
    assert sum(len(d) for *_, d in rows) == line.written  # no byte lost, none twice
    assert c.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    c.close()
    assert len(corrupted) > 10 and len(cut) > 10 and garbage > 0  # the faults happened


def test_soak_through_the_simulator_with_random_faults(tmp_path: Path) -> None:
    """The same guarantees with the technicians' simulator and its fault engine (issue 5)
    driving `bia-acq run` as a real process: faults drawn at random, one unplug."""
    link = tmp_path / "analyzer"
    truth = tmp_path / "truth.jsonl"
    db = tmp_path / "acq.db"
    config = tmp_path / "c.yaml"
    config.write_text(
        f"database: {db}\nports:\n  - {{name: soak, url: {link}, driver: tanita-mc780,"
        " silence_s: 0.5}\n"
    )
    faults = ["split:0.05", "garbage:0.05", "bad_checksum:0.02", "truncate:0.02", "flip:0.01",
              "drop:0.01", "stall:0.02=0.1", "unplug@150=0.5"]  # fmt: skip
    sim = subprocess.Popen(
        [sys.executable, "-m", "bia_acq", "simulate", "--fast", "--interval", "0.005",
         "--count", "300", "--seed", "5", "--link", str(link), "--truth", str(truth),
         *(a for f in faults for a in ("--fault", f))],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    run = None
    try:
        assert sim.stdout is not None and sim.stdout.readline().startswith(b"/dev/pts/")
        run = subprocess.Popen(
            [sys.executable, "-m", "bia_acq", "run", "--config", str(config), "--duration", "120"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        assert sim.wait(timeout=90) == 0
        # the simulator is done: wait until the journal stops growing and every journaled
        # frame is processed (a loaded machine may still be computing), then stop the service
        last, stable_since = (-1, 0), time.monotonic()
        while time.monotonic() - stable_since < 1.0 or last[1] > 0:
            now = journal_state(db) if db.exists() else (0, 0)
            if now != last:
                last, stable_since = now, time.monotonic()
            time.sleep(0.1)
        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=60) == 0  # a bound against a hang
    finally:
        for p in (sim, run):
            if p is not None:
                p.kill()
                p.communicate()
    records = [json.loads(line) for line in truth.read_text().splitlines()]
    intact = sum(1 for r in records if r["intact"])
    assert len(records) == 300 and 250 < intact < 300  # a few percent damaged
    validate = [sys.executable, "-m", "bia_acq", "validate", "--truth", str(truth), "--db", str(db)]
    report = json.loads(
        subprocess.run([*validate, "--json"], capture_output=True, check=True).stdout
    )
    # every intact frame stored exactly once, nothing stored that was not sent,
    # and the only frames missing are the ones damaged on purpose
    assert report["matched"] == intact
    assert report["unmatched_measurements"] == 0
    assert report["not_stored"] == report["not_stored_damaged"] == 300 - intact
    c = sqlite3.connect(db)
    try:
        counts = dict(c.execute("SELECT status, count(*) FROM raw_frame GROUP BY 1").fetchall())
        assert counts.get("pending", 0) == 0 and counts.get("duplicate", 0) == 0
        assert counts["decoded"] == intact
        assert counts.get("rejected", 0) + counts.get("discarded", 0) >= 300 - intact
        (n,) = c.execute("SELECT count(*) FROM measurement").fetchone()
        assert n == intact
    finally:
        c.close()
