"""`bia-acq export`."""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from bia_acq.central.reader import database_arg
from bia_acq.report.formats import BUILTIN


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "export",
        help="export measurements as CSV, a FHIR R4 Bundle or HL7 v2.5 ORU^R01 messages",
        description="Export measurements with a subject (and the results of the reporting "
        "method) from a database opened read-only. Patient IDs are pseudonymised unless "
        "--include-identifiers is given.",
    )
    p.add_argument(
        "--db",
        type=database_arg,
        required=True,
        help="database file, or the central database: postgresql://ROLE@HOST/DB (docs/central.md)",
    )
    p.add_argument(
        "--format",
        required=True,
        help=f"{', '.join(BUILTIN)}, or an installed plugin's format (docs/extending.md)",
    )
    p.add_argument("--subject", metavar="ID", help="only this patient ID (as sent) or pseudonym")
    p.add_argument(
        "--since", metavar="DATE", help="only measurements from this ISO date/time on (UTC)"
    )
    p.add_argument("--out", type=Path, help="output file (default: standard output)")
    p.add_argument(
        "--include-identifiers",
        action="store_true",
        help="write the patient IDs as the analyzer sent them (default: pseudonyms only)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from bia_acq.central.reader import open_reader
    from bia_acq.report.data import require_reader_schema
    from bia_acq.report.export import database_fingerprint, measurements
    from bia_acq.report.formats import ExportContext, get_format
    from bia_acq.safefile import write_private
    from bia_acq.utc import parse_since, utc_now

    fmt = get_format(args.format)
    since = parse_since(args.since) if args.since else None
    conn = open_reader(args.db)
    try:
        require_reader_schema(conn, args.db)
    except BaseException:
        conn.close()
        raise
    now = utc_now("seconds")
    buf = io.StringIO(newline="")
    try:
        rows = measurements(conn, subject=args.subject, since_epoch=since)
        ctx = ExportContext(args.include_identifiers, database_fingerprint(conn), now)
        what = fmt.write(buf, rows, ctx)
    finally:
        conn.close()
    data = buf.getvalue()
    if args.out is None:
        sys.stdout.write(data)
        sys.stdout.flush()
    else:
        write_private(args.out, data)
        print(f"wrote {args.out}: {what}", file=sys.stderr)
    return 0
