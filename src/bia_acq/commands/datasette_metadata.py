"""`bia-acq datasette-metadata`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bia_acq.errors import BiaError


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "datasette-metadata",
        help="write Datasette metadata (descriptions, units, canned queries) for a database",
        description="Write the shipped Datasette metadata as JSON, its database entry named "
        "after --db, for `datasette DB -m FILE`.",
    )
    p.add_argument(
        "--db", type=Path, default=Path("bia-acq.db"), help="database file (default bia-acq.db)"
    )
    p.add_argument("--out", type=Path, help="write to this file (default: standard output)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from bia_acq.report import database_name, datasette_metadata

    text = json.dumps(datasette_metadata(database_name(args.db)), indent=2, ensure_ascii=False)
    if args.out is None:
        sys.stdout.write(text + "\n")
        return 0
    try:
        args.out.write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise BiaError(f"cannot write {args.out}: {exc.strerror}") from None
    print(f"wrote {args.out}: datasette {args.db} -m {args.out}", file=sys.stderr)
    return 0
