"""`bia-acq validate`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


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
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(report.table())
    return 0
