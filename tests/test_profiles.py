"""Every shipped profile end to end: simulate on a pty, `run` stores it; missing data skips, never crashes."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from conftest import run_cli

from bia_acq.drivers import builtin_profiles

#: the Tanita family that sends unsolicited (polled and folder profiles have their own tests)
PROFILES = [
    "tanita-bc418",
    "tanita-bc601",
    "tanita-mc780",
    "tanita-mc980",
    "tanita-sc240",
    "tanita-sc330",
    "tanita-tbf310",
]
PER_PROFILE = 2
SIMULATE = (sys.executable, "-m", "bia_acq", "simulate", "--seed", "3")


def test_shipped_profiles_cover_the_tanita_family() -> None:
    p = builtin_profiles()
    assert set(PROFILES) <= set(p)
    assert p["tanita-tbf310"].serial.describe().startswith("2400 7E1")
    assert p["tanita-mc980"].options["frequencies_khz"] == [1, 5, 50, 250, 500, 1000]
    assert "4800" in p["tanita-mc980"].description and "19200" in p["tanita-mc980"].description


def test_every_profile_simulated_and_run_end_to_end(tmp_path: Path) -> None:
    sims: dict[str, subprocess.Popen[bytes]] = {}
    ports = []
    try:
        for name in PROFILES:
            # through a link the simulator removes when it ends: a port whose simulator is
            # done is never reopened at its /dev/pts number, which another process on the
            # machine may get next (the daemon read a stranger's frames so, at load 10)
            sims[name] = subprocess.Popen(
                [
                    *SIMULATE,
                    "--driver",
                    name,
                    "--count",
                    str(PER_PROFILE),
                    "--interval",
                    "0.3",
                    "--link",
                    str(tmp_path / name),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        for name, sim in sims.items():
            assert sim.stdout is not None
            path = sim.stdout.readline().decode().strip()
            assert path.startswith("/dev/"), sim.stderr.read() if sim.stderr else ""
            ports.append(f"  - {{name: {name}, url: {tmp_path / name}, driver: {name}}}\n")
        config = tmp_path / "all.yaml"
        config.write_text("database: all.db\nports:\n" + "".join(ports))
        total = PER_PROFILE * len(PROFILES)
        run = run_cli("run", "--config", str(config), "--count", str(total), "--duration", "40")
        assert run.returncode == 0, run.stderr.decode()[-2000:]
        assert "Traceback" not in run.stderr.decode()
    finally:
        for sim in sims.values():
            sim.kill()
            sim.communicate()
    db = sqlite3.connect(tmp_path / "all.db")
    stored = dict(
        db.execute(
            "SELECT d.port, count(*) FROM measurement m JOIN device d ON d.id = m.device_id "
            "GROUP BY d.port"
        ).fetchall()
    )
    assert stored == dict.fromkeys(PROFILES, PER_PROFILE)
    assert db.execute("SELECT count(*) FROM raw_frame WHERE status != 'decoded'").fetchone() == (0,)
    status = dict(
        db.execute(
            "SELECT d.port, group_concat(DISTINCT r.fit_status) FROM segment_result r "
            "JOIN measurement m ON m.id = r.measurement_id JOIN device d ON d.id = m.device_id "
            "WHERE r.segment = 'whole_body' AND r.method = 'hanai-bis' GROUP BY d.port"
        ).fetchall()
    )
    assert status["tanita-mc980"] == "ok"
    # issue 12: three frequencies give values with an interval, no label
    assert status["tanita-mc780"].startswith("not applicable: 3 frequencies")
    for name in ("tanita-sc330", "tanita-sc240", "tanita-bc601", "tanita-bc418", "tanita-tbf310"):
        assert status[name] == "fewer than 3 frequencies measured"
    # single-frequency |Z| is stored as sent (R = |Z|, no reactance)
    rows = db.execute(
        "SELECT i.segment, i.freq_khz, i.x_ohm, i.magnitude_only FROM impedance i JOIN measurement m "
        "ON m.id = i.measurement_id JOIN device d ON d.id = m.device_id WHERE d.port = 'tanita-tbf310'"
    ).fetchall()
    assert rows and all(r == ("leg_to_leg", 50.0, None, 1) for r in rows)
