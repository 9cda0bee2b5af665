"""No simulated patients in a clinic database: the built-in simulator marks what it
stores, and `run` without --config refuses a database holding real measurements."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from conftest import run_cli


def test_the_built_in_simulator_marks_devices_and_subjects_as_simulated(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    for _ in range(2):  # a second run into its own simulated database is fine
        proc = run_cli("run", "--db", str(db), "--count", "2", "--interval", "0.2", timeout=120)
        assert proc.returncode == 0, proc.stderr
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM measurement").fetchone()[0] == 4
    assert {r[0] for r in conn.execute("SELECT simulated FROM device")} == {1}
    assert {r[0] for r in conn.execute("SELECT simulated FROM subject")} == {1}


def test_run_without_config_refuses_a_database_with_real_measurements(
    clinic_db: Path, tmp_path: Path
) -> None:
    db = tmp_path / "clinic.db"
    shutil.copy(clinic_db, db)
    before = sqlite3.connect(db).execute("SELECT count(*) FROM measurement").fetchone()[0]
    assert (
        before
        and sqlite3.connect(db).execute("SELECT max(simulated) FROM device").fetchone()[0] == 0
    )
    proc = run_cli("run", "--db", str(db), "--count", "1", timeout=120)
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"{db} holds {before} measurement(s) from analyzers" in err and "--db demo.db" in err
    after = sqlite3.connect(db).execute("SELECT count(*) FROM measurement").fetchone()[0]
    assert after == before
