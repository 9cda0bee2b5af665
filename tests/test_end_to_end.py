"""End to end through a real pseudo-terminal, with the CLI as real processes."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import stat
from pathlib import Path

import pytest
from conftest import EXAMPLE_FRAME, run_cli, start_cli


def test_simulate_and_run_store_exactly_what_was_sent(tmp_path: Path) -> None:
    link = tmp_path / "analyzer"
    truth = tmp_path / "truth.jsonl"
    sim = start_cli(
        "simulate",
        "--count",
        "4",
        "--seed",
        "7",
        "--interval",
        "0.2",
        "--link",
        str(link),
        "--truth",
        str(truth),
    )
    try:
        assert sim.stdout is not None
        path = sim.stdout.readline().decode().strip()
        assert path.startswith("/dev/pts/") and os.readlink(link) == path
        config = tmp_path / "bia-acq.yaml"
        config.write_text(
            f"database: acq.db\nports:\n  - url: {link}\n    driver: tanita-mc780\n    name: bench\n"
        )
        run = run_cli("run", "--config", str(config), "--count", "4", timeout=60)
        assert run.returncode == 0, run.stderr.decode()
        assert sim.wait(timeout=30) == 0
    finally:
        sim.kill()
        sim.communicate()
    sent = [json.loads(line) for line in truth.read_text().splitlines()]
    assert len(sent) == 4
    db = sqlite3.connect(tmp_path / "acq.db")
    rows = db.execute(
        "SELECT m.id, s.external_id, m.sex, m.age_years, m.height_cm, m.weight_kg, m.device_clock "
        "FROM measurement m JOIN subject s ON s.id = m.subject_id ORDER BY m.id"
    ).fetchall()
    assert len(rows) == 4
    for (mid, ext, sex, age, height, weight, clock), rec in zip(rows, sent, strict=True):
        r = rec["reading"]
        assert (ext, sex, age, height, weight) == (
            r["subject_id"],
            r["sex"],
            r["age_years"],
            r["height_cm"],
            r["weight_kg"],
        )
        assert clock == r["measured_at"]
        stored = db.execute(
            "SELECT segment, freq_khz, r_ohm, x_ohm FROM impedance WHERE measurement_id = ? "
            "ORDER BY segment, freq_khz",
            (mid,),
        ).fetchall()
        assert stored == [
            (z["segment"], z["freq_khz"], z["r_ohm"], z["x_ohm"]) for z in r["impedance"]
        ]
        results = db.execute(
            "SELECT segment, ecw_tbw_ratio FROM segment_result WHERE measurement_id = ?"
            " AND method = 'hanai-bis'",
            (mid,),
        ).fetchall()
        assert {s for s, _ in results} == {
            "right_arm",
            "left_arm",
            "trunk",
            "right_leg",
            "left_leg",
            "whole_body",
        }
        # issue 12: three frequencies (MC-780) do not determine R∞: hanai-bis keeps its value
        # with a wide interval, earns no label; the analyzer's own figures are stored beside it
        low, high, cls = db.execute(
            "SELECT ecw_tbw_low, ecw_tbw_high, classification FROM segment_result"
            " WHERE measurement_id = ? AND method = 'hanai-bis' AND segment = 'whole_body'",
            (mid,),
        ).fetchone()
        assert cls == "not applicable" and high - low > 0.05
        dev = db.execute(
            "SELECT ecw_tbw_ratio, tbw_l FROM segment_result"
            " WHERE measurement_id = ? AND method = 'device' AND segment = 'whole_body'",
            (mid,),
        ).fetchone()
        truth = rec["truth"]["whole_body"]
        assert dev[0] == pytest.approx(truth["ecw_tbw_ratio"], abs=0.0006)
        assert dev[1] == pytest.approx(truth["tbw_l"], abs=0.06)
    statuses = db.execute("SELECT kind, status, count(*) FROM raw_frame GROUP BY 1, 2").fetchall()
    assert statuses == [("frame", "decoded", 4)]
    assert "P-" in run.stdout.decode()


def test_default_run_stores_five_measurements_privately(tmp_path: Path) -> None:
    proc = run_cli("run", "--count", "5", "--interval", "0.2", cwd=tmp_path, timeout=90)
    out, err = proc.stdout.decode(), proc.stderr.decode()
    assert proc.returncode == 0, err
    db_path = tmp_path / "bia-acq.db"
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600
    db = sqlite3.connect(db_path)
    assert db.execute("SELECT count(*) FROM measurement").fetchone() == (5,)
    assert db.execute("SELECT count(DISTINCT measurement_id) FROM segment_result").fetchone() == (
        5,
    )
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    lines = out.strip().splitlines()
    assert len(lines) == 5 and all("ECW/TBW=0." in line for line in lines)
    # each line shows the stored whole-body 95 % interval beside the value
    for line in lines:
        mid = int(re.search(r"measurement=(\d+)", line).group(1))  # type: ignore[union-attr]
        low, high = db.execute(
            "SELECT ecw_tbw_low, ecw_tbw_high FROM segment_result WHERE measurement_id = ?"
            " AND segment = 'whole_body' AND method = 'hanai-bis'",
            (mid,),
        ).fetchone()
        assert f"[{low:.3f}-{high:.3f}]" in line, line
    ids = [r[0] for r in db.execute("SELECT external_id FROM subject")]
    assert ids and not any(i in out or i in err for i in ids)  # never a patient ID in clear


def test_sigterm_stops_cleanly_with_status_0(tmp_path: Path) -> None:
    proc = start_cli("run", "--interval", "0.2", cwd=tmp_path)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert b"ECW/TBW=" in first
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0  # a bound against a hang, not a speed check
    finally:
        proc.kill()
        proc.communicate()
    db = sqlite3.connect(tmp_path / "bia-acq.db")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert db.execute("SELECT count(*) FROM raw_frame WHERE status = 'pending'").fetchone() == (0,)


def test_decode_prints_the_example_and_errors_for_a_changed_byte() -> None:
    proc = run_cli("decode", "--driver", "tanita-mc780", "-", input=EXAMPLE_FRAME)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["model"] == "MC-780" and out["measured_at"] == "2026-11-03T09:41:00"
    assert (out["subject_id"], out["sex"], out["age_years"]) == ("0000000000000042", "female", 52)
    assert (out["height_cm"], out["weight_kg"]) == (162.0, 71.4)
    assert out["device_values"]["wO"] == 13.7 and out["device_values"]["wo"] == 40.8
    assert {"segment": "right_leg", "freq_khz": 5.0, "r_ohm": 262.0, "x_ohm": -18.1} in out[
        "impedance"
    ]
    assert not any(z["freq_khz"] in (1.0, 500.0, 1000.0) for z in out["impedance"])
    bad = EXAMPLE_FRAME.replace(b"Wk,71.4", b"Wk,71.5")
    proc = run_cli("decode", "--driver", "tanita-mc780", "-", input=bad + EXAMPLE_FRAME)
    assert proc.returncode == 1
    first, second = (json.loads(line) for line in proc.stdout.splitlines())
    assert "checksum" in first["error"] and first["offset"] == len(bad) - 4
    assert second["weight_kg"] == 71.4  # decoding goes on with the next frame
    assert (
        proc.stderr.decode()
        == "standard input: 1 frame(s) decoded, 1 rejected, 0 byte(s) outside frames\n"
    )
    proc = run_cli("decode", "--driver", "tanita-mc780", "-", input=b"noise\r\n" + EXAMPLE_FRAME)
    assert proc.returncode == 1  # bytes outside frames are reported (and journaled live)
    assert (
        proc.stderr.decode()
        == "standard input: 1 frame(s) decoded, 0 rejected, 7 byte(s) outside frames\n"
    )


def test_decode_of_an_empty_file_says_so(tmp_path: Path) -> None:
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    proc = run_cli("decode", "--driver", "tanita-mc780", str(empty))
    assert proc.returncode == 1 and proc.stdout == b""
    assert proc.stderr.decode() == f"{empty}: empty, no bytes to decode\n"


def test_decode_reports_a_damaged_frame_start(tmp_path: Path) -> None:
    capture = tmp_path / "capture.bin"
    capture.write_bytes(EXAMPLE_FRAME.replace(b"{", b"[", 1))
    proc = run_cli("decode", "--driver", "tanita-mc780", str(capture))
    assert proc.returncode == 1
    # not one frame of the driver in the file: one line that says so, with the first bytes
    assert proc.stdout == b"" and proc.stderr.decode().count("\n") == 1
    assert "no tanita-mc780 frame" in proc.stderr.decode() and "it starts '[0,16," in (
        proc.stderr.decode()
    )
    damaged = EXAMPLE_FRAME + EXAMPLE_FRAME.replace(b"CS,A7", b"CS,00")
    capture.write_bytes(damaged)  # a frame among good ones: reported in the JSON lines
    proc = run_cli("decode", "--driver", "tanita-mc780", str(capture))
    assert proc.returncode == 1
    assert "checksum" in json.loads(proc.stdout.splitlines()[1])["error"]


def test_drivers_lists_the_shipped_profile_from_any_directory(tmp_path: Path) -> None:
    proc = run_cli("drivers", cwd=tmp_path)
    assert proc.returncode == 0
    out = proc.stdout.decode()
    assert "tanita-mc780" in out and "9600 8N1" in out and "tanita" in out
    inbody = next(line for line in out.splitlines() if "inbody-lookinbody-csv" in line)
    assert inbody.split()[3] == "folder" and "8N1" not in inbody  # a folder source's profile


def test_unknown_driver_is_one_line(tmp_path: Path) -> None:
    proc = run_cli("decode", "--driver", "nope", "-", input=b"")
    assert proc.returncode == 2
    assert proc.stderr.decode().count("\n") == 1 and "tanita-mc780" in proc.stderr.decode()
