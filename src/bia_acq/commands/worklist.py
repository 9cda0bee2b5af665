"""`bia-acq worklist`: the subjects queued for polled analyzers."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from pathlib import Path

from bia_acq.cli import positive_int
from bia_acq.errors import ConfigError

_ID = re.compile(r"[0-9A-Za-z-]{1,16}")


def _subject_id(text: str) -> str:
    if not _ID.fullmatch(text):
        raise argparse.ArgumentTypeError(
            "expected 1 to 16 letters, digits or '-' (what the analyzer's ID setting takes)"
        )
    return text


def _number(low: float, high: float, unit: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number of {unit}, got {text!r}") from None
        if not low <= v <= high:
            raise argparse.ArgumentTypeError(f"expected {low:g} to {high:g} {unit}, got {text}")
        return v

    return parse


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "worklist",
        help="queue subjects for polled analyzers (PC mode): add, list, clear",
        description="The work list of polled analyzers: the service sends each entry's settings "
        "to the analyzer, starts the measurement and stores it for that subject.",
    )
    wsub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    a = wsub.add_parser(
        "add",
        help="queue a subject",
        description="Queue a subject for a polled analyzer: the service sends these settings "
        "to the next free polled port (or --port), starts the measurement and stores it for "
        "this subject.",
    )
    a.add_argument("--db", type=Path, required=True, help="the service's database")
    a.add_argument("--id", dest="subject_id", type=_subject_id, required=True, help="patient ID")
    a.add_argument("--sex", choices=["male", "female"], required=True, help="the subject's sex")
    a.add_argument("--age", type=positive_int, required=True, help="age in years")
    a.add_argument("--height", type=_number(50, 250, "cm"), required=True, help="height in cm")
    a.add_argument(
        "--body-type",
        choices=["standard", "athletic"],
        default="standard",
        help="the analyzer's body type setting (default standard)",
    )
    a.add_argument("--tare", type=_number(0, 10, "kg"), help="clothes weight to subtract (kg)")
    a.add_argument("--port", help="only this configured port (default: the first free one)")
    a.set_defaults(handler=run)
    ls = wsub.add_parser(
        "list",
        help="show the entries, oldest first",
        description="Show the work list, oldest first: status, port, settings, and the "
        "subject's pseudonym (its patient ID with --show-ids).",
    )
    ls.add_argument("--db", type=Path, required=True, help="the service's database")
    ls.add_argument("--show-ids", action="store_true", help="print patient IDs, not pseudonyms")
    ls.set_defaults(handler=run)
    c = wsub.add_parser(
        "clear",
        help="remove waiting and failed entries",
        description="Remove waiting and failed entries (with --all: done ones too); stored "
        "measurements stay.",
    )
    c.add_argument("--db", type=Path, required=True, help="the service's database")
    c.add_argument("--all", action="store_true", help="also remove done entries")
    c.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from bia_acq import worklist
    from bia_acq.store.db import open_readonly, open_writer
    from bia_acq.store.writer import Store

    if args.action == "add":
        if args.age > 120:
            raise ConfigError(
                f"--age {args.age} is not a plausible age", fix="give years, 1 to 120"
            )
        db = open_writer(args.db)
        try:
            entry_id = worklist.add(
                db.conn,
                external_id=args.subject_id,
                sex=args.sex,
                age_years=args.age,
                height_cm=args.height,
                body_type=args.body_type,
                tare_kg=args.tare,
                port=args.port,
            )
            print(f"work-list entry {entry_id} added for {Store(db).pseudonym(args.subject_id)}")
        finally:
            db.close()
        return 0
    if args.action == "clear":
        db = open_writer(args.db)
        try:
            n = worklist.clear(db.conn, everything=args.all)
        finally:
            db.close()
        print(f"removed {n} work-list entr{'y' if n == 1 else 'ies'}")
        return 0
    from sqlite_utils import Database

    conn = open_readonly(args.db)
    try:
        rows = worklist.entries(conn)
        store = Store(Database(conn))
    finally:
        conn.close()

    def shown(ext: str) -> str:
        return ext if args.show_ids else store.pseudonym(ext)

    print(
        f"{'id':>4} {'status':<9} {'port':<14} {'subject':<16} sex     age height body      result"
    )
    for e in rows:
        result = f"measurement {e.measurement_id}" if e.measurement_id else (e.reason or "")
        print(
            f"{e.id:>4} {e.status:<9} {e.port or '(any)':<14} {shown(e.external_id):<16} "
            f"{e.sex:<7} {e.age_years:>3} {e.height_cm:>6.1f} {e.body_type:<9} {result}"
        )
    return 0
