"""The simulator as a technician uses it: every profile, pty / serial / TCP, pacing, faults."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import run_cli, start_cli

from bia_acq.core.estimate import METHODS
from bia_acq.drivers import SerialSettings, builtin_profiles, get_profile
from bia_acq.link import Link
from bia_acq.simulator.device import VirtualAnalyzer
from bia_acq.simulator.endpoint import SerialEndpoint, TcpEndpoint
from bia_acq.simulator.population import builtin_scenarios


def config_for(tmp_path: Path, url: str, driver: str = "tanita-mc780", db: str = "acq.db") -> Path:
    cfg = tmp_path / f"{db}.yaml"
    cfg.write_text(
        f"database: {db}\nports:\n  - url: {url}\n    driver: {driver}\n    name: bench\n"
    )
    return cfg


def stored_impedances(db_path: Path) -> list[list[tuple[str, float, float, float]]]:
    db = sqlite3.connect(db_path)
    out = []
    for (mid,) in db.execute("SELECT id FROM measurement ORDER BY id"):
        out.append(
            db.execute(
                "SELECT segment, freq_khz, r_ohm, x_ohm FROM impedance WHERE measurement_id = ? "
                "ORDER BY segment, freq_khz",
                (mid,),
            ).fetchall()
        )
    db.close()
    return out


def sent_impedances(truth: Path) -> list[list[tuple[str, float, float, float]]]:
    recs = [json.loads(line) for line in truth.read_text().splitlines()]
    return [
        [(z["segment"], z["freq_khz"], z["r_ohm"], z["x_ohm"]) for z in r["reading"]["impedance"]]
        for r in recs
    ]


def test_simulate_as_tcp_server_into_run(tmp_path: Path) -> None:
    truth = tmp_path / "truth.jsonl"
    sim = start_cli(
        "simulate", "--tcp", "127.0.0.1:0", "--fast", "--count", "3", "--interval", "0.05",
        "--seed", "3", "--truth", str(truth),
    )  # fmt: skip
    try:
        assert sim.stdout is not None
        url = sim.stdout.readline().decode().strip()
        assert url.startswith("socket://127.0.0.1:") and not url.endswith(":0")
        run = run_cli("run", "--config", str(config_for(tmp_path, url)), "--count", "3")
        assert run.returncode == 0, run.stderr.decode()
        assert sim.wait(timeout=20) == 0
    finally:
        sim.kill()
        sim.communicate()
    assert stored_impedances(tmp_path / "acq.db") == sent_impedances(truth)


UNSOLICITED = sorted(n for n, p in builtin_profiles().items() if p.dialogue is None)


@pytest.mark.parametrize("name", UNSOLICITED)
def test_every_profile_round_trips_through_a_pty(name: str, tmp_path: Path) -> None:
    """The simulator sends what the profile's codec encodes, and it decodes with that codec.

    (Polled profiles send only when asked: tests/test_polled.py drives them.)
    """
    profile = get_profile(name)
    sent: list[object] = []
    sim = VirtualAnalyzer(
        profile, seed=1, count=2, interval_s=0.01, fast=True,
        link=tmp_path / "dev", on_sent=lambda n, rec, rd: sent.append(rd),
    )  # fmt: skip
    sim.start()
    try:
        link = Link(str(tmp_path / "dev"), profile.serial)
        link.open()
        codec = profile.codec()
        framer = codec.framer()
        frames: list[bytes] = []
        deadline = time.monotonic() + 10
        while len(frames) < 2 and time.monotonic() < deadline:
            frames += [c.context + c.data for c in framer.feed(link.read()) if c.kind == "frame"]
        link.close()
    finally:
        sim.stop()
    assert not (tmp_path / "dev").exists()
    assert len(frames) == 2 and frames == [codec.encode(r) for r in sent]  # type: ignore[arg-type]
    # the spectra follow the profile's options: every listed segment at every listed frequency
    opts = {**profile.options, **profile.simulator}
    wanted = {
        (s, float(f)) for s in opts.get("segments", []) for f in opts.get("frequencies_khz", [])
    }
    for frame in frames:
        assert {(z.segment, z.freq_khz) for z in codec.decode(frame).impedance} == wanted


def test_paced_at_the_line_rate(tmp_path: Path) -> None:
    """At 9600 baud 8E2 (12 bits a character) a frame takes len × 12 / 9600 s at least."""
    base = get_profile("tanita-mc780")
    profile = replace(base, serial=replace(base.serial, parity="E", stopbits=2))
    sim = VirtualAnalyzer(profile, seed=2, count=1, link=tmp_path / "dev")
    stop = threading.Event()
    with sim:
        link = Link(str(tmp_path / "dev"), profile.serial)
        link.open()
        t = threading.Thread(target=sim.run, args=(stop,))
        t.start()
        data = b""
        first = None
        while not data.endswith(b"\r\n"):
            chunk = link.read()
            if chunk and first is None:
                first = time.monotonic()
            data += chunk
        elapsed = time.monotonic() - (first or 0)
        link.close()
        t.join(5)
    assert elapsed >= (len(data) - 20) * 12 / 9600


def test_serial_port_endpoint_uses_the_profile_settings() -> None:
    """A pty's slave stands in for a USB adapter: the simulator opens it as a serial port."""
    import termios

    master, slave = os.openpty()
    name = os.ttyname(slave)
    os.close(slave)
    ep = SerialEndpoint(name, SerialSettings(baudrate=19200, bytesize=7, parity="E", stopbits=2))
    try:
        ep.open()
        attrs = termios.tcgetattr(master)
        assert attrs[5] == termios.B19200  # the output speed the simulator set
        # (a pty keeps CS8 whatever is asked; pyserial holds the rest of the settings)
        assert ep._port is not None
        got_settings = ep._port.get_settings()
        assert (got_settings["bytesize"], got_settings["parity"], got_settings["stopbits"]) == (
            7,
            "E",
            2,
        )
        assert ep.write(b"{hello}\r\n", threading.Event())
        got = b""
        while not got.endswith(b"\r\n"):
            got += os.read(master, 64)
        assert got == b"{hello}\r\n"
    finally:
        ep.close()
        os.close(master)


def test_tcp_endpoint_serves_one_client_after_another() -> None:
    import socket

    ep = TcpEndpoint("127.0.0.1", 0)
    with ep:
        for _ in range(2):
            c = socket.create_connection(("127.0.0.1", ep.port))
            deadline = time.monotonic() + 5
            while not ep.reader_present() and time.monotonic() < deadline:
                time.sleep(0.01)
            assert ep.write(b"abc", threading.Event())
            assert c.recv(3) == b"abc"
            c.sendall(b"?")
            time.sleep(0.05)
            assert ep.read() == b"?"
            c.close()
            time.sleep(0.05)
            assert not ep.reader_present()


def simulate_into_run(
    tmp_path: Path, count: int, stored: int, *sim_args: str, db: str = "acq.db"
) -> tuple[Path, Path, subprocess.CompletedProcess[bytes]]:
    """`simulate` on a pty link, `bia-acq run` until ``stored`` measurements: (truth, db, run)."""
    link = tmp_path / "analyzer"
    truth = tmp_path / "truth.jsonl"
    sim = start_cli(
        "simulate", "--fast", "--interval", "0.02", "--count", str(count), "--link", str(link),
        "--truth", str(truth), *sim_args,
    )  # fmt: skip
    try:
        assert sim.stdout is not None
        assert sim.stdout.readline().startswith(b"/dev/pts/")
        run = run_cli(
            "run", "--config", str(config_for(tmp_path, str(link), db=db)), "--count", str(stored)
        )
        assert run.returncode == 0, run.stderr.decode()
        assert sim.wait(timeout=30) == 0, sim.stderr.read().decode() if sim.stderr else ""
    finally:
        sim.kill()
        sim.communicate()
    return truth, tmp_path / db, run


SCENARIOS = sorted(builtin_scenarios())  # the six (test_scenarios checks which)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_scenario_runs_against_run_and_validates(scenario: str, tmp_path: Path) -> None:
    truth, db, _ = simulate_into_run(tmp_path, 3, 3, "--scenario", scenario, "--seed", "11")
    proc = run_cli("validate", "--truth", str(truth), "--db", str(db), "--json")
    assert proc.returncode == 0, proc.stderr.decode()
    report = json.loads(proc.stdout)
    assert (report["matched"], report["not_stored"], report["unmatched_measurements"]) == (3, 0, 0)
    rows = {(r["segment"], r["quantity"]): r for r in report["rows"] if r["method"] == "hanai-bis"}
    for seg in ("right_arm", "left_arm", "right_leg", "left_leg"):
        # issue 12: the MC-780's three points give values with wide intervals, no label
        # (the simulator's arms are shaped like the real MC-780's: R∞ far above 250 kHz)
        row = rows[(seg, "ECW/TBW")]
        assert row["n"] == 3 and row["labels"]["not applicable"] == 1.0
    assert rows[("whole_body", "ECW L")]["n"] == 3
    # the analyzer's own figures are stored beside them, as printed (rounded truth)
    own = next(
        r
        for r in report["rows"]
        if (r["method"], r["segment"], r["quantity"]) == ("device", "whole_body", "ECW/TBW")
    )
    assert own["n"] == 3 and abs(own["bias"]) < 0.001
    # the label shares per scenario, with the electrode effects it was simulated with
    per = report["scenario_shares"][scenario]
    assert per["electrodes"].startswith("Td 29 ± 8 ns")
    shares = per["methods"][f"hanai-bis v{METHODS['hanai-bis'].version}"]
    assert shares["n"] == 18 and shares["not applicable"] > 0
    assert sum(shares[k] for k in ("earned", "indeterminate", "not applicable", "no band")) == 1
    if scenario == "healthy-adults":
        table = run_cli("validate", "--truth", str(truth), "--db", str(db))
        version = METHODS["hanai-bis"].version
        assert b"limits of agreement" in table.stdout
        assert f"hanai-bis v{version}".encode() in table.stdout
        assert b"per scenario, all rows of a method:" in table.stdout


def test_validate_with_nothing_matching_is_one_line(tmp_path: Path) -> None:
    truth, db, _ = simulate_into_run(tmp_path, 1, 1, "--seed", "1")
    other = tmp_path / "other.jsonl"
    rec = json.loads(truth.read_text())
    rec["reading"]["subject_id"] = "9999999999999999"
    other.write_text(json.dumps(rec) + "\n")
    proc = run_cli("validate", "--truth", str(other), "--db", str(db))
    assert proc.returncode == 1 and proc.stderr.decode().count("\n") == 1
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{}\n")
    proc = run_cli("validate", "--truth", str(bad), "--db", str(db))
    assert proc.returncode == 2 and f"{bad}:1:" in proc.stderr.decode()


def test_faults_on_schedule_reach_the_journal_as_expected(tmp_path: Path) -> None:
    """split@1 unplug@3 garbage@4 stall@6 arrive intact; bad_checksum@2 and truncate@5 do not."""
    truth, db, run = simulate_into_run(
        tmp_path, 6, 4, "--seed", "2",
        "--fault", "split@1", "--fault", "bad_checksum@2", "--fault", "unplug@3=1",
        "--fault", "garbage@4=40", "--fault", "truncate@5", "--fault", "stall@6=0.3",
    )  # fmt: skip
    recs = [json.loads(line) for line in truth.read_text().splitlines()]
    assert [r["faults"] for r in recs] == [
        ["split"], ["bad_checksum"], ["unplug"], ["garbage"], ["truncate"], ["stall"],
    ]  # fmt: skip
    assert [r["intact"] for r in recs] == [True, False, True, True, False, True]
    conn = sqlite3.connect(db)
    kinds = conn.execute("SELECT kind, status, reason FROM raw_frame ORDER BY id").fetchall()
    conn.close()
    assert sum(1 for k, s, _ in kinds if k == "frame" and s == "decoded") == 4
    assert any(s == "rejected" and "checksum" in (r or "") for _, s, r in kinds)
    assert any(k == "truncated" for k, _, _ in kinds)
    assert any(k == "junk" for k, _, _ in kinds)
    report = json.loads(
        run_cli("validate", "--truth", str(truth), "--db", str(db), "--json").stdout
    )
    assert (report["matched"], report["not_stored"], report["not_stored_damaged"]) == (4, 2, 2)
    assert b"disconnected" in run.stderr  # the unplug was seen and survived


def test_replay_of_a_journal_stores_the_same_measurements(tmp_path: Path) -> None:
    truth, db, _ = simulate_into_run(tmp_path, 3, 3, "--seed", "4", "--fault", "garbage@2")
    link = tmp_path / "replayed"
    rep = start_cli("replay", "--db", str(db), "--speed", "20", "--link", str(link))
    try:
        assert rep.stdout is not None
        assert rep.stdout.readline().startswith(b"/dev/pts/")
        run = run_cli(
            "run", "--config", str(config_for(tmp_path, str(link), db="copy.db")), "--count", "3"
        )
        assert run.returncode == 0, run.stderr.decode()
        assert rep.wait(timeout=30) == 0
        assert b"replayed 4 of 4 chunks" in rep.stdout.read()  # 3 frames and the garbage
    finally:
        rep.kill()
        rep.communicate()
    assert (
        stored_impedances(tmp_path / "copy.db") == stored_impedances(db) == sent_impedances(truth)
    )


def journaled(db: Path) -> int:
    """raw_frame rows committed so far (0 before the database exists)."""
    if not db.exists():
        return 0
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM raw_frame").fetchone()[0])
    except sqlite3.OperationalError:  # schema not created yet
        return 0
    finally:
        conn.close()


def test_replay_of_a_capture_file_over_tcp(tmp_path: Path, example_frame: bytes) -> None:
    capture = tmp_path / "capture.bin"
    capture.write_bytes(b"noise" + example_frame + example_frame.replace(b"Wk,71.4", b"Wk,71.5"))
    rep = start_cli("replay", str(capture), "--tcp", ":0", "--fast")
    try:
        assert rep.stdout is not None
        url = rep.stdout.readline().decode().strip()
        run = start_cli("run", "--config", str(config_for(tmp_path, url)), "--duration", "60")
        try:  # stop the service once all three chunks are journaled (no fixed sleep)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and journaled(tmp_path / "acq.db") < 3:
                time.sleep(0.1)
            run.send_signal(signal.SIGTERM)
            assert run.wait(timeout=60) == 0, run.communicate()[1].decode()
        finally:
            run.kill()
            run.communicate()
        assert rep.wait(timeout=30) == 0
    finally:
        rep.kill()
        rep.communicate()
    conn = sqlite3.connect(tmp_path / "acq.db")
    got = conn.execute("SELECT kind, status FROM raw_frame ORDER BY id").fetchall()
    conn.close()
    assert got == [("junk", "discarded"), ("frame", "decoded"), ("frame", "rejected")]


class AskForIt:
    """A toy polled dialogue: the device sends a measurement only when asked with b"M\\r"."""

    unsolicited = False

    def received(self, data: bytes, device: VirtualAnalyzer) -> bytes | None:
        if b"M\r" not in data:
            return b"E\r\n"
        frame, record, reading = device.take_measurement()
        device.record_sent(record, reading)
        return b"!\r\n" + frame


def test_a_dialogue_plugs_into_the_simulator(tmp_path: Path) -> None:
    """The hook issue 7's polled profiles use: bytes from the reader in, the device's answer out."""
    profile = get_profile("tanita-mc780")
    sim = VirtualAnalyzer(
        profile, seed=1, count=1, fast=True, link=tmp_path / "dev", dialogue=AskForIt()
    )
    stop = threading.Event()
    with sim:
        link = Link(str(tmp_path / "dev"), profile.serial)
        link.open()
        t = threading.Thread(target=sim.run, args=(stop,))
        t.start()
        time.sleep(0.3)
        assert link.read() == b""  # nothing unasked
        link.write(b"X\r")
        got = b""
        while b"E\r\n" not in got:
            got += link.read()
        link.write(b"M\r")
        got = b""
        while not (got.startswith(b"!\r\n{") and got.endswith(b"\r\n") and len(got) > 10):
            got += link.read()
        link.close()
        t.join(5)
    assert sim.sent == 1
    assert profile.codec().decode(got[3:]).subject_id is not None


def test_unplug_and_replug_on_tcp_keeps_the_address() -> None:
    import socket

    from bia_acq.simulator.device import Line

    ep = TcpEndpoint("127.0.0.1", 0)
    line = Line(ep, SerialSettings(), fast=True)
    stop = threading.Event()
    with ep:
        address = ep.address
        c = socket.create_connection(("127.0.0.1", ep.port))
        assert line.wait_reader(stop, 5)
        line.unplug(0.1, stop)
        c.settimeout(5)
        assert c.recv(10) == b""  # the reader sees the device go away
        c.close()
        assert ep.address == address
        c = socket.create_connection(("127.0.0.1", ep.port))
        assert line.wait_reader(stop, 5) and line.send(b"back", stop)
        assert c.recv(4) == b"back"
        c.close()


def test_a_polled_analyzer_with_a_scenario_validates(tmp_path: Path) -> None:
    """PC mode: the simulator measures the subjects the work list names, from the scenario."""
    link = tmp_path / "mc980"
    truth = tmp_path / "truth.jsonl"
    db = tmp_path / "acq.db"
    for sid, sex, age, height in (
        ("0000000042", "female", "52", "162.0"),
        ("0000000043", "male", "61", "181.5"),
    ):
        proc = run_cli(
            "worklist",
            "add",
            "--db",
            str(db),
            "--id",
            sid,
            "--sex",
            sex,
            "--age",
            age,
            "--height",
            height,
        )
        assert proc.returncode == 0, proc.stderr
    sim = start_cli(
        "simulate", "--driver", "tanita-mc980-pc", "--scenario", "dialysis-overload", "--fast",
        "--link", str(link), "--seed", "3", "--truth", str(truth),
    )  # fmt: skip
    try:
        assert sim.stdout is not None and sim.stdout.readline().startswith(b"/dev/pts/")
        run = run_cli(
            "run",
            "--config",
            str(config_for(tmp_path, str(link), "tanita-mc980-pc")),
            "--count",
            "2",
        )
        assert run.returncode == 0, run.stderr.decode()
    finally:
        sim.terminate()
        sim.communicate(timeout=60)
    recs = [json.loads(line) for line in truth.read_text().splitlines()]
    assert [
        (r["truth"]["subject_id"], r["truth"]["sex"], r["truth"]["height_cm"]) for r in recs
    ] == [
        ("0000000042", "female", 162.0),
        ("0000000043", "male", 181.5),
    ]
    assert all(r["truth"]["scenario"] == "dialysis-overload" for r in recs)
    report = json.loads(
        run_cli("validate", "--truth", str(truth), "--db", str(db), "--json").stdout
    )
    assert report["matched"] == 2 and report["not_stored"] == 0


def test_a_pty_unplug_drains_what_the_reader_has_not_read_yet(tmp_path: Path) -> None:
    """Closing a pty master throws away what the slave has not read (TIOCOUTQ says 0
    all along): drain waits until a slow reader took every byte written before the cable
    is pulled."""
    from bia_acq.simulator.endpoint import PtyEndpoint

    endpoint = PtyEndpoint(tmp_path / "analyzer")
    path = endpoint.open()
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    got = bytearray()
    taken = threading.Event()

    def slow_reader() -> None:
        taken.wait()  # nothing read until drain has started waiting
        while True:
            try:
                chunk = os.read(fd, 100)
            except OSError:  # EIO: the master went away
                return
            if not chunk:
                return
            got.extend(chunk)

    reader = threading.Thread(target=slow_reader)
    reader.start()
    data = bytes(range(256)) * 8
    try:
        assert endpoint.write(data, threading.Event())
        taken.set()
        endpoint.drain(30.0)
        endpoint.unplug()
    finally:
        taken.set()
        reader.join(30)
        os.close(fd)
        endpoint.close()
    assert bytes(got) == data


def test_a_pty_reader_is_ready_once_it_flushed_its_input_as_pyserial_open_does_last(
    tmp_path: Path,
) -> None:
    """Bytes sent between a reader's open(2) and the input flush that ends pyserial's
    ``open()`` are thrown away by the reader itself: the endpoint waits for that flush
    (packet mode's TIOCPKT_FLUSHREAD), not for a time."""
    import termios

    import serial

    from bia_acq.simulator.endpoint import UNFLUSHED_READER_S, PtyEndpoint

    ep = PtyEndpoint(tmp_path / "analyzer")
    path = ep.open()
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY)  # opened, not yet flushed
        assert ep.reader_present() and not ep.reader_opened()
        os.write(fd, b"M1\r\n")  # what a reader writes arrives without packet mode's byte
        wait_until = time.monotonic() + 10
        got = b""
        while got != b"M1\r\n" and time.monotonic() < wait_until:
            got += ep.read()
        assert got == b"M1\r\n" and not ep.reader_opened()
        termios.tcflush(fd, termios.TCIFLUSH)
        assert ep.reader_opened() and ep.reader_ready()
        os.close(fd)
        assert not ep.reader_present() and not ep.reader_opened()
        # a reader that opens, flushes and leaves between two looks leaves nothing behind
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        termios.tcflush(fd, termios.TCIFLUSH)
        os.close(fd)
        assert not ep.reader_present()
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        assert ep.reader_present() and not ep.reader_opened()
        os.close(fd)
        with serial.Serial(path, 9600, timeout=0):
            assert ep.reader_opened()  # open() returned: pyserial has flushed
        assert not ep.reader_present()
        # a reader that never flushes (cat) is sent to after a while anyway
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        assert not ep.reader_ready()
        time.sleep(UNFLUSHED_READER_S)
        assert ep.reader_ready() and not ep.reader_opened()
        os.close(fd)
    finally:
        ep.close()
