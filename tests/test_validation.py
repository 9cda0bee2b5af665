"""Validation statistics on known numbers, and the truth-file reader on any bytes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bia_acq.core.methods import site_bands
from bia_acq.errors import ConfigError
from bia_acq.simulator.validation import read_truth, validate


def _db(rows: list[tuple[int, str, float, str]]) -> sqlite3.Connection:
    """A minimal stand-in schema with the columns validate reads (subject, clock, Z, results)."""
    conn = sqlite3.connect(":memory:")
    conn.executescript(
        "CREATE TABLE subject (id INTEGER PRIMARY KEY, external_id TEXT);"
        "CREATE TABLE measurement (id INTEGER PRIMARY KEY, subject_id INT, device_clock TEXT);"
        "CREATE TABLE impedance (measurement_id INT, segment TEXT, freq_khz REAL, r_ohm REAL, x_ohm REAL);"
        "CREATE TABLE segment_result (measurement_id INT, segment TEXT, method TEXT, method_version TEXT,"
        " ecw_tbw_ratio REAL, ecw_l REAL, icw_l REAL, tbw_l REAL, classification TEXT);"
    )
    for mid, sid, ratio, cls in rows:
        conn.execute("INSERT OR IGNORE INTO subject VALUES (?, ?)", (mid, sid))
        conn.execute("INSERT INTO measurement VALUES (?, ?, '2026-11-24T09:00:00')", (mid, mid))
        conn.execute(
            "INSERT INTO impedance VALUES (?, 'right_leg', 50.0, ?, -30.0)", (mid, 200.0 + mid)
        )
        conn.execute(
            "INSERT INTO segment_result VALUES (?, 'right_leg', 'hanai-bis', '1', ?, NULL, NULL, NULL, ?)",
            (mid, ratio, cls),
        )
    return conn


def _truth(mid: int, sid: str, ratio: float) -> dict[str, object]:
    return {
        "reading": {
            "subject_id": sid,
            "measured_at": "2026-11-24T09:00:00",
            "impedance": [
                {"segment": "right_leg", "freq_khz": 50.0, "r_ohm": 200.0 + mid, "x_ohm": -30.0}
            ],
        },
        "truth": {"whole_body": {}, "segments": {"right_leg": {"ecw_tbw_ratio": ratio}}},
    }


def test_bias_limits_and_classes_on_known_numbers() -> None:
    est = [0.43, 0.44, 0.46, 0.47]
    true = [0.42, 0.43, 0.44, 0.45]  # differences 0.01, 0.01, 0.02, 0.02
    classes = ["normal", "normal", "edema", "slightly over"]  # bands: <=0.44 normal, <=0.45 slight
    conn = _db([(i + 1, f"S{i}", e, c) for i, (e, c) in enumerate(zip(est, classes, strict=True))])
    truth = [_truth(i + 1, f"S{i}", t) for i, t in enumerate(true)]
    truth.append(_truth(9, "S9", 0.43))  # sent, never stored
    site = {"hanai-bis": site_bands(0.44, 0.45)}  # hanai-bis has no published band
    report = validate(truth, conn, site)
    assert (report.matched, report.not_stored, report.unmatched_measurements) == (4, 1, 0)
    (row,) = report.rows
    assert row.n == 4 and row.bias == pytest.approx(0.015)
    sd = 0.005773502691896258  # sample SD of (0.01, 0.01, 0.02, 0.02)
    assert row.sd == pytest.approx(sd) and row.loa_high == pytest.approx(0.015 + 1.96 * sd)
    # true classes: normal, normal, normal (0.44), slightly over (0.45): 3 of 4 agree
    assert row.class_correct == pytest.approx(0.75) and row.class_n == 4
    assert row.labels == pytest.approx(
        {"earned": 1.0, "wrong": 0.25, "indeterminate": 0, "not applicable": 0, "no band": 0}
    )
    # without the site's bands there is nothing to judge the earned labels by
    assert validate(truth, conn).rows[0].class_correct is None


def test_a_measurement_matches_only_its_own_impedances() -> None:
    conn = _db([(1, "S", 0.43, "normal")])
    other = _truth(2, "S", 0.43)  # same subject and clock, other impedances
    report = validate([other], conn)
    assert (report.matched, report.unmatched_measurements, report.not_stored) == (0, 1, 1)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_any_truth_file_reads_or_is_one_config_error(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    path: Path = tmp_path_factory.mktemp("t") / "truth.jsonl"
    path.write_bytes(data)
    try:
        recs = read_truth(path)
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
    else:
        assert all("reading" in r for r in recs)


def test_a_good_line_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(_truth(1, "S", 0.4)) + "\n\n")
    assert len(read_truth(path)) == 1
