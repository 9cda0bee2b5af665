"""Polled analyzers (Tanita PC mode): the dialogue against the simulator through a real pty."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from conftest import run_cli, start_cli

from bia_acq import worklist
from bia_acq.config import Config, PortConfig
from bia_acq.dialogue import TANITA_ERRORS
from bia_acq.drivers import get_profile
from bia_acq.service import Service
from bia_acq.simulator.device import VirtualAnalyzer
from bia_acq.store.db import open_writer

PROFILE = get_profile("tanita-mc980-pc")


def test_the_profile_declares_the_mc980_dialogue() -> None:
    d = PROFILE.dialogue
    assert d is not None and d.enter == ("M1",) and d.start == "G"
    assert d.command_gap_s == 0.1
    assert d.render(
        {
            "sex_code": "2",
            "body_type_code": "0",
            "height_cm": 162.0,
            "age_years": 7,
            "subject_id": "42",
            "tare_kg": None,
        }
    ) == ["D12", "D20", "D3162.0", "D407", "D542"]
    assert d.classify("D3162.0", "D3") == ("ack", "")
    assert d.classify("D3085.0", "D3!")[0] == "rejected"
    assert d.classify("G", "E2") == ("error", f"E2: {TANITA_ERRORS['E2']}")
    assert d.classify("Z", "!")[0] == "rejected"


def test_worklist_measurements_go_to_the_right_subjects(tmp_path: Path) -> None:
    link = tmp_path / "mc980"
    sim = start_cli(
        "simulate",
        "--driver",
        "tanita-mc980-pc",
        "--link",
        str(link),
        "--seed",
        "3",
    )
    try:
        assert sim.stdout is not None
        assert sim.stdout.readline().startswith(b"/dev/pts/")
        db = tmp_path / "acq.db"
        # the analyzer refuses 85 cm (MC-980 range 90-249): that entry fails, the rest go on
        for args in (
            ["--id", "0000000007", "--sex", "male", "--age", "30", "--height", "85"],
            ["--id", "0000000042", "--sex", "female", "--age", "52", "--height", "162.0"],
            [
                "--id",
                "0000000043",
                "--sex",
                "male",
                "--age",
                "61",
                "--height",
                "181.5",
                "--body-type",
                "athletic",
                "--tare",
                "0.5",
            ],
        ):
            proc = run_cli("worklist", "add", "--db", str(db), *args)
            assert proc.returncode == 0, proc.stderr
        cfg = tmp_path / "bia-acq.yaml"
        cfg.write_text(
            f"database: {db}\nports:\n  - {{url: {link}, driver: tanita-mc980-pc, name: mc980}}\n"
        )
        run = run_cli("run", "--config", str(cfg), "--count", "2", timeout=60)
        assert run.returncode == 0, run.stderr.decode()
    finally:
        sim.terminate()
        sim.communicate(timeout=10)
    conn = sqlite3.connect(db)
    rows = conn.execute(
        "SELECT w.id, w.status, w.reason, s.external_id, m.sex, m.age_years, m.height_cm,"
        " m.device_values_json FROM worklist w LEFT JOIN measurement m ON m.id = w.measurement_id"
        " LEFT JOIN subject s ON s.id = m.subject_id ORDER BY w.id"
    ).fetchall()
    assert rows[0][:2] == (1, "failed") and "rejected D3" in rows[0][2]
    assert rows[1][1:7] == ("done", None, "0000000042", "female", 52, 162.0)
    assert rows[2][1:7] == ("done", None, "0000000043", "male", 61, 181.5)
    assert '"Bt": 2' in rows[2][7]  # athletic body type reached the device
    kinds = conn.execute("SELECT kind, status, count(*) FROM raw_frame GROUP BY 1, 2").fetchall()
    assert ("frame", "decoded", 2) in kinds  # and every reply journaled as discarded junk
    assert dict(((k, s), n) for k, s, n in kinds)[("junk", "discarded")] >= 3 + 2 * 6
    listing = run_cli("worklist", "list", "--db", str(db)).stdout.decode()
    assert "done" in listing and "failed" in listing and "0000000042" not in listing
    assert (
        "0000000042" in run_cli("worklist", "list", "--db", str(db), "--show-ids").stdout.decode()
    )
    assert "0000000042" not in run.stderr.decode() + run.stdout.decode()  # never logged


def test_errors_and_timing_in_process(tmp_path: Path) -> None:
    """E2 from the analyzer fails the entry with its meaning; no command breaks the timing rules."""
    sim = VirtualAnalyzer(PROFILE, seed=5)
    sim.open()
    assert sim.pcmode is not None
    sim.pcmode.fail_next = ["E2"]
    stop = threading.Event()
    t = threading.Thread(target=sim.run, args=(stop,), daemon=True)
    t.start()
    db_path = tmp_path / "acq.db"
    db = open_writer(db_path)
    first = worklist.add(db.conn, external_id="11", sex="female", age_years=40, height_cm=170.0)
    second = worklist.add(db.conn, external_id="12", sex="male", age_years=70, height_cm=175.0)
    db.close()
    saved = []
    port = PortConfig("mc980", sim.path, PROFILE.name, PROFILE, PROFILE.serial)
    service = Service(Config(database=db_path, ports=(port,)), on_saved=saved.append)
    service.start()
    try:
        deadline = time.monotonic() + 20
        while not saved and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        service.stop()
        stop.set()
        t.join(5)
        sim.close()
    assert len(saved) == 1
    conn = sqlite3.connect(db_path)
    e1 = worklist.get(conn, first)
    e2 = worklist.get(conn, second)
    assert e1 is not None and e1.status == "failed" and e1.reason == f"E2: {TANITA_ERRORS['E2']}"
    assert e2 is not None and e2.status == "done" and e2.measurement_id == saved[0].measurement_id
    assert sim.pcmode.timing_violations == 0 and sim.pcmode.ignored_while_measuring == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--id", "a b"], "--id: expected 1 to 16"),
        (["--height", "30"], "--height: expected 50 to 250 cm"),
    ],
)
def test_worklist_add_mistakes_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    base = {"--id": "1", "--sex": "male", "--age": "40", "--height": "170"}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    flat = [x for kv in base.items() for x in kv]
    proc = run_cli("worklist", "add", "--db", str(tmp_path / "a.db"), *flat)
    assert proc.returncode == 2 and message in proc.stderr.decode()


def test_a_silent_analyzer_consumes_no_work_list_entry(tmp_path: Path) -> None:
    """Device off or not in PC mode: no answer to M1, the entry keeps waiting."""
    import dataclasses

    assert PROFILE.dialogue is not None
    profile = dataclasses.replace(
        PROFILE, dialogue=dataclasses.replace(PROFILE.dialogue, reply_timeout_s=0.2)
    )
    master, slave = os.openpty()
    path = os.ttyname(slave)
    db_path = tmp_path / "acq.db"
    db = open_writer(db_path)
    entry_id = worklist.add(db.conn, external_id="9", sex="male", age_years=40, height_cm=170.0)
    db.close()
    port = PortConfig("off", path, profile.name, profile, profile.serial)
    service = Service(Config(database=db_path, ports=(port,)))
    service.start()
    try:
        deadline = time.monotonic() + 10
        while service.sources[port.name].state != "waiting" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert service.sources[port.name].state == "waiting"
        assert os.read(master, 100).startswith(b"M1\r\n")  # it asked, and only that
    finally:
        service.stop()
        os.close(master)
        os.close(slave)
    conn = sqlite3.connect(db_path)
    e = worklist.get(conn, entry_id)
    conn.close()
    assert e is not None and e.status == "waiting"
