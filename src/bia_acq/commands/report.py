"""`bia-acq report`."""

from __future__ import annotations

import argparse
from pathlib import Path

from bia_acq.central.reader import database_arg
from bia_acq.errors import BiaError, ConfigError


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "report",
        help="write an edema report (self-contained HTML) for one subject or all",
        description="Write a self-contained HTML edema report (ECW/TBW over time on the "
        "method's bands, segments and left-right asymmetry at the latest visit, latest values, "
        "change from baseline) from a database opened read-only. Prints on A4.",
    )
    p.add_argument(
        "--db",
        type=database_arg,
        required=True,
        help="database file, or the central database: postgresql://ROLE@HOST/DB (docs/central.md)",
    )
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument(
        "--subject", metavar="ID", help="patient ID as the analyzer sent it, or pseudonym"
    )
    who.add_argument("--all", action="store_true", help="one page per subject plus index.html")
    p.add_argument(
        "--out",
        type=Path,
        help="output file (--subject; default edema-report-PSEUDONYM.html) or folder (--all)",
    )
    p.set_defaults(handler=run)


def _write(path: Path, text: str) -> None:
    """Write a file owner-only (the report is health data), whole or not at all."""
    from bia_acq.safefile import write_private

    write_private(path, text)


def run(args: argparse.Namespace) -> int:
    from bia_acq.central.reader import open_reader
    from bia_acq.report.data import (
        find_subject,
        load_subject,
        require_reader_schema,
        subject_ids,
    )
    from bia_acq.report.html import render_index, render_subject, utc_now_text

    conn = open_reader(args.db)
    try:
        require_reader_schema(conn, args.db)
    except BaseException:
        conn.close()
        raise
    now = utc_now_text()
    try:
        if args.subject is not None:
            data = load_subject(conn, find_subject(conn, args.subject))
            out = args.out or Path(f"edema-report-{data.pseudonym}.html")
            _write(out, render_subject(data, generated_utc=now))
            print(f"wrote {out} (subject {data.pseudonym})")
            return 0
        if args.out is None:
            raise ConfigError("--all needs --out DIR, the folder for the pages", key="--out")
        try:
            args.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BiaError(f"cannot create folder {args.out}: {exc.strerror}") from None
        pages = []
        for sid in subject_ids(conn):
            data = load_subject(conn, sid)
            name = f"{data.pseudonym}.html"
            _write(
                args.out / name, render_subject(data, generated_utc=now, index_href="index.html")
            )
            pages.append((data, name))
        pages.sort(key=lambda p: p[0].external_id)
        _write(
            args.out / "index.html",
            render_index(pages, generated_utc=now, db_name=args.db.name),
        )
        print(f"wrote {args.out / 'index.html'} and {len(pages)} subject page(s)")
        return 0
    finally:
        conn.close()
