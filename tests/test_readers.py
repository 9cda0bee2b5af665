"""The schema for readers: method bands in SQL, edema views, read-only reading during writes."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from readers import RECOVERY_DAYS, RECOVERY_ID, SITE_BANDS

from bia_acq.core.estimate import METHODS
from bia_acq.core.methods import Bands
from bia_acq.store.db import open_readonly, open_writer

VIEWS = ("v_measurement_wide", "v_edema_result", "v_edema_trend", "v_edema_latest")
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def clinic(clinic_db: Path) -> Path:
    return clinic_db


def test_method_table_holds_every_method_with_its_bands(tmp_path: Path) -> None:
    db = open_writer(tmp_path / "a.db")
    rows = {
        (r[0], r[1]): (r[2], r[3])
        for r in db.execute(
            "SELECT name, version, ecw_tbw_normal_max, ecw_tbw_slight_max FROM method"
        )
    }
    assert rows == {
        (m.name, m.version): (
            m.bands.normal_max if m.bands else None,
            m.bands.slight_max if m.bands else None,
        )
        for m in METHODS.values()
    }
    assert all(b is None for b, _ in rows.values())  # issue 12: no published band
    m = METHODS["hanai-bis"]
    limit = "SELECT ecw_tbw_normal_max FROM method WHERE name = ? AND version = ?"
    # the service's start writes the bands in force: configured thresholds override
    db.close()
    configured = Bands(normal_max=0.441, slight_max=0.452, source="clinic policy")
    db = open_writer(tmp_path / "a.db", bands={"hanai-bis": configured})
    assert db.execute(limit, [m.name, m.version]).fetchone() == (0.441,)
    # a tool opened without the configuration (worklist, baseline) does not undo them
    db.close()
    db = open_writer(tmp_path / "a.db")
    assert db.execute(limit, [m.name, m.version]).fetchone() == (0.441,)
    # a later service start without thresholds puts the method's own bands back
    db.close()
    db = open_writer(tmp_path / "a.db", bands={})
    assert db.execute(limit, [m.name, m.version]).fetchone() == (None,)
    assert db.execute("SELECT value FROM meta WHERE key = 'report_method'").fetchone() == (
        "hanai-bis",
    )
    db.close()


def test_views_never_format_time_and_pass_iso_utc_and_epoch(clinic: Path) -> None:
    ro = open_readonly(clinic)
    for name, sql in ro.execute("SELECT name, sql FROM sqlite_master WHERE type = 'view'"):
        # measurement (m011) gives back a stored time's text from its epoch, as the writer
        # wrote it (store.schema.utc_sql, tests/test_store.py): no view formats time
        n = 2 if name == "measurement" else 0
        assert sql.lower().count("strftime") == n, name
    for row in ro.execute("SELECT measured_at_utc, measured_at_epoch FROM v_edema_trend"):
        assert ISO_UTC.match(row[0])
        assert dt.datetime.fromisoformat(row[0]).timestamp() == pytest.approx(row[1], abs=1e-3)
    ro.close()


def test_trend_of_an_injury_recovery_patient(clinic: Path) -> None:
    ro = open_readonly(clinic)
    rows = ro.execute(
        "SELECT visit_number, days_since_baseline, ecw_tbw_ratio, classification,"
        " ecw_tbw_ratio_change, baseline_ecw_tbw_ratio, limb_pair, other_side_ecw_tbw_ratio,"
        " ecw_tbw_ratio_minus_other_side, r0_other_side_over_this, ecw_tbw_normal_max"
        " FROM v_edema_trend WHERE subject_external_id = ? AND segment = 'right_leg'"
        " ORDER BY visit_number",
        [RECOVERY_ID],
    ).fetchall()
    assert [r["visit_number"] for r in rows] == list(range(1, len(RECOVERY_DAYS) + 1))
    assert [r["days_since_baseline"] for r in rows] == pytest.approx(RECOVERY_DAYS)
    first, last = rows[0], rows[-1]
    normal_max = SITE_BANDS["hanai-bis"].normal_max  # the clinic's own bands
    assert first["classification"] == "edema" and first["ecw_tbw_ratio"] > normal_max
    assert last["classification"] == "normal" and last["ecw_tbw_ratio"] <= normal_max
    assert first["ecw_tbw_ratio_change"] == 0
    assert last["ecw_tbw_ratio_change"] == pytest.approx(
        last["ecw_tbw_ratio"] - first["baseline_ecw_tbw_ratio"]
    )
    assert last["ecw_tbw_ratio_change"] < -0.02  # the injury's +0.035 is gone
    # the swollen leg holds more ECW than the other one, and less later
    assert first["limb_pair"] == "legs"
    assert first["ecw_tbw_ratio_minus_other_side"] == pytest.approx(
        first["ecw_tbw_ratio"] - first["other_side_ecw_tbw_ratio"]
    )
    assert first["ecw_tbw_ratio_minus_other_side"] > 0.02
    assert abs(last["ecw_tbw_ratio_minus_other_side"]) < 0.015
    assert first["r0_other_side_over_this"] > 1.1 > last["r0_other_side_over_this"]
    assert first["ecw_tbw_normal_max"] == normal_max
    trunk = ro.execute(
        "SELECT DISTINCT limb_pair, ecw_tbw_ratio_minus_other_side FROM v_edema_trend"
        " WHERE segment IN ('trunk', 'whole_body')"
    ).fetchall()
    assert [tuple(r) for r in trunk] == [(None, None)]
    ro.close()


def test_latest_is_one_row_per_subject_and_segment_from_the_last_visit(clinic: Path) -> None:
    ro = open_readonly(clinic)
    latest = ro.execute("SELECT * FROM v_edema_latest").fetchall()
    keys = [(r["subject_id"], r["segment"]) for r in latest]
    # one row for every subject and segment that has a ratio at all (a refused fit,
    # e.g. a noisy derived trunk, leaves its segment out)
    with_ratio = ro.execute(
        "SELECT DISTINCT subject_id, segment FROM v_edema_result WHERE ecw_tbw_ratio IS NOT NULL"
    ).fetchall()
    assert len(keys) == len(set(keys)) and set(keys) == {tuple(r) for r in with_ratio}
    assert len({s for s, _ in keys}) == 4 and len(keys) >= 4 * 5
    leg = next(
        r for r in latest if r["subject_external_id"] == RECOVERY_ID and r["segment"] == "right_leg"
    )
    last = ro.execute(
        "SELECT measurement_id, ecw_tbw_ratio FROM v_edema_trend WHERE subject_external_id = ?"
        " AND segment = 'right_leg' ORDER BY measured_at_epoch DESC LIMIT 1",
        [RECOVERY_ID],
    ).fetchone()
    assert (leg["measurement_id"], leg["ecw_tbw_ratio"]) == tuple(last)
    assert leg["visits"] == len(RECOVERY_DAYS) and leg["classification"] == "normal"
    assert (leg["method"], leg["method_version"]) == ("hanai-bis", METHODS["hanai-bis"].version)
    ro.close()


def test_reading_every_view_never_blocks_the_writer(tmp_path: Path) -> None:
    """A reader holds a read transaction open while `bia-acq run` keeps committing."""
    db = tmp_path / "live.db"
    count = 8
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bia_acq",
            "run",
            "--db",
            str(db),
            "--interval",
            "0.2",
            "--count",
            str(count),
            "--log-level",
            "warning",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # one stored measurement: the schema is there
        assert "measurement=" in first, proc.stderr.read() if proc.stderr else ""
        ro = open_readonly(db)
        ro.execute("BEGIN")  # one snapshot, held while the writer goes on
        seen = {v: ro.execute(f"SELECT * FROM {v}").fetchall() for v in VIEWS}
        held = ro.execute("SELECT count(*) FROM measurement").fetchone()[0]
        rest = proc.stdout.read()  # the writer finishes all its commits meanwhile
        assert proc.wait(timeout=60) == 0
        assert rest.count("measurement=") == count - 1
        assert ro.execute("SELECT count(*) FROM measurement").fetchone()[0] == held
        ro.execute("COMMIT")
        assert ro.execute("SELECT count(*) FROM measurement").fetchone()[0] == count
        for view in VIEWS:
            rows = ro.execute(f"SELECT * FROM {view}").fetchall()
            assert rows and len(rows) >= len(seen[view]), view
        with pytest.raises(sqlite3.OperationalError):
            ro.execute("DELETE FROM method")
        ro.close()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for f in (proc.stdout, proc.stderr):
            if f is not None:
                f.close()


def test_datasette_metadata_names_only_what_exists_and_its_queries_run(
    clinic: Path, tmp_path: Path
) -> None:
    from conftest import run_cli

    out = tmp_path / "meta.json"
    proc = run_cli("datasette-metadata", "--db", str(clinic), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    import json

    meta = json.loads(out.read_text(encoding="utf-8"))
    assert list(meta["databases"]) == ["clinic"]  # Datasette's name for clinic.db
    db = meta["databases"]["clinic"]
    ro = open_readonly(clinic)
    objects = {
        r[0] for r in ro.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
    }
    assert set(VIEWS) <= set(db["tables"]) <= objects
    for name, table in db["tables"].items():
        columns = {r[1] for r in ro.execute(f"PRAGMA table_info({name})")}
        assert table["description"], name
        assert set(table.get("columns", {})) <= columns, (name, set(table["columns"]) - columns)
        assert set(table.get("units", {})) <= columns, name
    for name in VIEWS[1:]:  # every column of the edema views is described
        columns = {r[1] for r in ro.execute(f"PRAGMA table_info({name})")}
        assert set(db["tables"][name]["columns"]) == columns, name
    for name, q in db["queries"].items():
        params = dict.fromkeys(re.findall(r":(\w+)", q["sql"]), "0.01")
        params["pseudonym"] = ro.execute("SELECT pseudonym FROM subject").fetchone()[0]
        rows = ro.execute(q["sql"], {k: params[k] for k in re.findall(r":(\w+)", q["sql"])})
        assert rows.fetchall() is not None and q["title"], name
    ro.close()


def test_change_from_baseline_is_judged_against_the_mdc(clinic: Path) -> None:
    """Issue 12: the recovering leg's R0 rises beyond the minimal detectable change from
    the analyzer's uncertainty; the other leg stays within it."""
    ro = open_readonly(clinic)
    rows = ro.execute(
        "SELECT segment, r0_ohm_change, r0_change_vs_mdc, ecw_l_change_vs_mdc FROM v_edema_trend"
        " WHERE subject_external_id = ? AND segment IN ('right_leg', 'left_leg')"
        " ORDER BY segment, measured_at_epoch",
        [RECOVERY_ID],
    ).fetchall()
    ro.close()
    right = [r for r in rows if r["segment"] == "right_leg"]
    left = [r for r in rows if r["segment"] == "left_leg"]
    assert right[0]["r0_change_vs_mdc"] == "within MDC" and right[0]["r0_ohm_change"] == 0
    assert all(r["r0_change_vs_mdc"] == "increased" for r in right[1:])
    assert all(r["ecw_l_change_vs_mdc"] == "decreased" for r in right[1:])
    assert all(r["r0_change_vs_mdc"] == "within MDC" for r in left)


def test_a_stopped_service_s_database_opens_where_its_reader_may_write_nothing(
    tmp_path: Path,
) -> None:
    """The sync unit (a read-only file system) and a reporting group read the database
    without being able to create files beside it. SQLite's last close deletes the -wal
    and -shm, and a read-only reader cannot open a WAL database without them; the
    service's close leaves them (the -wal empty), so such a reader opens it stopped."""
    from conftest import run_cli
    from daemon import stopped_service_database, unwritable

    site = tmp_path / "site"
    site.mkdir()
    db = site / "acq.db"
    stopped_service_database(tmp_path, db)
    assert Path(f"{db}-wal").stat().st_size == 0 and Path(f"{db}-shm").exists()
    out = tmp_path / "out.csv"
    export = ("export", "--db", str(db), "--format", "csv", "--out", str(out))
    with unwritable(site) as prefix:
        proc = run_cli(*export, prefix=prefix)
    assert proc.returncode == 0, proc.stderr.decode()
    assert len(out.read_text().splitlines()) > 1  # the header and the measurement's rows
    # the same reader where the last close removed them: it cannot open it at all
    for name in ("acq.db-wal", "acq.db-shm"):
        (site / name).unlink()
    with unwritable(site) as prefix:
        proc = run_cli(*export, prefix=prefix)
    assert proc.returncode != 0 and "acq.db" in proc.stderr.decode(), proc.stderr.decode()
