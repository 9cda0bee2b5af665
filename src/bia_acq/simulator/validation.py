"""Stored estimates against the simulator's ground truth: Bland–Altman per method and segment.

Each stored measurement is matched to the ``--truth`` record it came from by
subject ID, device clock and the impedances themselves (all three must agree,
so a replayed or re-sent frame cannot match the wrong record). For every
method and version found in ``segment_result`` and every segment, the
differences estimate − truth give the bias and the limits of agreement
bias ± 1.96 SD (Bland & Altman, Lancet 1986;i:307), for ECW/TBW and, where
the method gives them, for ECW, ICW and TBW in litres. The classification
the method stored is compared with the one its own bands give for the true
ratio.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bia_acq.core.estimate import METHODS
from bia_acq.errors import BiaError, ConfigError

QUANTITIES = (
    ("ECW/TBW", "ecw_tbw_ratio"),
    ("ECW L", "ecw_l"),
    ("ICW L", "icw_l"),
    ("TBW L", "tbw_l"),
)


@dataclass(frozen=True)
class Row:
    method: str
    version: str
    segment: str
    quantity: str
    n: int
    bias: float
    sd: float
    loa_low: float
    loa_high: float
    class_correct: float | None  # share, ECW/TBW rows only
    class_n: int


@dataclass
class Report:
    truth_records: int
    measurements: int
    matched: int
    unmatched_measurements: int
    not_stored: int
    not_stored_damaged: int
    rows: list[Row]

    def to_json(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in asdict(self).items() if k != "rows"},
            "rows": [asdict(r) for r in self.rows],
        }

    def table(self) -> str:
        lines = [
            f"truth records: {self.truth_records}; stored measurements: {self.measurements}; "
            f"matched: {self.matched}; stored but not in the truth file: "
            f"{self.unmatched_measurements}; sent but not stored: {self.not_stored} "
            f"({self.not_stored_damaged} damaged on purpose by faults)",
            "",
            f"{'method':<14} {'segment':<11} {'quantity':<8} {'n':>5} {'bias':>8} {'SD':>7} "
            f"{'limits of agreement':>21} {'class ok':>8}",
        ]
        for r in self.rows:
            digits = 4 if r.quantity == "ECW/TBW" else 2
            cls = f"{100 * r.class_correct:7.1f}%" if r.class_correct is not None else f"{'':>8}"
            loa = f"{r.loa_low:+.{digits}f} .. {r.loa_high:+.{digits}f}"
            lines.append(
                f"{r.method + ' v' + r.version:<14} {r.segment:<11} {r.quantity:<8} {r.n:>5} "
                f"{r.bias:>+8.{digits}f} {r.sd:>7.{digits}f} {loa:>21} {cls}".rstrip()
            )
        return "\n".join(lines)


def read_truth(path: Path) -> list[dict[str, Any]]:
    """The records of a ``--truth`` file; ConfigError naming the line if one is not JSON."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("truth file not found", file=str(path), fix="check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read the truth file: {exc}",
            file=str(path),
            fix="pass the file `bia-acq simulate --truth` wrote",
        ) from None
    out = []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            if not isinstance(rec["reading"]["impedance"], list) or not isinstance(
                rec["truth"]["segments"], dict
            ):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise ConfigError(
                "not a truth record (JSON with 'reading' and 'truth')",
                file=str(path),
                line=i,
                fix="pass the file `bia-acq simulate --truth` wrote",
            ) from None
        out.append(rec)
    return out


def _key_points(
    points: Iterable[Sequence[Any]],
) -> tuple[tuple[str, float, float, float | None], ...]:
    return tuple(
        sorted(
            (str(s), float(f), float(r), None if x is None else float(x)) for s, f, r, x in points
        )
    )


def _stats(d: np.ndarray) -> tuple[float, float]:
    bias = float(d.mean())
    sd = float(d.std(ddof=1)) if len(d) > 1 else 0.0
    return bias, sd


def validate(truth: list[dict[str, Any]], conn: sqlite3.Connection) -> Report:
    """Match stored measurements to truth records and compute the agreement table."""
    by_key: dict[tuple[str | None, str | None], list[int]] = defaultdict(list)
    truth_points = []
    for i, rec in enumerate(truth):
        rd = rec["reading"]
        by_key[(rd.get("subject_id"), rd.get("measured_at"))].append(i)
        truth_points.append(
            _key_points(
                (z["segment"], z["freq_khz"], z["r_ohm"], z["x_ohm"]) for z in rd["impedance"]
            )
        )
    points: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    for mid, seg, f, r, x in conn.execute(
        "SELECT measurement_id, segment, freq_khz, r_ohm, x_ohm FROM impedance"
    ):
        points[mid].append((seg, f, r, x))
    used: set[int] = set()
    match: dict[int, int] = {}
    measurements = conn.execute(
        "SELECT m.id, s.external_id, m.device_clock FROM measurement m "
        "LEFT JOIN subject s ON s.id = m.subject_id ORDER BY m.id"
    ).fetchall()
    for mid, ext, clock in measurements:
        key = _key_points(points.get(mid, []))
        for i in by_key.get((ext, clock), []):
            if i not in used and truth_points[i] == key:
                used.add(i)
                match[mid] = i
                break
    # (method, version, segment, quantity) -> lists of (estimate, truth); classes
    pairs: dict[tuple[str, str, str, str], list[tuple[float, float]]] = defaultdict(list)
    classes: dict[tuple[str, str, str], list[bool]] = defaultdict(list)
    for mid, method, version, seg, *vals, cls in conn.execute(
        "SELECT measurement_id, method, method_version, segment, ecw_tbw_ratio, ecw_l, icw_l, "
        "tbw_l, classification FROM segment_result ORDER BY measurement_id"
    ):
        if mid not in match:
            continue
        t = truth[match[mid]]["truth"]
        true_seg = t["whole_body"] if seg == "whole_body" else t["segments"].get(seg)
        if true_seg is None:
            continue
        for (label, col), est in zip(QUANTITIES, vals, strict=True):
            tv = true_seg.get(col)
            if est is not None and tv is not None and math.isfinite(est):
                pairs[(method, version, seg, label)].append((float(est), float(tv)))
        m = METHODS.get(method)
        ratio = vals[0]
        if m is not None and ratio is not None and cls != "unknown":
            classes[(method, version, seg)].append(
                str(m.bands.classify(true_seg["ecw_tbw_ratio"])) == cls
            )
    order = {
        s: i
        for i, s in enumerate(
            ("right_arm", "left_arm", "trunk", "right_leg", "left_leg", "whole_body")
        )
    }
    q_order = {label: i for i, (label, _) in enumerate(QUANTITIES)}
    rows = []
    for (method, version, seg, label), pv in sorted(
        pairs.items(),
        key=lambda kv: (kv[0][0], kv[0][1], order.get(kv[0][2], 99), q_order[kv[0][3]]),
    ):
        a = np.asarray(pv, dtype=float)
        bias, sd = _stats(a[:, 0] - a[:, 1])
        c = classes.get((method, version, seg), []) if label == "ECW/TBW" else []
        rows.append(
            Row(
                method, version, seg, label, len(a), bias, sd, bias - 1.96 * sd, bias + 1.96 * sd,
                (sum(c) / len(c)) if c else None, len(c),
            )
        )  # fmt: skip
    missing = [i for i in range(len(truth)) if i not in used]
    return Report(
        truth_records=len(truth),
        measurements=len(measurements),
        matched=len(match),
        unmatched_measurements=len(measurements) - len(match),
        not_stored=len(missing),
        not_stored_damaged=sum(1 for i in missing if truth[i].get("intact") is False),
        rows=rows,
    )


def validate_files(truth_path: Path, conn: sqlite3.Connection) -> Report:
    truth = read_truth(truth_path)
    report = validate(truth, conn)
    if report.matched == 0:
        raise BiaError(
            f"no stored measurement matches {truth_path} ({report.truth_records} truth records, "
            f"{report.measurements} measurements): was the database filled from this simulator run?"
        )
    return report
