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

from bia_acq.drivers import builtin_profiles, get_profile
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


def test_lookinbody_rows_fill_the_result_columns_a_real_export_fills(tmp_path: Path) -> None:
    """A simulated InBody 120 row fills every result column of the real header (the
    person's columns stay empty), with InBody's identities, at a real row's size."""
    from bia_acq.protocols.lookinbody import PERSONAL_COLUMNS, column_name

    out = tmp_path / "InBodyExcelData.csv"
    write_capture(get_profile("inbody120-lookinbody"), out, 50, seed=7)
    head, *rows = out.read_text().splitlines()
    names = [column_name(c) for c in head.split(",")]
    real_head, real_row = (
        (REAL / "inbody270-lookinbody-site-export.csv").read_text("utf-8-sig").splitlines()
    )
    real_size = len(real_row.encode()) / len(real_head.split(","))  # bytes per column
    size = sum(len(r.encode()) for r in rows) / len(rows) / len(names)
    assert 0.7 < size / real_size < 1.4
    for row in rows:
        cell = dict(zip(names, row.split(","), strict=True))
        empty = {n for n, v in cell.items() if v in ("", "-")}
        assert empty == {n for n in names if n.casefold() in PERSONAL_COLUMNS}
        v = {n: float(x) for n, x in cell.items() if n not in empty and not x[0].isalpha()}
        w, h2 = v["Weight"], (v["Height"] / 100) ** 2
        parts = v["TBW (Total Body Water)"] + v["Protein"] + v["Minerals"]
        assert abs(parts + v["BFM (Body Fat Mass)"] - w) < 0.2  # InBody's identity
        assert abs(v["BMI (Body Mass Index)"] - w / h2) < 0.06
        assert abs(v["PBF (Percent Body Fat)"] - 100 * v["BFM (Body Fat Mass)"] / w) < 0.3
        assert abs(v["BMR (Basal Metabolic Rate)"] - (370 + 21.6 * parts)) < 3
        for k in ("Weight", "TBW", "BFM", "SMM", "PBF"):
            col = next(n for n in names if n.split(" (")[0] == k)
            assert v[f"Lower Limit ({k} Normal Range)"] < v[f"Upper Limit ({k} Normal Range)"]
            assert v[col] > 0
        assert 0.4 < v["TBW (Total Body Water)"] / w < 0.75 and cell["InBody Type"] == "120"


def test_the_inbody_rules_reproduce_the_real_row() -> None:
    """The rules the simulator fills InBody's columns by (simulator/inbody.py) reproduce
    the real InBody 270 row to its printed digits."""
    head, row = (REAL / "inbody270-lookinbody-site-export.csv").read_text("utf-8-sig").splitlines()
    from bia_acq.protocols.lookinbody import column_name

    v = dict(zip((column_name(c) for c in head.split(",")), row.split(","), strict=True))
    f = {k: float(x) for k, x in v.items() if x.replace(".", "").lstrip("-").isdigit()}
    h2 = (f["Height"] / 100) ** 2
    std_w = 22 * h2
    assert (round(0.85 * std_w, 1), round(1.15 * std_w, 1)) == (
        f["Lower Limit (Weight Normal Range)"], f["Upper Limit (Weight Normal Range)"]
    )  # fmt: skip
    std_bfm = 0.15 * std_w  # a man: standard PBF 15 %
    assert (round(0.8 * std_bfm, 1), round(1.6 * std_bfm, 1)) == (8.1, 16.2)
    ffm = f["TBW (Total Body Water)"] + f["Protein"] + f["Minerals"]
    assert abs(ffm - f["FFM (Fat Free Mass)"]) < 0.1
    assert abs(370 + 21.6 * ffm - f["BMR (Basal Metabolic Rate)"]) < 3
    assert abs(ffm / 0.85 - f["Target Weight"]) < 0.15
    assert round(100 * f["Weight"] / std_w) == f["Obesity Degree"]
    limbs = sum(f[f"FFM of {s}"] for s in ("Right Arm", "Left Arm", "Right Leg", "Left Leg"))
    assert round(limbs / h2, 1) == f["SMI (Skeletal Muscle Index)"]
    assert round(ffm / h2) == f["FFMI (Fat Free Mass Index)"]


@pytest.mark.parametrize("driver", sorted(builtin_profiles()))
def test_every_simulated_reading_of_every_profile_decodes(driver: str, tmp_path: Path) -> None:
    # 60 readings with the electrode effects on: what the simulator writes, its decoder
    # reads, every one (seed 5 writes a trunk reactance of -0.1 ohm in LookinBody row 27)
    out = tmp_path / "capture"
    sent = write_capture(get_profile(driver), out, 60, seed=5)
    got = decoded(driver, out.read_bytes())
    assert len(got) == len(sent) == 60
    assert [r.weight_kg for r in got] == [r.weight_kg for r in sent]
