"""Every capture in tests/data/real/ decodes to the values its source shows.

The files and where each comes from are listed in tests/data/real/README.md.
Expected values are the ones a person can check against the source (its own
tests, its printout, the device's own computed values), never values this
project computed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bia_acq.drivers import get_profile

REAL = Path(__file__).parent / "data" / "real"
SITE_PROFILES = REAL / "site-profiles"

#: The ONE place where a corpus file that does not decode yet is marked, with the
#: reason. Strict: a file that starts decoding fails here until its mark goes.
NOT_YET: dict[str, str] = {}


def frames(driver: str, name: str, drivers_dir: Path | None = None) -> list[dict[str, Any]]:
    """Decode a corpus file as `bia-acq decode` does: framer, then decoder, per chunk."""
    from bia_acq.errors import FrameError

    codec = get_profile(driver, [drivers_dir] if drivers_dir else ()).codec()
    framer = codec.framer()
    data = (REAL / name).read_bytes()
    out: list[dict[str, Any]] = []
    for chunk in [*framer.feed(data), *framer.flush()]:
        if chunk.kind == "frame":
            try:
                reading = codec.decode(chunk.context + chunk.data)
            except FrameError as exc:
                out.append({"error": exc.reason})
                continue
            d = reading.to_json()
            d["warnings"] = codec.check(reading)
            out.append(d)
        elif chunk.data.strip(b"\r\n\x00 \t") and not (chunk.reason or "").startswith("header"):
            out.append({"kind": chunk.kind, "reason": chunk.reason})
    return out


def z_of(frame: dict[str, Any]) -> dict[tuple[str, float], tuple[float, float | None]]:
    return {(p["segment"], p["freq_khz"]): (p["r_ohm"], p["x_ohm"]) for p in frame["impedance"]}


# -- Tanita MC-780 ----------------------------------------------------------------
def check_mc780() -> None:
    (f,) = frames("tanita-mc780", "tanita-mc780-pc-mode.txt")
    assert f["model"] == "MC-780" and f["measured_at"] == "2019-02-18T17:35:00"
    assert (f["sex"], f["age_years"], f["height_cm"], f["weight_kg"]) == ("male", 28, 167.0, 87.3)
    v = f["device_values"]
    # the analyzer's own water figures (PHYSIOLOGY.md: ECW 16.9, ICW 26.1, TBW 43.0, 0.393)
    assert (v["wO"], v["wI"], v["wW"], v["wo"]) == (16.9, 26.1, 43.0, 39.3)
    z = z_of(f)
    assert z[("right_leg", 5.0)] == (224.6, -16.4)
    assert z[("right_arm", 50.0)] == (287.1, -37.2)
    assert z[("left_arm", 250.0)] == (263.0, -40.9)
    assert z[("leg_to_leg", 50.0)] == (367.8, -57.0)
    assert z[("whole_body_right", 50.0)] == (511.3, -70.3)
    assert len(z) == 18  # 6 paths x 5/50/250 kHz; 1/500/1000 kHz sent as 0.0
    assert f["warnings"] == []  # its phases and wo agree with its own R, X and wO/wW


def check_mc780a_weight_only() -> None:
    """The same MC-780A 22 minutes later, weighing only: control ``{0,16,~0,1,`` alone,
    no body composition, and a ``"`` after the checksum (``CS,57"``; 57 is right)."""
    (f,) = frames("tanita-mc780", "tanita-mc780a-weight-only.txt")
    assert (f["model"], f["measured_at"], f["weight_kg"]) == ("MC-780", "2026-06-03T15:22:00", 67.8)
    assert (f["sex"], f["height_cm"], f["impedance"]) == (None, None, [])


def check_mc780a() -> None:
    """A second MC-780 (an MC-780A, whose firmware sends TBW ``wW`` but no ECW/ICW),
    checked against the values its source's own tests assert."""
    (f,) = frames("tanita-mc780", "tanita-mc780a-pc-mode.txt")
    assert f["model"] == "MC-780" and f["measured_at"] == "2026-06-03T15:00:00"
    assert (f["sex"], f["age_years"], f["height_cm"], f["weight_kg"]) == ("male", 47, 175.5, 67.6)
    v = f["device_values"]
    assert (v["FW"], v["fW"], v["mW"], v["ww"], v["MI"], v["IF"], v["rB"]) == (
        18.3, 12.4, 52.3, 56.5, 21.9, 9, 1514,
    )  # fmt: skip
    assert v["wW"] == 38.2 and "wO" not in v and "wI" not in v  # TBW only
    assert (v["FR"], v["fR"], v["MR"], v["mR"], v["SR"]) == (16.3, 2.1, 10.9, 10.3, -1)
    assert (v["FT"], v["mT"], v["sT"], v["AS"], v["ah"]) == (20.3, 26.5, -2, 25.8, 8.38)
    z = z_of(f)
    # the source's "wholeBody" is the M path: 5 kHz 643.8/-28.3, 50 kHz 565.9/-61.0
    assert z[("whole_body_left", 5.0)] == (643.8, -28.3)
    assert z[("whole_body_left", 50.0)] == (565.9, -61.0)
    assert z[("right_leg", 250.0)] == (205.1, -16.4)
    assert z[("leg_to_leg", 50.0)] == (464.9, -47.3)
    assert len(z) == 21  # 7 paths (arms, legs, leg to leg, both hand-to-foot) x 5/50/250 kHz
    assert v["pM"] == -6.2
    assert f["warnings"] == []  # its phases agree with its own R and X


def check_sc330_example() -> None:
    (f,) = frames("tanita-sc330", "tanita-sc330-example.txt")
    assert (f["model"], f["serial_number"], f["measured_at"]) == (
        "SC-330", "00000001", "2014-09-25T08:20:00",
    )  # fmt: skip
    assert (f["sex"], f["age_years"], f["height_cm"], f["weight_kg"]) == ("male", 34, 191.0, 89.2)
    v = f["device_values"]
    # the values the source's log shows it forwarding: fat 18.8 % / 16.8 kg, lean 72.4,
    # muscle 68.8, bone 3.6, water 48.0 kg / 53.8 %, BMI 24.5, metabolic age 29
    assert (v["FW"], v["fW"], v["MW"], v["mW"], v["bW"]) == (18.8, 16.8, 72.4, 68.8, 3.6)
    assert (v["wW"], v["ww"], v["MI"], v["rA"]) == (48.0, 53.8, 24.5, 29)
    (p,) = f["impedance"]
    assert (p["segment"], p["freq_khz"], p["r_ohm"], p["magnitude_only"]) == (
        "leg_to_leg", 50.0, 501.8, True,
    )  # fmt: skip


# -- Tanita BC-601 ----------------------------------------------------------------
def check_bc601_sd_card() -> None:
    fs = frames("tanita-bc601", "tanita-bc601-sd-card.txt")
    assert len(fs) == 5 and all("error" not in f and "kind" not in f for f in fs)
    f = fs[0]
    assert f["measured_at"] == "2016-01-12T23:48:53"
    assert (f["sex"], f["age_years"], f["height_cm"], f["weight_kg"]) == ("male", 26, 185.0, 96.1)
    v = f["device_values"]
    assert (v["FW"], v["mW"], v["bW"], v["ww"], v["IF"], v["rD"], v["rA"]) == (
        18.9, 74.1, 3.8, 58.9, 5, 4871, 25,
    )  # fmt: skip
    fat = (v["Fr"], v["Fl"], v["FR"], v["FL"], v["FT"])
    muscle = (v["mr"], v["ml"], v["mR"], v["mL"], v["mT"])
    assert fat == (12.6, 13.3, 17.8, 18.6, 20.8) and muscle == (5.1, 5.2, 12.5, 12.3, 39.0)
    assert [f["measured_at"] for f in fs[2:]] == [
        "2016-01-13T00:25:06", "2016-01-13T00:30:06", "2016-01-13T07:20:10",
    ]  # fmt: skip


def check_bc601_imperial() -> None:
    f = frames("tanita-bc601", "tanita-bc601-sd-card.txt")[1]
    assert f["measured_at"] == "2016-05-10T06:06:57"
    assert f["weight_kg"] == pytest.approx(93.53, abs=0.01)  # 206.2 lb
    assert f["height_cm"] == pytest.approx(185.4, abs=0.05)  # 73.0 in
    v = f["device_values"]
    assert v["mW"] == pytest.approx(71.67, abs=0.01) and v["mW_lb"] == 158.0
    assert v["bW"] == pytest.approx(3.72, abs=0.01) and v["bW_lb"] == 8.2
    assert v["mr"] == pytest.approx(4.90, abs=0.01)  # segment muscle, 10.8 lb
    assert (v["FW"], v["ww"], v["Fr"]) == (19.4, 58.1, 12.1)  # percentages unchanged


def check_bc601_ambiguous_dates() -> None:
    # as the profile says (dd/mm/yyyy): decoded, no warning
    fs = frames("tanita-bc601", "tanita-bc601-ambiguous-dates.txt")
    assert [f["measured_at"] for f in fs] == [
        "2025-09-12T09:15:13", "2024-02-07T12:32:26", "2023-05-02T11:59:02",
    ]  # fmt: skip
    assert fs[1]["sex"] == "female" and fs[1]["weight_kg"] == 57.2
    # with date_order: auto every one of them is ambiguous: kept, with a warning
    auto = frames("tanita-bc601-auto", "tanita-bc601-ambiguous-dates.txt", SITE_PROFILES)
    assert len(auto) == 3 and all(f["measured_at"] is None for f in auto)
    assert auto[0]["device_values"]["DT"] == "12/09/2025"
    assert all("ambiguous" in " ".join(f["warnings"]) for f in auto)


def check_bc601_prof() -> None:
    (f,) = frames("tanita-bc601", "tanita-bc601-prof.csv")
    assert f["kind"] == "junk" and "profile record" in f["reason"]


# -- Tanita TBF-310 -----------------------------------------------------------------
def check_tbf310_onyx() -> None:
    """Positional: body type, sex, height, weight, |Z|, fat %, fat mass, FFM, TBW, age,
    BMI, BMR kJ, the order the source's parser reads them in."""
    (f,) = frames("tanita-tbf310", "tanita-tbf310-onyx.txt")
    assert (f["sex"], f["age_years"], f["height_cm"], f["weight_kg"]) == (
        "female",
        27,
        185.0,
        110.6,
    )
    v = f["device_values"]
    assert (v["Bt"], v["FW"], v["fW"], v["MW"], v["wW"], v["MI"], v["rb"]) == (
        0, 28.4, 31.4, 79.2, 58.0, 32.3, 9771,
    )  # fmt: skip
    assert z_of(f) == {("leg_to_leg", 50.0): (431.0, None)}
    # the line is consistent with itself, as a device's would be
    assert round(f["weight_kg"] / (f["height_cm"] / 100) ** 2, 1) == v["MI"]
    assert round(f["weight_kg"] - v["fW"], 1) == v["MW"] and round(v["wW"] / v["MW"], 3) == 0.732


# -- InBody (LookinBody exports) ------------------------------------------------------
def check_inbody270_default() -> None:
    # no ID and no test time column: refused, saying which and where to map them
    (f,) = frames("inbody-lookinbody-csv", "inbody270-lookinbody-site-export.csv")
    assert "the subject (ID)" in f["error"] and "the test time (DATE&TIMES" in f["error"]
    assert "the weight" not in f["error"] and "`columns:`" in f["error"]


def check_inbody270_site() -> None:
    (f,) = frames("inbody270-site", "inbody270-lookinbody-site-export.csv", SITE_PROFILES)
    assert (f["model"], f["subject_id"], f["sex"], f["weight_kg"], f["height_cm"]) == (
        "InBody 270", "0000000001", "male", 79.9, 175.0,
    )  # fmt: skip
    z = z_of(f)  # an InBody 270 gives |Z| only, at 20 and 100 kHz
    assert z[("right_arm", 20.0)] == (288.6, None) and z[("trunk", 100.0)] == (17.6, None)
    assert z[("left_leg", 100.0)] == (223.8, None) and len(z) == 10
    assert all(p["magnitude_only"] for p in f["impedance"])
    v = f["device_values"]
    assert (v["TBW (Total Body Water)"], v["VFL (Visceral Fat Level)"]) == (47, 6)
    # who the person is, normal ranges and the site's columns stay in the journaled row
    assert not {"nombres", "cedula", "Local ID", "Lower Limit (Weight Normal Range)"} & v.keys()


def check_inbody120_header() -> None:
    from bia_acq.protocols.lookinbody import column_set_of

    names = (REAL / "inbody120-lookinbody-header.txt").read_text().splitlines()
    assert len(names) == 87
    found = column_set_of(names)
    assert found is not None and found.family == "120"
    assert found.frequencies_khz == (20.0, 100.0)


def check_inbody120_us_example() -> None:
    # US units: height as 5ft. 10.0in., every mass in pounds (the row is consistent only
    # so: BFM 2.6 = 3.0 % of 87.5, LBM 84.9 = 87.5 - 2.6, BMI 12.6 = 39.7 kg / 1.778 m²)
    for driver in ("inbody-lookinbody-csv", "inbody120-lookinbody"):
        (f,) = frames(driver, "inbody120-lookinbody-us-example.csv")
        assert (f["model"], f["subject_id"], f["sex"], f["age_years"]) == (
            "InBody 120", "0928", "male", 31,
        )  # fmt: skip
        assert f["height_cm"] == pytest.approx(70 * 2.54, abs=0.05)
        assert f["weight_kg"] == pytest.approx(87.5 * 0.45359237, abs=0.005)
        v = f["device_values"]
        assert (v["Weight [lb]"], v["Height [in]"], v["TBW (Total Body Water) [lb]"]) == (
            87.5, 70.0, 63.1,
        )  # fmt: skip
        assert v["TBW (Total Body Water)"] == pytest.approx(63.1 * 0.45359237, abs=0.005)
        assert (
            v["LBM% of Right Arm"],
            v["PBF (Percent Body Fat)"],
            v["BMI (Body Mass Index)"],
        ) == (
            218.4,
            3.0,
            12.6,
        )  # fmt: skip  (percentages and indexes are not masses)
        assert f["warnings"] == []  # the device's BMI agrees with the converted units
        z = z_of(f)
        assert z[("right_arm", 20.0)] == (245.5, None) and z[("trunk", 20.0)] == (23.1, None)
        assert z[("left_leg", 100.0)] == (199.1, None) and len(z) == 10
    # the same row read as metric: the BMI check says the units are wrong
    from bia_acq.protocols.lookinbody import LookinBodyProtocol

    codec = LookinBodyProtocol({"units": "metric", "model": "InBody"})
    data = (
        (REAL / "inbody120-lookinbody-us-example.csv")
        .read_bytes()
        .replace(b"5ft. 10.0in.", b"177.8")
    )
    reading = codec.decode(data)
    (warning,) = codec.check(reading)
    assert "device BMI 12.6 but weight / height² = 27.7" in warning and "units" in warning


# -- Charder MA801 ----------------------------------------------------------------
def check_charder() -> None:
    (f,) = frames("charder-ma801", "charder-ma801-record.jsonl")
    assert (f["model"], f["serial_number"], f["subject_id"]) == (
        "MA801", "T18000001", "SUBJECT-0001",
    )  # fmt: skip
    assert f["measured_at"] == "2020-04-13T17:18:00"
    assert (f["sex"], f["age_years"], f["height_cm"], f["weight_kg"]) == ("female", 20, 160.0, 44.7)
    v = f["device_values"]
    assert (v["ECW"], v["ICW"], v["TBW"], v["EI"]) == (11.6, 16.5, 28.1, 0.414)
    z = {k: complex(*rx) for k, rx in z_of(f).items()}
    assert abs(z[("right_arm", 50.0)]) == pytest.approx(327.6, abs=0.05)
    assert len(z) == 30  # RA LA RL LL RW LW x 5 20 50 100 250 kHz


CASES: dict[str, Callable[[], None]] = {
    "tanita-mc780": check_mc780,
    "tanita-mc780a": check_mc780a,
    "tanita-mc780a-weight-only": check_mc780a_weight_only,
    "tanita-sc330-example": check_sc330_example,
    "tanita-bc601-sd-card": check_bc601_sd_card,
    "tanita-bc601-prof": check_bc601_prof,
    "tanita-tbf310-onyx": check_tbf310_onyx,
    "inbody270-default-profile": check_inbody270_default,
    "inbody270-site-profile": check_inbody270_site,
    "inbody120-header": check_inbody120_header,
    "inbody120-us-example": check_inbody120_us_example,
    "charder-ma801": check_charder,
}


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            name,
            marks=[pytest.mark.xfail(reason=NOT_YET[name], strict=True)] if name in NOT_YET else [],
        )
        for name in CASES
    ],
)
def test_real_capture_decodes_to_its_published_values(case: str) -> None:
    CASES[case]()


def test_every_corpus_file_is_documented_and_tested() -> None:
    readme = (REAL / "README.md").read_text()
    files = sorted(p.name for p in REAL.iterdir() if p.is_file() and p.name != "README.md")
    here = Path(__file__).read_text()
    for name in files:
        assert f"`{name}`" in readme, f"{name} has no provenance row in README.md"
        assert name in here, f"{name} is not decoded by any case"
    # nothing that names a person: the Charder name field is dropped, the site
    # export's name and ID cells are blanked (see README.md)
    assert "User_Name" not in json.loads((REAL / "charder-ma801-record.jsonl").read_text())
    head, row = (REAL / "inbody270-lookinbody-site-export.csv").read_text("utf-8-sig").splitlines()
    cells = dict(zip(head.split(","), row.split(","), strict=True))
    assert cells["nombres"] == "-" and cells["cedula"] == "0000000001"
