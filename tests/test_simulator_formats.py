"""Simulator parity: it writes the real formats the decoders read (LF-only SD-card lines in
either date order, a LookinBody 120 export as CSV and as .xlsx in the real column set)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3
from pathlib import Path

import pytest
from chunking import feed_in_pieces
from conftest import run_cli

from bia_acq.drivers import get_profile
from bia_acq.model import Reading
from bia_acq.simulator.device import write_capture

REAL = Path(__file__).parent / "data" / "real"


def decoded(driver: str, data: bytes, **options: object) -> list[Reading]:
    profile = get_profile(driver)
    codec = dataclasses.replace(profile, options={**profile.options, **options}).codec()
    data = codec.transcode(data) or data
    chunks = feed_in_pieces(codec.framer(), data, [])
    return [codec.decode(c.context + c.data) for c in chunks if c.kind == "frame"]


@pytest.mark.parametrize("order", ["dmy", "mdy"])
def test_bc601_sd_card_lines_in_either_date_order(tmp_path: Path, order: str) -> None:
    out = tmp_path / "DATA1.CSV"
    sent = write_capture(
        get_profile("tanita-bc601"), out, 40, seed=3,
        options={"line_end": "lf", "checksum_brace": True, "date_order": order},
        step=dt.timedelta(days=1, minutes=7),  # a home scale: a measurement a day
    )  # fmt: skip
    data = out.read_bytes()
    assert b"\r" not in data and data.count(b"}\n") == 40  # as the SD card keeps them
    assert decoded("tanita-bc601", data, date_order=order) == sent
    # a profile left to infer the order reads every date it can tell, keeps the rest
    auto = decoded("tanita-bc601", data, date_order="auto")
    told = [(s.measured_at, a.measured_at) for s, a in zip(sent, auto, strict=True)]
    assert all(a in (s, None) for s, a in told)  # never a wrong date
    assert sum(a is not None for _, a in told) >= 12  # day 13 and later tell the order
    assert all(s.day <= 12 and s.month <= 12 for s, a in told if a is None and s.day != s.month)


def test_lookinbody_120_export_in_the_real_column_set(tmp_path: Path) -> None:
    out = tmp_path / "InBodyExcelData.csv"
    sent = write_capture(get_profile("inbody120-lookinbody"), out, 5, seed=4)
    head, *rows = out.read_text().splitlines()
    real = (REAL / "inbody120-lookinbody-header.txt").read_text().splitlines()
    assert head.split(",") == real and len(rows) == 5  # the header once, as LookinBody writes
    got = decoded("inbody120-lookinbody", out.read_bytes())
    assert got == sent and got[0].model == "InBody 120"
    assert {(z.segment, z.freq_khz) for z in got[0].impedance} == {
        (s, f) for s in ("right_arm", "left_arm", "trunk", "right_leg", "left_leg")
        for f in (20.0, 100.0)
    }  # fmt: skip
    assert all(z.magnitude_only for z in got[0].impedance)


def test_lookinbody_120_xlsx_is_written_and_imported(tmp_path: Path) -> None:
    pytest.importorskip("openpyxl")
    out = tmp_path / "InBodyExcelData.xlsx"
    r = run_cli(
        "simulate", "--driver", "inbody120-lookinbody", "--out", str(out), "--count", "4",
        "--seed", "5",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr.decode()
    assert out.read_bytes().startswith(b"PK\x03\x04")
    db = tmp_path / "clinic.db"
    imp = run_cli("import", "--driver", "auto", "--db", str(db), str(out))
    assert imp.returncode == 0, imp.stderr.decode()
    assert b"is inbody120-lookinbody" in imp.stderr
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM measurement").fetchone() == (4,)
    conn.close()
    csv = tmp_path / "same.csv"
    write_capture(get_profile("inbody120-lookinbody"), csv, 4, seed=5)
    assert decoded("inbody120-lookinbody", out.read_bytes())[0].subject_id == (
        decoded("inbody120-lookinbody", csv.read_bytes())[0].subject_id
    )
