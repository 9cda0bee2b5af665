"""FHIR R4 export: one Bundle (type collection) of Patient, Device and Observations.

Each measurement gives one Observation per quantity (:func:`export.quantities`): LOINC
where a code exists (body weight, body height, body water mass, whole-body phase angle),
bia-acq's own code system ``urn:bia-acq:code`` otherwise (ECW, ICW, ECW/TBW, segment
phase angles, resistance and reactance per frequency; docs/analysts.md "Exports"), UCUM units,
SNOMED CT ``bodySite`` for segments. Resource IDs are UUIDs derived from the database and
the row, so exporting again gives the same IDs. Plain JSON: no FHIR library needed here
(the tests validate the output with one).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from typing import IO, Any

from bia_acq import __version__
from bia_acq.report.export import (
    BODY_SITE,
    INTERPRETATION,
    LOCAL_SYSTEM,
    LOINC_SYSTEM,
    SEGMENT_TEXT,
    SNOMED_SYSTEM,
    UCUM_SYSTEM,
    Export,
    Quantity,
    quantities,
)
from bia_acq.report.formats import ExportContext, ExportFormat, Written

PSEUDONYM_SYSTEM = "urn:bia-acq:pseudonym"
PATIENT_ID_SYSTEM = "urn:bia-acq:analyzer-patient-id"
DEVICE_SYSTEM = "urn:bia-acq:device"
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
INTERPRETATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"


def _id(fingerprint: str, *parts: object) -> str:
    return str(
        uuid.uuid5(uuid.NAMESPACE_URL, ":".join(["urn:bia-acq", fingerprint, *map(str, parts)]))
    )


def _ref(rid: str) -> dict[str, str]:
    return {"reference": f"urn:uuid:{rid}"}


def _observation(q: Quantity, e: Export, oid: str, patient: str, device: str) -> dict[str, Any]:
    m = e.measurement
    codings = []
    if q.loinc:
        codings.append({"system": LOINC_SYSTEM, "code": q.loinc[0], "display": q.loinc[1]})
    codings.append({"system": LOCAL_SYSTEM, "code": q.code, "display": q.display})
    category = "vital-signs" if q.vital_sign else "exam"
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY_SYSTEM, "code": category}]}],
        "code": {"coding": codings, "text": q.display},
        "subject": _ref(patient),
        "effectiveDateTime": m["measured_at_utc"],
        "issued": m["received_at_utc"],
        "device": _ref(device),
        "valueQuantity": {
            "value": round(q.value, 6),
            "unit": q.unit_text,
            "system": UCUM_SYSTEM,
            "code": q.unit,
        },
    }
    if q.segment is not None:
        site = BODY_SITE.get(q.segment)
        text = SEGMENT_TEXT.get(q.segment, q.segment)
        obs["bodySite"] = (
            {
                "coding": [{"system": SNOMED_SYSTEM, "code": site[0], "display": site[1]}],
                "text": text,
            }
            if site
            else {"text": text}
        )
    if q.method:
        obs["method"] = {"text": q.method}
    if q.classification in INTERPRETATION:
        code, display, _ = INTERPRETATION[q.classification]
        obs["interpretation"] = [
            {
                "coding": [{"system": INTERPRETATION_SYSTEM, "code": code, "display": display}],
                "text": q.classification,
            }
        ]
    if q.normal_max is not None:
        obs["referenceRange"] = [
            {
                "high": {
                    "value": q.normal_max,
                    "unit": q.unit_text,
                    "system": UCUM_SYSTEM,
                    "code": q.unit,
                },
                "text": f"normal ECW/TBW for {q.method}: at most {q.normal_max:.3f}",
            }
        ]
    if q.code == "body-water-mass":
        obs["note"] = [{"text": f"total body water {q.value:.2f} L by {q.method}, at 1 kg/L"}]
    return obs


def bundle(
    exports: Iterable[Export],
    *,
    fingerprint: str,
    include_identifiers: bool,
    timestamp: str,
) -> dict[str, Any]:
    """The Bundle of every exported measurement."""
    entries: list[dict[str, Any]] = []
    patients: dict[int, str] = {}
    devices: dict[int, str] = {}
    for e in exports:
        m = e.measurement
        sid = m["subject_id"]
        if sid not in patients:
            pid = patients[sid] = _id(fingerprint, "patient", sid)
            identifiers = [{"system": PSEUDONYM_SYSTEM, "value": m["subject_pseudonym"]}]
            if include_identifiers:
                identifiers.insert(
                    0, {"system": PATIENT_ID_SYSTEM, "value": m["subject_external_id"]}
                )
            patient: dict[str, Any] = {
                "resourceType": "Patient",
                "id": pid,
                "identifier": identifiers,
            }
            if m["sex"] in ("male", "female"):
                patient["gender"] = m["sex"]
            entries.append({"fullUrl": f"urn:uuid:{pid}", "resource": patient})
        if m["device_id"] not in devices:
            did = devices[m["device_id"]] = _id(fingerprint, "device", m["device_id"])
            device: dict[str, Any] = {
                "resourceType": "Device",
                "id": did,
                "identifier": [
                    {"system": DEVICE_SYSTEM, "value": f"{m['device_driver']}/{m['device_port']}"}
                ],
                "type": {"text": "bioelectrical impedance body composition analyzer"},
                "note": [{"text": f"read by bia-acq {__version__}, driver {m['device_driver']}"}],
            }
            if m["device_model"]:
                device["deviceName"] = [{"name": m["device_model"], "type": "model-name"}]
            if m["device_serial_number"]:
                device["serialNumber"] = m["device_serial_number"]
            entries.append({"fullUrl": f"urn:uuid:{did}", "resource": device})
        for q in quantities(e):
            oid = _id(fingerprint, "observation", m["measurement_id"], q.segment or "", q.code)
            entries.append(
                {
                    "fullUrl": f"urn:uuid:{oid}",
                    "resource": _observation(q, e, oid, patients[sid], devices[m["device_id"]]),
                }
            )
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": timestamp,
        "entry": entries,
    }


def _write(out: IO[str], exports: Iterable[Export], ctx: ExportContext) -> Written:
    b = bundle(
        exports,
        fingerprint=ctx.fingerprint,
        include_identifiers=ctx.include_identifiers,
        timestamp=ctx.now_utc,
    )
    json.dump(b, out, indent=1, ensure_ascii=False)
    out.write("\n")
    n = sum(1 for e in b["entry"] if e["resource"]["resourceType"] == "Observation")
    return Written(n, "observation(s)")


FORMAT = ExportFormat("fhir", "a FHIR R4 Bundle (collection) of Observations", _write)
