"""`bia-acq baseline`: show or choose the measurement a subject's changes are measured from."""

from __future__ import annotations

import argparse
from pathlib import Path

from bia_acq.cli import positive_int


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "baseline",
        help="show or choose a subject's baseline measurement",
        description="Show the measurement a subject's changes are measured from (the "
        "chosen one, else the first), choose one with --measurement, or go back to the "
        "first with --clear. Stored in the table subject_baseline for reports.",
    )
    p.add_argument("--db", type=Path, required=True, help="database file")
    p.add_argument(
        "--subject", required=True, help="the ID the device sent or the subject's pseudonym"
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument("--measurement", type=positive_int, help="measurement id to use as baseline")
    g.add_argument("--clear", action="store_true", help="use the first measurement again")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from bia_acq.errors import StorageError
    from bia_acq.store import baseline
    from bia_acq.store.db import open_writer, require_subject

    if not args.db.exists():
        raise StorageError(f"database {args.db} does not exist (check --db)")
    db = open_writer(args.db)
    try:
        subject_id, pseudonym = require_subject(db.conn, args.subject, args.db)
        if args.measurement is not None:
            baseline.choose(db, subject_id, args.measurement, pseudonym)
        elif args.clear:
            baseline.clear(db, subject_id)
        b = baseline.baseline(db.conn, subject_id)
    finally:
        db.close()
    if b.chosen is not None:
        print(f"{pseudonym}: baseline measurement {b.chosen} (chosen)")
    elif b.first is not None:
        print(f"{pseudonym}: baseline measurement {b.first} (first measurement)")
    else:
        print(f"{pseudonym}: no measurements")
    return 0
