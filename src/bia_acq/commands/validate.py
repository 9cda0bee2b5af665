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
        "in litres where the method gives them), and the share classified correctly.",
    )
    p.add_argument("--truth", type=Path, required=True, help="JSON lines from simulate --truth")
    p.add_argument("--db", type=Path, required=True, help="database the service stored into")
    p.add_argument("--json", action="store_true", help="print one JSON object instead")
    p.set_defaults(handler=run)


if TYPE_CHECKING:
    from bia_acq.simulator.validation import Report


def run(args: argparse.Namespace) -> int:
    from bia_acq.simulator.validation import validate_files
    from bia_acq.store.db import open_readonly

    conn = open_readonly(args.db)
    try:
        report = validate_files(args.truth, conn)
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


def check(report: Report) -> dict[str, Any]:
    """The technician's pass criterion: every intact frame sent was stored and matched, and
    each limb's ECW/TBW bias is within ±0.01."""
    lost = report.not_stored - report.not_stored_damaged
    sent_intact = report.truth_records - report.not_stored_damaged
    limb = [r for r in report.rows if r.quantity == "ECW/TBW" and r.segment in LIMBS]
    worst = max(limb, key=lambda r: abs(r.bias), default=None)
    says = [f"{report.matched} of {sent_intact} intact frame(s) sent matched, {lost} lost"]
    if worst is None:
        says.append("no limb ECW/TBW rows")
    else:
        inside = "within" if abs(worst.bias) <= LIMB_BIAS_MAX else "outside"
        says.append(
            f"largest limb ECW/TBW bias {worst.bias:+.4f} ({worst.segment}, {worst.method} "
            f"v{worst.version}), {inside} ±{LIMB_BIAS_MAX}"
        )
    ok = (
        lost == 0
        and report.matched == sent_intact
        and worst is not None
        and abs(worst.bias) <= LIMB_BIAS_MAX
    )
    return {"pass": ok, "says": says}
