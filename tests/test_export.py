"""Exports: CSV with a stable column set, FHIR R4 validated by fhir.resources, HL7 v2.5 parsed back."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import sqlite3
from pathlib import Path

import hl7
import pytest
from conftest import run_cli
from hypothesis import given, settings
from hypothesis import strategies as st
from readers import RECOVERY_DAYS, RECOVERY_ID

from bia_acq.core.estimate import PUBLISHED_COLUMNS
from bia_acq.report import csvout, hl7v2

#: the documented CSV columns (docs/analysts.md "Exports"); changing them breaks users' spreadsheets
CSV_COLUMNS = [
    "measurement_id",
    "subject_pseudonym",
    "subject_id",
    "measured_at_utc",
    "measured_at_epoch",
    "days_since_baseline",
    "device_model",
    "device_serial_number",
    "sex",
    "age_years",
    "height_cm",
    "weight_kg",
    "segment",
    "method",
    "method_version",
    "ecw_l",
    "icw_l",
    "tbw_l",
    "ecw_tbw_ratio",
    "ecw_tbw_normal_max",
    "ecw_tbw_slight_max",
    "classification",
    "phase_angle_50khz_deg",
    "r0_ohm",
    "baseline_ecw_tbw_ratio",
    "ecw_tbw_ratio_change",
    "ecw_tbw_ratio_minus_other_side",
    "r0_other_side_over_this",
    "fit_status",
]


def export(db: Path, tmp_path: Path, fmt: str, *extra: str) -> bytes:
    out = tmp_path / f"export.{fmt}"
    proc = run_cli("export", "--db", str(db), "--format", fmt, "--out", str(out), *extra)
    assert proc.returncode == 0, proc.stderr
    assert RECOVERY_ID.encode() not in proc.stdout + proc.stderr
    return out.read_bytes()


def db_ratios(db: Path, segment: str) -> list[float]:
    c = sqlite3.connect(db)
    rows = c.execute(
        "SELECT ecw_tbw_ratio FROM v_edema_trend WHERE subject_external_id = ? AND segment = ?"
        " ORDER BY measured_at_epoch",
        (RECOVERY_ID, segment),
    ).fetchall()
    c.close()
    return [r[0] for r in rows]


def test_csv_has_the_documented_columns_and_opens_cleanly(clinic_db: Path, tmp_path: Path) -> None:
    data = export(clinic_db, tmp_path, "csv")
    text = data.decode("utf-8")  # UTF-8
    assert RECOVERY_ID not in text  # pseudonymised by default
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    published = [c.name for c in PUBLISHED_COLUMNS]  # issue 12: intervals, asymmetry
    assert list(rows[0]) == [*CSV_COLUMNS, *published] == csvout.HEADER
    assert len(rows) == (len(RECOVERY_DAYS) + 3) * 6
    for r in rows:
        t = dt.datetime.fromisoformat(r["measured_at_utc"])
        assert t.utcoffset() == dt.timedelta(0)
        assert t.timestamp() == pytest.approx(float(r["measured_at_epoch"]), abs=1e-3)
        assert r["subject_id"] == "" and r["subject_pseudonym"].startswith("P-")
    c = sqlite3.connect(clinic_db)
    pseudonym = c.execute("SELECT pseudonym FROM subject WHERE external_id = ?", (RECOVERY_ID,))
    p = pseudonym.fetchone()[0]
    c.close()
    leg = [
        float(r["ecw_tbw_ratio"])
        for r in rows
        if r["segment"] == "right_leg" and r["subject_pseudonym"] == p
    ]
    assert leg == pytest.approx(db_ratios(clinic_db, "right_leg"), abs=5e-5)


def test_csv_filters_and_identifiers(clinic_db: Path, tmp_path: Path) -> None:
    text = export(
        clinic_db,
        tmp_path,
        "csv",
        "--subject",
        RECOVERY_ID,
        "--since",
        "2026-09-20",
        "--include-identifiers",
    ).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["subject_id"] for r in rows} == {RECOVERY_ID}
    assert len(rows) == 6 * sum(d >= 19 for d in RECOVERY_DAYS)  # visits on 2026-09-20 or later
    assert all(r["measured_at_utc"] >= "2026-09-20" for r in rows)
    proc = run_cli("export", "--db", str(clinic_db), "--format", "csv", "--since", "last week")
    assert proc.returncode == 2 and b"--since" in proc.stderr and proc.stderr.count(b"\n") == 1


def test_csv_cells_never_become_formulas() -> None:
    assert csvout._cell("=HYPERLINK(1)", None) == "'=HYPERLINK(1)"
    assert csvout._cell("0000042", None) == "0000042"
    assert csvout._cell(-0.00001, 4) == "0.0000" and csvout._cell(-1.5, 1) == "-1.5"


def test_fhir_bundle_validates_as_r4_with_loinc_snomed_and_ucum(
    clinic_db: Path, tmp_path: Path
) -> None:
    import fhir.resources
    from fhir.resources.bundle import Bundle

    assert fhir.resources.__fhir_version__ == "4.0.1"
    doc = json.loads(export(clinic_db, tmp_path, "fhir"))
    bundle = Bundle.parse_obj(doc)  # raises on any structural error
    assert bundle.type == "collection"
    resources = [e["resource"] for e in doc["entry"]]
    urls = {e["fullUrl"] for e in doc["entry"]}
    kinds = [r["resourceType"] for r in resources]
    assert kinds.count("Patient") == 4 and kinds.count("Device") == 1
    assert RECOVERY_ID not in json.dumps(doc)
    obs = [r for r in resources if r["resourceType"] == "Observation"]
    for o in obs:
        assert o["subject"]["reference"] in urls and o["device"]["reference"] in urls
        assert o["valueQuantity"]["system"] == "http://unitsofmeasure.org"
    codes = {
        c["code"] for o in obs for c in o["code"]["coding"] if c["system"] == "http://loinc.org"
    }
    assert codes == {"29463-7", "8302-2", "101683-1", "107160-4"}
    weight = next(o for o in obs if o["code"]["coding"][0]["code"] == "29463-7")
    assert (
        weight["valueQuantity"]["code"] == "kg"
        and weight["category"][0]["coding"][0]["code"] == "vital-signs"
    )
    leg = [
        o
        for o in obs
        if o["code"]["coding"][-1]["code"] == "ecw-tbw-ratio"
        and o.get("bodySite", {}).get("coding", [{}])[0].get("code") == "62175007"
    ]
    assert len(leg) == len(RECOVERY_DAYS) + 3
    first = min(
        (o for o in leg if o["effectiveDateTime"].startswith("2026-09-01")),
        key=lambda o: -o["valueQuantity"]["value"],
    )
    assert first["interpretation"][0]["coding"][0]["code"] in ("H", "HU")
    assert first["referenceRange"][0]["high"]["value"] == 0.44
    # the same export gives the same resource IDs (re-import does not duplicate)
    again = json.loads(export(clinic_db, tmp_path, "fhir"))
    assert [e["fullUrl"] for e in again["entry"]] == [e["fullUrl"] for e in doc["entry"]]


def test_fhir_with_identifiers_names_the_patient(clinic_db: Path, tmp_path: Path) -> None:
    from fhir.resources.bundle import Bundle

    doc = json.loads(
        export(clinic_db, tmp_path, "fhir", "--subject", RECOVERY_ID, "--include-identifiers")
    )
    Bundle.parse_obj(doc)
    patients = [e["resource"] for e in doc["entry"] if e["resource"]["resourceType"] == "Patient"]
    assert len(patients) == 1
    assert patients[0]["identifier"][0] == {
        "system": "urn:bia-acq:analyzer-patient-id",
        "value": RECOVERY_ID,
    }


def test_hl7_oru_r01_parses_back_with_loinc_first_and_ucum(clinic_db: Path, tmp_path: Path) -> None:
    data = export(clinic_db, tmp_path, "hl7", "--subject", RECOVERY_ID).decode("utf-8")
    assert "\n" not in data and RECOVERY_ID not in data
    f = hl7.parse_file(data)
    messages = [m for b in f for m in b]
    assert len(messages) == len(RECOVERY_DAYS)
    leg = []
    for msg in messages:
        msh = msg.segment("MSH")
        assert str(msh[9]) == "ORU^R01^ORU_R01" and str(msh[12]) == "2.5"
        assert str(msg.segment("PID")[3][0][4]) == "ANON"
        obx = msg.segments("OBX")
        assert [int(str(s[1])) for s in obx] == list(range(1, len(obx) + 1))
        by_code = {}
        for s in obx:
            ident = s[3][0]
            assert str(s[6][0][2]) == "UCUM" and str(s[11]) == "F"
            if str(ident[2]) == "LN":  # LOINC first, then the local code
                assert str(ident[5]) == "L"
                by_code[str(ident[0])] = s
            else:
                by_code[str(ident[0])] = s
        assert {"29463-7", "8302-2", "101683-1", "107160-4"} <= set(by_code)
        assert str(by_code["29463-7"][6][0][0]) == "kg"
        r = by_code["ecw-tbw-ratio.right-leg"]
        assert str(r[4]) == "5" and str(r[7]) == "0-0.440"
        leg.append((float(str(r[5])), str(r[8])))
    assert [v for v, _ in leg] == pytest.approx(db_ratios(clinic_db, "right_leg"), abs=1e-6)
    assert leg[0][1] == "H" and leg[-1][1] == "N"  # back in the normal band


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30))
def test_hl7_escaping_round_trips_any_text(text: str) -> None:
    seg = f"MSH|^~\\&|X\rPID|1||{hl7v2.escape(text)}^^^BIA-ACQ^PI\r"
    msg = hl7.parse(seg)
    raw = str(msg.segment("PID")[3][0][0])
    assert "|" not in raw and "^" not in raw and "\r" not in raw
    assert msg.unescape(raw) == text


def test_magnitude_only_impedance_is_exported_as_a_magnitude() -> None:
    from bia_acq.report.export import Export, quantities

    e = Export(
        {"weight_kg": None, "height_cm": None},
        impedance=[
            {
                "segment": "right_arm",
                "freq_khz": 50.0,
                "r_ohm": 410.2,
                "x_ohm": None,
                "magnitude_only": 1,
            },
            {
                "segment": "left_arm",
                "freq_khz": 5.0,
                "r_ohm": 390.0,
                "x_ohm": -12.5,
                "magnitude_only": 0,
            },
        ],
    )
    got = {(q.code, q.segment, q.value) for q in quantities(e)}
    assert got == {
        ("impedance-magnitude-50khz", "right_arm", 410.2),
        ("resistance-5khz", "left_arm", 390.0),
        ("reactance-5khz", "left_arm", -12.5),
    }


def test_docs_document_every_csv_column_and_code() -> None:
    from bia_acq.report.export import BODY_SITE, LOINC

    page = Path(__file__).resolve().parent.parent / "docs" / "analysts.md"
    section = page.read_text(encoding="utf-8").split("## Exports", 1)[1]
    for column in CSV_COLUMNS:
        assert f"`{column}`" in section, column
    for code, _ in LOINC.values():
        assert f"`{code}`" in section, code
    for code, _ in BODY_SITE.values():
        assert f"`{code}`" in section, code
