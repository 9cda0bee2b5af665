"""`bia-acq baseline`: show or choose the measurement a subject's changes are measured from."""

from __future__ import annotations

import argparse
import datetime as dt
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
    from bia_acq.errors import ConfigError, StorageError
    from bia_acq.store.db import open_writer, require_subject

    if not args.db.exists():
        raise StorageError(f"database {args.db} does not exist (check --db)")
    db = open_writer(args.db)
    conn = db.conn
    subject_id, pseudonym = require_subject(conn, args.subject, args.db)
    now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    with db.atomic():
        if args.measurement is not None:
            if not conn.execute(
                "SELECT 1 FROM measurement WHERE id = ? AND subject_id = ?",
                (args.measurement, subject_id),
            ).fetchone():
                raise ConfigError(
                    f"--measurement: measurement {args.measurement} is not one of {pseudonym}'s",
                    fix="pick one of this subject's measurement ids",
                )
            conn.execute(
                "INSERT INTO subject_baseline (subject_id, measurement_id, chosen_at_utc)"
                " VALUES (?, ?, ?) ON CONFLICT (subject_id) DO UPDATE SET"
                " measurement_id = excluded.measurement_id, chosen_at_utc = excluded.chosen_at_utc",
                (subject_id, args.measurement, now),
            )
        elif args.clear:
            conn.execute("DELETE FROM subject_baseline WHERE subject_id = ?", (subject_id,))
    chosen = conn.execute(
        "SELECT measurement_id FROM subject_baseline WHERE subject_id = ?", (subject_id,)
    ).fetchone()
    first = conn.execute(
        "SELECT id FROM measurement WHERE subject_id = ?"
        " ORDER BY COALESCE(measured_at_epoch, received_at_epoch), id LIMIT 1",
        (subject_id,),
    ).fetchone()
    conn.close()
    if chosen:
        print(f"{pseudonym}: baseline measurement {chosen[0]} (chosen)")
    elif first:
        print(f"{pseudonym}: baseline measurement {first[0]} (first measurement)")
    else:
        print(f"{pseudonym}: no measurements")
    return 0
