"""`bia-acq subjects`: finding who to report, pseudonyms unless identifiers are asked for."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from conftest import run_cli
from readers import RECOVERY_DAYS, RECOVERY_ID, SITE_BANDS

from bia_acq.report.svg import ratio_text


def test_subjects_lists_pseudonyms_visits_and_the_latest_label(clinic_db: Path) -> None:
    proc = run_cli("subjects", "--db", str(clinic_db))
    assert proc.returncode == 0, proc.stderr
    header, *rows, total = proc.stdout.decode().splitlines()
    assert header.split()[:2] == ["pseudonym", "visits"]
    assert total == f"{len(rows)} subject(s) in {clinic_db}"
    conn = sqlite3.connect(clinic_db)
    pseudonym, ratio, label = conn.execute(
        "SELECT subject_pseudonym, whole_body_ecw_tbw_ratio, whole_body_classification"
        " FROM v_measurement_wide WHERE subject_external_id = ?"
        " ORDER BY measured_at_epoch DESC LIMIT 1",
        (RECOVERY_ID,),
    ).fetchone()
    count = conn.execute("SELECT count(*) FROM subject").fetchone()[0]
    assert len(rows) == count
    row = next(r for r in rows if r.startswith(pseudonym))
    assert row.split()[1] == str(len(RECOVERY_DAYS))
    bands = SITE_BANDS["hanai-bis"]  # the clinic's own (issue 12: none is published)
    assert f"{ratio_text(ratio, [bands.normal_max, bands.slight_max])} {label} (hanai-bis v" in row
    assert RECOVERY_ID not in proc.stdout.decode()  # pseudonyms only by default

    named = run_cli("subjects", "--db", str(clinic_db), "--include-identifiers").stdout.decode()
    assert next(r for r in named.splitlines() if r.startswith(pseudonym)).split()[1] == RECOVERY_ID


def test_a_subject_not_found_points_to_subjects(clinic_db: Path, tmp_path: Path) -> None:
    proc = run_cli(
        "report", "--db", str(clinic_db), "--subject", "nobody", "--out", str(tmp_path / "r.html")
    )
    assert proc.returncode != 0 and b"bia-acq subjects --db" in proc.stderr
