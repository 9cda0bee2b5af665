"""`bia-acq subjects`: who is in a database, to find the one to report or export."""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

#: per subject: visits (measurements), first and last measurement time (the device clock
#: in UTC, else the receive time) and the latest measurement's whole-body result of the
#: reporting method (v_measurement_wide), with the band limits it was labelled by
QUERY = """
WITH m AS (
    SELECT subject_pseudonym, subject_external_id, measurement_id,
        COALESCE(measured_at_utc, received_at_utc) AS at_utc,
        whole_body_ecw_tbw_ratio, whole_body_classification, method, method_version
    FROM v_measurement_wide WHERE subject_pseudonym IS NOT NULL
), latest AS (
    SELECT *, row_number() OVER (
        PARTITION BY subject_pseudonym ORDER BY at_utc DESC, measurement_id DESC) AS n
    FROM m
)
SELECT l.subject_pseudonym, l.subject_external_id,
    (SELECT count(*) FROM m WHERE m.subject_pseudonym = l.subject_pseudonym),
    (SELECT min(at_utc) FROM m WHERE m.subject_pseudonym = l.subject_pseudonym),
    l.at_utc, l.whole_body_ecw_tbw_ratio, l.whole_body_classification, l.method,
    l.method_version, x.ecw_tbw_normal_min, x.ecw_tbw_normal_max, x.ecw_tbw_slight_max
FROM latest l LEFT JOIN method x ON x.name = l.method AND x.version = l.method_version
WHERE l.n = 1
ORDER BY l.at_utc DESC, l.subject_pseudonym
"""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "subjects",
        help="list the subjects in a database (pseudonyms, visits, latest result)",
        description="List the subjects of a database opened read-only, most recently "
        "measured first: pseudonym, visits, first and last measurement (UTC), and the "
        "latest whole-body ECW/TBW with its label by the reporting method. Patient IDs "
        "only with --include-identifiers. Give either to `report --subject` or `export "
        "--subject`.",
    )
    p.add_argument("--db", type=Path, required=True, help="database file")
    p.add_argument(
        "--include-identifiers",
        action="store_true",
        help="also print the patient IDs as the analyzer sent them (default: pseudonyms only)",
    )
    p.set_defaults(handler=run)


def rows(conn: sqlite3.Connection, identifiers: bool) -> list[tuple[str, ...]]:
    """The table: a header row, then one row of text per subject."""
    from bia_acq.report.svg import ratio_text

    header = ("pseudonym", "patient ID", "visits", "first (UTC)", "last (UTC)", "latest whole body")
    out: list[tuple[str, ...]] = []
    for pseudonym, ext, visits, first, last, ratio, label, method, version, *limits in conn.execute(
        QUERY
    ):
        if ratio is None:
            latest = "-"
        else:
            latest = f"{ratio_text(ratio, limits)} {label} ({method} v{version})"
        out.append((pseudonym, ext or "-", str(visits), first[:19], last[:19], latest))
    table: list[tuple[str, ...]] = [header, *out]
    if not identifiers:
        table = [row[:1] + row[2:] for row in table]
    return table


def run(args: argparse.Namespace) -> int:
    from bia_acq.report.data import require_reader_schema
    from bia_acq.store.db import open_readonly

    conn = open_readonly(args.db)
    try:
        require_reader_schema(conn, args.db)
        table = rows(conn, args.include_identifiers)
    finally:
        conn.close()
    if len(table) == 1:
        print(f"no subjects in {args.db}: no measurement carried a patient ID")
        return 0
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1])
    print(f"{len(table) - 1} subject(s) in {args.db}")
    return 0
