"""The simulator speaks the new profiles through a real pty and `bia-acq run` stores them."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from conftest import run_cli, start_cli


@pytest.mark.parametrize(
    ("driver", "magnitude_only", "segments"),
    [
        ("charder-ma801", 0, 6),
        ("openeit-sweep", 15, 1),
    ],
)
def test_simulated_device_is_stored(
    tmp_path: Path, driver: str, magnitude_only: int, segments: int
) -> None:
    link = tmp_path / "dev"
    truth = tmp_path / "truth.jsonl"
    sim = start_cli(
        "simulate",
        "--driver",
        driver,
        "--count",
        "2",
        "--interval",
        "0.2",
        "--seed",
        "2",
        "--link",
        str(link),
        "--truth",
        str(truth),
    )
    try:
        assert sim.stdout is not None and sim.stdout.readline().startswith(b"/dev/pts/")
        cfg = tmp_path / "c.yaml"
        cfg.write_text(f"database: acq.db\nports:\n  - {{url: {link}, driver: {driver}}}\n")
        run = run_cli("run", "--config", str(cfg), "--count", "2", timeout=60)
        assert run.returncode == 0, run.stderr.decode()
        assert sim.wait(timeout=30) == 0
    finally:
        sim.kill()
        sim.communicate()
    sent = [json.loads(line) for line in truth.read_text().splitlines()]
    db = sqlite3.connect(tmp_path / "acq.db")
    rows = db.execute(
        "SELECT m.id, count(DISTINCT i.segment), sum(i.magnitude_only), count(*)"
        " FROM measurement m JOIN impedance i ON i.measurement_id = m.id GROUP BY m.id"
    ).fetchall()
    assert len(rows) == len(sent) == 2
    for (_, nseg, mags, npts), rec in zip(rows, sent, strict=True):
        assert (nseg, mags, npts) == (segments, magnitude_only, len(rec["reading"]["impedance"]))
    ratios = [
        r[0]
        for r in db.execute(
            "SELECT ecw_tbw_ratio FROM segment_result WHERE segment = 'whole_body'"
            " AND method = 'hanai-bis' ORDER BY 1"
        )
    ]
    if magnitude_only:  # no reactance: hanai-bis computes nothing and says why
        assert ratios == [None, None]
        notes = [json.loads(w[0]) for w in db.execute("SELECT warnings_json FROM measurement")]
        assert all(any("without reactance" in n for n in ws) for ws in notes)
    else:  # |Z| and phase at 5 frequencies: the analyzer's own figures are stored as sent,
        # hanai-bis gives a value with its interval (issue 12)
        truths = sorted(rec["truth"]["ecw_tbw_ratio"] for rec in sent)
        own = [
            r[0]
            for r in db.execute(
                "SELECT ecw_tbw_ratio FROM segment_result WHERE segment = 'whole_body'"
                " AND method = 'device' ORDER BY 1"
            )
        ]
        assert own == pytest.approx(truths, abs=0.0006)
        for lo, v, hi in db.execute(
            "SELECT ecw_tbw_low, ecw_tbw_ratio, ecw_tbw_high FROM segment_result"
            " WHERE segment = 'whole_body' AND method = 'hanai-bis'"
        ):
            assert lo < v < hi
