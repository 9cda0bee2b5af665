"""Third-party protocols: the example plugin under tests/plugins works; a broken one harms nothing."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

PLUGINS = Path(__file__).parent / "plugins"
SITE = PLUGINS / "site"  # an installed-package layout: modules + *.dist-info/entry_points.txt
DRIVERS = PLUGINS / "drivers"
ENV = {**os.environ, "PYTHONPATH": str(SITE), "PYTHONUNBUFFERED": "1"}
SIMULATE = (sys.executable, "-m", "bia_acq", "simulate", "--driver", "example-device")
LINE = b"EX|id=42|sex=female|age=52|height=162.0|weight=71.4|right_arm@50.0=329.0/-36.1\n"


def cli(*args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "bia_acq", *args],
        input=input,
        capture_output=True,
        env=ENV,
        timeout=60,
    )


def test_drivers_lists_the_plugin_and_reports_the_broken_one() -> None:
    proc = cli("drivers", "--drivers-dir", str(DRIVERS))
    out = proc.stdout.decode()
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    assert "available" in lines["example"] and "not available" not in lines["example"]
    assert "not available" in lines["broken"] and "ImportError: libexample.so.1" in lines["broken"]
    assert "not available" not in lines["tanita"]
    assert "[protocol not available]" in lines["broken-device"]
    assert "tanita-mc780" in lines and "example-device" in lines


def test_decode_with_the_plugin_and_one_line_error_for_the_broken_one() -> None:
    proc = cli("decode", "--driver", "example-device", "--drivers-dir", str(DRIVERS), input=LINE)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert (out["subject_id"], out["sex"], out["age_years"], out["weight_kg"]) == (
        "42",
        "female",
        52,
        71.4,
    )
    assert out["impedance"] == [
        {"segment": "right_arm", "freq_khz": 50.0, "r_ohm": 329.0, "x_ohm": -36.1}
    ]
    proc = cli("decode", "--driver", "broken-device", "--drivers-dir", str(DRIVERS), input=LINE)
    err = proc.stderr.decode()
    assert proc.returncode == 2 and err.count("\n") == 1 and "not available" in err


def test_simulate_and_run_with_the_plugin_while_a_broken_port_is_skipped(tmp_path: Path) -> None:
    sim = subprocess.Popen(
        [
            *SIMULATE,
            "--drivers-dir",
            str(DRIVERS),
            "--count",
            "2",
            "--interval",
            "0.2",
            "--link",
            str(tmp_path / "ex"),
        ],  # gone when it ends: /dev/pts numbers are reused
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
    )
    try:
        assert sim.stdout is not None
        path = sim.stdout.readline().decode().strip()
        assert path.startswith("/dev/"), sim.stderr.read() if sim.stderr else b""
        config = tmp_path / "c.yaml"
        config.write_text(
            f"database: p.db\ndrivers_dir: {DRIVERS}\nports:\n"
            f"  - {{name: ex, url: {tmp_path / 'ex'}, driver: example-device}}\n"
            f"  - {{name: bad, url: {tmp_path / 'nowhere'}, driver: broken-device}}\n"
        )
        run = cli("run", "--config", str(config), "--count", "2", "--duration", "30")
        err = run.stderr.decode()
        assert run.returncode == 0, err
        assert "port bad is not read" in err and "not available" in err
    finally:
        sim.kill()
        sim.communicate()
    db = sqlite3.connect(tmp_path / "p.db")
    assert db.execute("SELECT count(*) FROM measurement").fetchone() == (2,)
    assert db.execute("SELECT count(*) FROM impedance").fetchone()[0] == 2 * 4 * 3
    fit = db.execute(
        "SELECT DISTINCT fit_grade FROM segment_result WHERE segment = 'right_arm'"
        " AND method = 'hanai-bis'"
    )
    assert {g for (g,) in fit.fetchall()} <= {"good", "fair"}


def test_without_the_plugin_installed_nothing_of_it_shows() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bia_acq", "drivers"], capture_output=True, timeout=60
    )
    assert proc.returncode == 0 and b"example" not in proc.stdout
