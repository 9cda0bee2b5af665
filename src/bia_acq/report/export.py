"""Measurements for export: one read-only query shared by the CSV, FHIR and HL7 writers.

Exports cover measurements with a subject (the analyzer sent a patient ID) and the
results of the reporting method (``meta.report_method``, highest version), as the views
do. Patient identifiers are pseudonymised unless the caller asks for them.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from bia_acq.report.data import SEGMENT_ORDER, find_subject
from bia_acq.store import read
from bia_acq.utc import parse_since as parse_since  # `export --since`


@dataclass
class Export:
    """One measurement with everything an export writes."""

    measurement: dict[str, Any]
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # by segment
    impedance: list[dict[str, Any]] = field(default_factory=list)

    @property
    def subject_pseudonym(self) -> str:
        return str(self.measurement["subject_pseudonym"])

    def subject_identifier(self, include_identifiers: bool) -> str:
        m = self.measurement
        return str(m["subject_external_id"] if include_identifiers else m["subject_pseudonym"])


def database_fingerprint(conn: sqlite3.Connection) -> str:
    """A stable, non-secret ID of this database (for resource IDs that stay the same)."""
    key = read.pseudonym_key(conn)
    return hashlib.sha256(b"bia-acq export id\x00" + key.encode()).hexdigest()[:32]


def measurements(
    conn: sqlite3.Connection, *, subject: str | None = None, since_epoch: float | None = None
) -> Iterator[Export]:
    """Measurements with a subject, oldest first, with results and impedances."""
    subject_id = find_subject(conn, subject) if subject is not None else None
    for row in read.export_measurements(conn, subject_id=subject_id, since_epoch=since_epoch):
        e = Export(dict(row))
        mid = row["measurement_id"]
        for r in read.measurement_trend(conn, mid):
            e.results[r["segment"]] = dict(r)
        e.impedance = [dict(r) for r in read.impedances(conn, mid)]
        yield e


def slug(segment: str) -> str:
    """``right_leg`` → ``right-leg`` (codes use hyphens)."""
    return re.sub(r"[^a-z0-9]+", "-", segment.lower()).strip("-")


# -- what each measurement exports, shared by FHIR and HL7 v2 -----------------------------

LOINC_SYSTEM = "http://loinc.org"
UCUM_SYSTEM = "http://unitsofmeasure.org"
SNOMED_SYSTEM = "http://snomed.info/sct"
#: bia-acq's own code system for quantities LOINC has no code for (docs/analysts.md "Exports")
LOCAL_SYSTEM = "urn:bia-acq:code"

#: LOINC codes, each checked against LOINC's own term definitions (LOINC 2.82 parts, as
#: mirrored at https://www.healthassure.in/codes/loinc-101683-1-body-water-mass and
#: .../loinc-107160-4-phase-angle-xcr-ratio-bioelectrical-impedance-analysis):
#: 101683-1 Body water mass: component Body water, property Mass, system ^Patient, scale
#: Qn, example unit kg; 107160-4 Phase angle Xc/R [Ratio] Bioelectrical impedance analysis:
#: method BIA, ^Patient. 29463-7 Body weight and 8302-2 Body height are the codes the
#: HL7 FHIR vital-signs profiles fix (hl7.org/fhir bodyweight.html, bodyheight.html).
#: No LOINC term was found for ECW, ICW, ECW/TBW or segmental impedance.
LOINC = {
    "weight": ("29463-7", "Body weight"),
    "height": ("8302-2", "Body height"),
    "body-water-mass": ("101683-1", "Body water mass"),
    "phase-angle-50khz": ("107160-4", "Phase angle Xc/R [Ratio] Bioelectrical impedance analysis"),
}

#: SNOMED CT body structures for bodySite. Limbs as mapped in the VA's FHIR PHR mapping
#: (github.com/department-of-veterans-affairs/mhv-fhir-phr-mapping, input/fsh/qualifiers.fsh:
#: R ARM 6921000, L ARM 80768000, R LEG 62175007, L LEG 32153003) and in Estonian FHIR
#: blood-pressure body-site value sets (6921000, 80768000); trunk 22943007 "Trunk
#: structure" and whole body 38266002 "Entire body as a whole" as in published FHIR/CDA
#: examples (e.g. Medizininformatik-Initiative observations).
BODY_SITE = {
    "right_arm": ("6921000", "Structure of right upper limb"),
    "left_arm": ("80768000", "Structure of left upper limb"),
    "trunk": ("22943007", "Trunk structure"),
    "right_leg": ("62175007", "Structure of right lower limb"),
    "left_leg": ("32153003", "Structure of left lower limb"),
    "whole_body": ("38266002", "Entire body as a whole"),
}
PATH_TEXT = {
    "whole_body_right": "hand to foot, right side",
    "whole_body_left": "hand to foot, left side",
    "leg_to_leg": "foot to foot",
}
SEGMENT_TEXT = {
    "right_arm": "right arm",
    "left_arm": "left arm",
    "trunk": "trunk",
    "right_leg": "right leg",
    "left_leg": "left leg",
    "whole_body": "whole body",
    **PATH_TEXT,
}


@dataclass(frozen=True)
class Quantity:
    """One exported quantity: a FHIR Observation, an HL7 v2 OBX."""

    code: str  # in LOCAL_SYSTEM
    display: str
    value: float
    unit: str  # UCUM
    unit_text: str
    loinc: tuple[str, str] | None = None
    segment: str | None = None  # a segment or measurement path; None: the patient
    classification: str | None = None
    normal_max: float | None = None
    method: str | None = None
    vital_sign: bool = False


def _khz(f: float) -> str:
    return f"{f:g}"


def quantities(e: Export) -> list[Quantity]:
    """Every quantity of one measurement: weight, height, results, impedances."""
    return [
        *_body(e.measurement),
        *(q for seg in SEGMENT_ORDER if seg in e.results for q in _results(seg, e.results[seg])),
        *(q for z in e.impedance for q in _impedance(z)),
    ]


#: (measurement column, code, what, unit, unit text) of the vital signs
_VITAL = (
    ("weight_kg", "weight", "Body weight", "kg", "kilogram"),
    ("height_cm", "height", "Body height", "cm", "centimeter"),
)


def _body(m: dict[str, Any]) -> list[Quantity]:
    """Weight and height: FHIR vital signs."""
    return [
        Quantity(code, what, m[col], unit, text, LOINC[code], vital_sign=True)
        for col, code, what, unit, text in _VITAL
        if m[col] is not None
    ]


#: (result column, code, what) of the body-water volumes, in litres
_VOLUMES = (
    ("ecw_l", "ecw", "Extracellular water"),
    ("icw_l", "icw", "Intracellular water"),
    ("tbw_l", "tbw", "Total body water"),
)


def _results(seg: str, r: dict[str, Any]) -> list[Quantity]:
    """One segment's results by the reporting method: volumes, ECW/TBW, phase angle."""
    if (r["fit_status"] or "ok") != "ok":  # a poor fit or impossible volumes: no
        # clinical value goes out (the database keeps them, unclassified)
        r = {**r, "ecw_l": None, "icw_l": None, "tbw_l": None, "ecw_tbw_ratio": None}
    where = SEGMENT_TEXT.get(seg, seg)
    method = f"{r['method']} v{r['method_version']}"
    whole = seg == "whole_body"
    out = []
    for column, code, what in _VOLUMES:
        if r[column] is None:
            continue
        if code == "tbw" and whole:  # LOINC has body water as a mass; 1 L taken as 1 kg
            out.append(
                Quantity(
                    "body-water-mass", "Body water mass", r[column], "kg", "kilogram",
                    LOINC["body-water-mass"], method=method,
                )
            )  # fmt: skip
        else:
            out.append(
                Quantity(code, f"{what}, {where}", r[column], "L", "liter", segment=seg,
                         method=method)
            )  # fmt: skip
    if r["ecw_tbw_ratio"] is not None:
        out.append(
            Quantity(
                "ecw-tbw-ratio", f"ECW/TBW, {where}", r["ecw_tbw_ratio"], "1", "ratio",
                segment=seg, classification=r["classification"],
                normal_max=r["ecw_tbw_normal_max"], method=method,
            )
        )  # fmt: skip
    if r["phase_angle_50khz_deg"] is not None:
        out.append(
            Quantity(
                "phase-angle-50khz", f"Phase angle at 50 kHz, {where}",
                r["phase_angle_50khz_deg"], "deg", "degree",
                LOINC["phase-angle-50khz"] if whole else None, segment=None if whole else seg,
            )
        )  # fmt: skip
    return out


def _impedance(z: dict[str, Any]) -> list[Quantity]:
    """One impedance point: R and X, or |Z| where the device measured only the magnitude."""
    f, seg = _khz(z["freq_khz"]), z["segment"]
    where = SEGMENT_TEXT.get(seg, seg)

    def ohm(code: str, what: str, value: float) -> Quantity:
        return Quantity(f"{code}-{f}khz", f"{what} at {f} kHz, {where}", value, "Ohm", "ohm",
                        segment=seg)  # fmt: skip

    if z.get("magnitude_only"):  # r_ohm holds |Z|
        return [ohm("impedance-magnitude", "Impedance magnitude |Z|", z["r_ohm"])]
    out = [ohm("resistance", "Resistance", z["r_ohm"])]
    if z["x_ohm"] is not None:
        out.append(ohm("reactance", "Reactance", z["x_ohm"]))
    return out


#: classification → HL7 v3 ObservationInterpretation (FHIR) / v2 table 0078 abnormal flag;
#: only earned labels (issue 12): indeterminate, not applicable and no published band
#: carry no interpretation
INTERPRETATION = {
    "normal": ("N", "Normal", "N"),
    "below normal": ("L", "Low", "L"),
    "slightly over": ("H", "High", "H"),
    "edema": ("HU", "Significantly high", "H"),
}
