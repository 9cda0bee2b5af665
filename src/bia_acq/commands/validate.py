"""`bia-acq validate`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "validate",
        help="compare stored estimates with a simulator run's ground truth",
        description="Match the measurements stored in a database to the records of a "
        "`bia-acq simulate --truth` file and print, per method and segment, n, bias and "
        "Bland-Altman limits of agreement (bias +/- 1.96 SD) of ECW/TBW (and of ECW, ICW, TBW "
        "in litres where the method gives them), and the shares of ECW/TBW labels earned "
        "(normal, slightly over, edema), wrong (another band than the truth's), "
        "indeterminate, not applicable and without a published band; for scenarios with "
        "one changed limb, how often it is labelled asymmetric at the first visit.",
    )
    p.add_argument("--truth", type=Path, required=True, help="JSON lines from simulate --truth")
    p.add_argument("--db", type=Path, required=True, help="database the service stored into")
    p.add_argument("--json", action="store_true", help="print one JSON object instead")
    p.add_argument(
        "--config", type=Path, help="judge labels by this configuration's site bands (thresholds:)"
    )
    p.set_defaults(handler=run)


if TYPE_CHECKING:
    from bia_acq.simulator.validation import Report


def run(args: argparse.Namespace) -> int:
    from bia_acq.config import load_config
    from bia_acq.simulator.validation import validate_files
    from bia_acq.store.db import open_readonly

    bands = dict(load_config(args.config).thresholds) if args.config else None
    conn = open_readonly(args.db)
    try:
        report = validate_files(args.truth, conn, bands)
    finally:
        conn.close()
    verdict = check(report)
    if args.json:
        print(json.dumps({**report.to_json(), "check": verdict}, indent=2))
    else:
        print(report.table())
        print(f"\ncheck: {'pass' if verdict['pass'] else 'FAIL'}: {'; '.join(verdict['says'])}")
    return 0


LIMBS = ("right_arm", "left_arm", "right_leg", "left_leg")
#: the installation test's criterion (README "Testing an installation without a patient")
LIMB_BIAS_MAX = 0.01
#: the analyzer's own figures are stored as printed: their bias is the rounding (0.001)
DEVICE_BIAS_MAX = 0.001


def check(report: Report) -> dict[str, Any]:
    """The technician's pass criterion: every intact frame sent was stored and matched, and
    the stored estimates agree with the truth where the method applies: each limb's ECW/TBW
    bias within ±0.01 for the rows a method is applicable to (issue 12: a three-frequency
    analyzer's limbs are 'not applicable' to BIS and are left out), and the analyzer's own
    whole-body ECW/TBW (the ``device`` method) within its rounding."""
    lost = report.not_stored - report.not_stored_damaged
    sent_intact = report.truth_records - report.not_stored_damaged
    limb = [
        r
        for r in report.rows
        if r.quantity == "ECW/TBW"
        and r.segment in LIMBS
        and r.method != "device"
        and (r.labels is None or r.labels["not applicable"] < 1.0)
    ]
    device = [
        r
        for r in report.rows
        if (r.method, r.segment, r.quantity) == ("device", "whole_body", "ECW/TBW")
    ]
    says = [f"{report.matched} of {sent_intact} intact frame(s) sent matched, {lost} lost"]
    ok = lost == 0 and report.matched == sent_intact
    worst = max(limb, key=lambda r: abs(r.bias), default=None)
    if worst is not None:
        inside = abs(worst.bias) <= LIMB_BIAS_MAX
        says.append(
            f"largest limb ECW/TBW bias where the method applies {worst.bias:+.4f} "
            f"({worst.segment}, {worst.method} v{worst.version}), "
            f"{'within' if inside else 'outside'} ±{LIMB_BIAS_MAX}"
        )
        ok = ok and inside
    for r in device:
        inside = abs(r.bias) <= DEVICE_BIAS_MAX
        says.append(
            f"the analyzer's own ECW/TBW bias {r.bias:+.4f}, "
            f"{'within' if inside else 'outside'} its rounding ±{DEVICE_BIAS_MAX}"
        )
        ok = ok and inside
    if worst is None and not device:
        says.append("no applicable limb rows and no device figures to compare")
        ok = False
    return {"pass": ok, "says": says}
