"""CSV export: one row per measurement and segment, one stable column set with units.

UTF-8, a header row, comma-separated, ISO-8601 UTC times, a dot as decimal mark, empty
cells for missing values. Text cells that a spreadsheet would run as a formula (starting
with ``=``, ``+``, ``-``, ``@``, tab or CR) are prefixed with an apostrophe.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import IO, Any

from bia_acq.core.estimate import PUBLISHED_COLUMNS
from bia_acq.report.data import SEGMENT_ORDER
from bia_acq.report.export import Export
from bia_acq.report.formats import ExportContext, ExportFormat, Written

#: (column, source, decimals): the documented, stable column set (docs/analysts.md "Exports")
COLUMNS: tuple[tuple[str, str, int | None], ...] = (
    ("measurement_id", "m.measurement_id", None),
    ("subject_pseudonym", "m.subject_pseudonym", None),
    ("subject_id", "id", None),
    ("measured_at_utc", "m.measured_at_utc", None),
    ("measured_at_epoch", "m.measured_at_epoch", 3),
    ("days_since_baseline", "r.days_since_baseline", 3),
    ("device_model", "m.device_model", None),
    ("device_serial_number", "m.device_serial_number", None),
    ("sex", "m.sex", None),
    ("age_years", "m.age_years", None),
    ("height_cm", "m.height_cm", 1),
    ("weight_kg", "m.weight_kg", 1),
    ("segment", "r.segment", None),
    ("method", "r.method", None),
    ("method_version", "r.method_version", None),
    ("ecw_l", "r.ecw_l", 3),
    ("icw_l", "r.icw_l", 3),
    ("tbw_l", "r.tbw_l", 3),
    ("ecw_tbw_ratio", "r.ecw_tbw_ratio", 4),
    ("ecw_tbw_normal_max", "r.ecw_tbw_normal_max", 4),
    ("ecw_tbw_slight_max", "r.ecw_tbw_slight_max", 4),
    ("classification", "r.classification", None),
    ("phase_angle_50khz_deg", "r.phase_angle_50khz_deg", 2),
    ("r0_ohm", "r.r0_ohm", 2),
    ("baseline_ecw_tbw_ratio", "r.baseline_ecw_tbw_ratio", 4),
    ("ecw_tbw_ratio_change", "r.ecw_tbw_ratio_change", 4),
    ("ecw_tbw_ratio_minus_other_side", "r.ecw_tbw_ratio_minus_other_side", 4),
    ("r0_other_side_over_this", "r.r0_other_side_over_this", 4),
    ("fit_status", "r.fit_status", None),
    # result columns added since m005, from the result record (core.estimate.Results)
    *((c.name, f"r.{c.name}", c.decimals) for c in PUBLISHED_COLUMNS),
)
HEADER = [c for c, _, _ in COLUMNS]
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(v: Any, decimals: int | None) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if decimals is None:
            return repr(v)
        return f"{round(v, decimals) + 0.0:.{decimals}f}"  # + 0.0: no "-0.000"
    if isinstance(v, int):
        return str(v)
    text = str(v)
    return "'" + text if text.startswith(_FORMULA) else text


def write_csv(out: IO[str], exports: Iterable[Export], *, include_identifiers: bool) -> int:
    """Write the header and one row per measurement × segment; return the row count."""
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(HEADER)
    n = 0
    for e in exports:
        ident = e.measurement["subject_external_id"] if include_identifiers else None
        for seg in SEGMENT_ORDER:
            r = e.results.get(seg)
            if r is None:
                continue
            src = {"m": e.measurement, "r": r}
            row = []
            for _, source, decimals in COLUMNS:
                if source == "id":
                    row.append(_cell(ident, None))
                    continue
                table, key = source.split(".")
                row.append(_cell(src[table].get(key), decimals))
            w.writerow(row)
            n += 1
    return n


def _write(out: IO[str], exports: Iterable[Export], ctx: ExportContext) -> Written:
    return Written(write_csv(out, exports, include_identifiers=ctx.include_identifiers), "row(s)")


FORMAT = ExportFormat("csv", "one row per measurement and segment, stable columns", _write)
