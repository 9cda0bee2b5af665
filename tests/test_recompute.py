"""`bia-acq recompute` and `bia-acq baseline` on a database filled by `bia-acq run`."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from conftest import run_cli

from bia_acq.core.estimate import METHODS

COLS = (
    "measurement_id, segment, method, method_version, r0_ohm, rinf_ohm, alpha, fc_khz, "
    "fit_rms_ohm, ecw_l, icw_l, tbw_l, ecw_tbw_ratio, phase_angle_50khz_deg, classification, "
    "fit_status, fit_grade, fit_flags, ecw_tbw_low, ecw_tbw_high, asymmetry"
)


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("rc")
    proc = run_cli("run", "--db", str(d / "run.db"), "--count", "12", "--interval", "0.05", cwd=d)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    return d / "run.db"


@pytest.fixture
def db(filled: Path, tmp_path: Path) -> Path:
    p = tmp_path / "copy.db"
    shutil.copy(filled, p)
    return p


def count(db: Path) -> int:
    """Measurements stored: `run --count 12` stops after the 12th, and frames already
    received by then are stored too (never dropped), so there may be one or two more."""
    with sqlite3.connect(db) as c:
        n = int(c.execute("SELECT count(*) FROM measurement").fetchone()[0])
    assert n >= 12
    return n


def rows(db: Path, where: str = "1") -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as c:
        return c.execute(
            f"SELECT {COLS} FROM segment_result WHERE {where} ORDER BY 1, 2, 3"
        ).fetchall()


def test_recompute_same_method_reproduces_what_run_stored_and_is_idempotent(db: Path) -> None:
    stored = rows(db)
    n = count(db)
    # the configured method and, beside it, the analyzer's own figures (issue 12)
    assert len(stored) == n * 12 and {r[2] for r in stored} == {"hanai-bis", "device"}
    for _ in range(2):
        proc = run_cli("recompute", "--db", str(db), "--method", "hanai-bis", "--batch", "5")
        assert proc.returncode == 0, proc.stderr.decode()
        assert rows(db) == stored  # batches of 5 give what ingest gave one by one
    out, err = proc.stdout.decode(), proc.stderr.decode()
    version = METHODS["hanai-bis"].version
    assert f"recomputed {n} measurement(s) with hanai-bis v{version}" in out
    assert "whole body:" in out
    assert f"recompute: 5/{n}" in err and f"recompute: {n}/{n} measurements (100%)" in err


def test_recompute_device_rebuilds_the_analyzers_own_rows(db: Path) -> None:
    """The `device` method from the stored device values gives what ingest stored."""
    stored = rows(db, "method = 'device'")
    assert stored and all(r[12] is not None for r in stored if r[1] == "whole_body")
    with sqlite3.connect(db) as c:
        c.execute("DELETE FROM segment_result WHERE method = 'device'")
    proc = run_cli("recompute", "--db", str(db), "--method", "device")
    assert proc.returncode == 0, proc.stderr.decode()
    assert rows(db, "method = 'device'") == stored


def test_other_methods_are_added_next_to_earlier_results(db: Path) -> None:
    before = rows(db, "method = 'hanai-bis'")
    for m in ("lukaski-bolonchuk", "moissl-2006"):
        proc = run_cli("recompute", "--db", str(db), "--method", m)
        assert proc.returncode == 0, proc.stderr.decode()
    assert rows(db, "method = 'hanai-bis'") == before
    lb = rows(db, "method = 'lukaski-bolonchuk' AND segment = 'whole_body'")
    assert len(lb) == count(db) and all(r[11] is not None and r[12] is not None for r in lb)
    with sqlite3.connect(db) as c:
        methods = c.execute(
            "SELECT name, version, ecw_tbw_normal_max FROM method ORDER BY 1"
        ).fetchall()
    # issue 12: no published band for either, so no limits in the method table
    lb_v, hb_v = METHODS["lukaski-bolonchuk"].version, METHODS["hanai-bis"].version
    assert ("lukaski-bolonchuk", lb_v, None) in methods and ("hanai-bis", hb_v, None) in methods


def test_filters_and_mistakes(db: Path) -> None:
    with sqlite3.connect(db) as c:
        pseudonym, n = c.execute(
            "SELECT s.pseudonym, count(*) FROM measurement m JOIN subject s ON s.id = m.subject_id"
            " GROUP BY 1 ORDER BY 2 DESC LIMIT 1"
        ).fetchone()
    proc = run_cli("recompute", "--db", str(db), "--method", "kushner-1992", "--subject", pseudonym)
    assert proc.returncode == 0 and f"recomputed {n} measurement(s)" in proc.stdout.decode()
    assert len(rows(db, "method = 'kushner-1992'")) == 6 * n
    proc = run_cli("recompute", "--db", str(db), "--method", "sun-2003", "--since", "2999-01-01")
    assert proc.returncode == 0 and "recomputed 0 measurement(s)" in proc.stdout.decode()
    for args, part in (
        (["--method", "magic"], "unknown estimation method 'magic'"),
        (["--method", "sun-2003", "--subject", "nobody"], "no subject 'nobody'"),
        (["--method", "sun-2003", "--since", "yesterday"], "--since"),
    ):
        proc = run_cli("recompute", "--db", str(db), *args)
        err = proc.stderr.decode()
        assert proc.returncode == 2 and part in err and len(err.strip().splitlines()) == 1, err


def test_baseline_choose_show_clear(db: Path) -> None:
    with sqlite3.connect(db) as c:
        pseudonym, first, last = c.execute(
            "SELECT s.pseudonym, min(m.id), max(m.id) FROM measurement m"
            " JOIN subject s ON s.id = m.subject_id GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()
    out = run_cli("baseline", "--db", str(db), "--subject", pseudonym).stdout.decode()
    assert f"baseline measurement {first} (first measurement)" in out
    proc = run_cli("baseline", "--db", str(db), "--subject", pseudonym, "--measurement", str(last))
    assert f"baseline measurement {last} (chosen)" in proc.stdout.decode()
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT measurement_id FROM subject_baseline").fetchall() == [(last,)]
    proc = run_cli("baseline", "--db", str(db), "--subject", pseudonym, "--clear")
    assert "(first measurement)" in proc.stdout.decode()
