"""HL7 v2.5 export: one ORU^R01 message per measurement, in a batch file (FHS/BHS … BTS/FTS).

Segments end with CR, as HL7 v2 requires. Per message: MSH, PID (the pseudonym as an
``ANON`` identifier, and the analyzer's patient ID as ``PI`` only with
``--include-identifiers``; no name: analyzers send none), OBR (the measurement), then one
OBX per quantity (:func:`export.quantities`): OBX-3 names LOINC first (``LN``) where a code
exists, then bia-acq's own code (``L``, the segment after a dot, e.g.
``ecw-tbw-ratio.right-leg``); OBX-6 in UCUM; OBX-4 groups a segment's quantities (1 whole
body or patient, 2 right arm, 3 left arm, 4 trunk, 5 right leg, 6 left leg, 7–9 the
hand-to-foot and foot-to-foot paths); OBX-7/8 give the normal range and flag of ECW/TBW, and
an NTE after it the method's classification.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import IO

from bia_acq import __version__
from bia_acq.report.export import INTERPRETATION, Export, Quantity, quantities, slug
from bia_acq.report.formats import ExportContext, ExportFormat, Written

ENCODING = "^~\\&"
SUB_ID = {
    None: "1",
    "whole_body": "1",
    "right_arm": "2",
    "left_arm": "3",
    "trunk": "4",
    "right_leg": "5",
    "left_leg": "6",
    "whole_body_right": "7",
    "whole_body_left": "8",
    "leg_to_leg": "9",
}


def escape(text: object) -> str:
    """HL7 v2 escape sequences for the delimiters (the escape character first)."""
    return (
        str(text)
        .replace("\\", "\\E\\")
        .replace("|", "\\F\\")
        .replace("^", "\\S\\")
        .replace("&", "\\T\\")
        .replace("~", "\\R\\")
        .replace("\r", "\\X0D\\")
        .replace("\n", "\\X0A\\")
    )


def ts(iso_utc: str) -> str:
    """ISO-8601 UTC text → HL7 DTM (YYYYMMDDHHMMSS+0000)."""
    t = dt.datetime.fromisoformat(iso_utc.replace("Z", "+00:00")).astimezone(dt.UTC)
    return t.strftime("%Y%m%d%H%M%S+0000")


def _num(v: float) -> str:
    return f"{round(v, 6):g}" if abs(v) < 1e6 else f"{v:.1f}"


def _obx(n: int, q: Quantity, when: str, equipment: str) -> list[str]:
    local = q.code if q.segment is None else f"{q.code}.{slug(q.segment)}"
    ident = f"{escape(local)}^{escape(q.display)}^L"
    if q.loinc:
        ident = f"{q.loinc[0]}^{escape(q.loinc[1])}^LN^{ident}"
    ref, flag = "", ""
    if q.normal_max is not None:
        ref = f"0-{q.normal_max:.3f}"
    if q.classification in INTERPRETATION:
        flag = INTERPRETATION[q.classification][2]
    fields = [
        "OBX",
        str(n),
        "NM",
        ident,
        SUB_ID.get(q.segment, "1"),
        _num(q.value),
        f"{escape(q.unit)}^{escape(q.unit_text)}^UCUM",
        ref,
        flag,
        "",
        "",
        "F",
        "",
        "",
        when,
        "",
        "",
        f"^{escape(q.method)}" if q.method else "",
        equipment,
    ]
    out = ["|".join(fields).rstrip("|")]
    if q.classification in INTERPRETATION:  # an earned label (issue 12)
        out.append(f"NTE|1|L|{escape(q.classification + ' by the bands of ' + (q.method or ''))}")
    elif q.classification:
        out.append(f"NTE|1|L|{escape('ECW/TBW not classified: ' + q.classification)}")
    return out


def message(e: Export, *, include_identifiers: bool, control_id: str, now: str) -> str:
    m = e.measurement
    pid3 = f"{escape(m['subject_pseudonym'])}^^^BIA-ACQ^ANON"
    if include_identifiers:
        pid3 = f"{escape(m['subject_external_id'])}^^^BIA-ACQ^PI~{pid3}"
    sex = {"male": "M", "female": "F"}.get(m["sex"] or "", "U")
    when = ts(m["measured_at_utc"])
    equipment = f"{escape(m['device_serial_number'] or '')}^{escape(m['device_model'] or '')}"
    segments = [
        f"MSH|{ENCODING}|BIA-ACQ|{escape(m['device_port'])}|||{now}||ORU^R01^ORU_R01|"
        f"{control_id}|P|2.5|||NE|NE|||UNICODE UTF-8",
        f"PID|1||{pid3}||||{sex}",
        f"OBR|1||{m['measurement_id']}^BIA-ACQ|BIA^Bioimpedance body composition^L|||{when}"
        f"||||||||||||||{ts(m['received_at_utc'])}|||F",
    ]
    for n, q in enumerate(quantities(e), 1):
        segments += _obx(n, q, when, equipment)
    return "\r".join(segments) + "\r"


def batch(exports: Iterable[Export], *, include_identifiers: bool, now_utc: str) -> str:
    """The batch file: every measurement's ORU^R01 between FHS/BHS and BTS/FTS."""
    now = ts(now_utc)
    stamp = now[:14]
    messages = [
        message(e, include_identifiers=include_identifiers, control_id=f"{stamp}-{i}", now=now)
        for i, e in enumerate(exports, 1)
    ]
    head = f"FHS|{ENCODING}|BIA-ACQ|||||{now}\rBHS|{ENCODING}|BIA-ACQ|||||{now}\r"
    tail = f"BTS|{len(messages)}|bia-acq {escape(__version__)}\rFTS|1\r"
    return head + "".join(messages) + tail


def _write(out: IO[str], exports: Iterable[Export], ctx: ExportContext) -> Written:
    text = batch(exports, include_identifiers=ctx.include_identifiers, now_utc=ctx.now_utc)
    out.write(text)
    return Written(text.count("\rMSH|"), "message(s)")


FORMAT = ExportFormat("hl7", "HL7 v2.5 ORU^R01 messages in a batch file", _write)
