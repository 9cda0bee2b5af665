"""Physical plausibility of a decoded reading and of computed volumes, before storage.

A reading outside what a human body on an analyzer can show is rejected (its
raw frame stays in the journal with the reason); nothing that is not a finite
number is ever stored. The bounds are deliberately wide: they catch a broken
frame, a wrong unit or a hand-edited file, not an unusual patient.

Bounds and where they come from:

* height 40–275 cm: the tallest recorded person measured 272 cm (Robert Wadlow);
  analyzers with a standing platform do not measure infants;
* weight 1–650 kg: the heaviest recorded person weighed about 635 kg;
* age 0–125 years: the oldest verified age is 122 years (Jeanne Calment);
* impedance magnitude 1–100,000 Ω at 0.1 kHz–10 MHz: a trunk segment is about
  30 Ω and a whole body about 300–1,100 Ω (R0 303–1087 Ω in NHANES 1999–2000,
  see docs/physiology.md); more than 100 kΩ is an open lead, less than 1 Ω a short;
* phase angle −45° to +20°: tissue is capacitive (5–8° healthy, 3–5° in edema);
  a small positive phase is a high-frequency "hook" artefact, anything beyond these
  bounds is not a body;
* measurement date 1970–2199: a device clock outside cannot be placed in time;
* volumes: total body water is at most the body weight (1 L of water weighs 1 kg)
  and at most 300 L; ECW/TBW between 0.15 and 0.85 (healthy adults about 0.36–0.40).

Reasons name the field and its unit, never the value of an identifier field
(subject ID, serial number): they end up in logs and in ``raw_frame.reason``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from bia_acq.model import Reading

if TYPE_CHECKING:
    from bia_acq.core.estimate import Results

#: (low, high, unit) per Reading field
RANGES: dict[str, tuple[float, float, str]] = {
    "height_cm": (40.0, 275.0, "cm"),
    "weight_kg": (1.0, 650.0, "kg"),
    "age_years": (0.0, 125.0, "years"),
}
IMPEDANCE_OHM = (1.0, 100_000.0)
FREQ_KHZ = (0.1, 10_000.0)
PHASE_DEG = (-45.0, 20.0)
YEARS = (1970, 2199)
TBW_MAX_L = 300.0
RATIO = (0.15, 0.85)
#: Reading fields whose value never appears in a reason
IDENTIFIER_FIELDS = frozenset({"subject_id", "serial_number"})

#: the fit_status text of a result whose volumes are physically impossible
IMPLAUSIBLE = "implausible volumes"
#: the classification of a result that has none (the core's label where a method does not
#: apply, :data:`bia_acq.core.methods.LABELS`)
UNCLASSIFIED = "not applicable"


def _num(value: float) -> str:
    return f"{value:g}" if math.isfinite(value) else "not a finite number"


def points_within_bounds(readings: Sequence[Reading]) -> list[bool]:
    """Per reading: every impedance point is within the bounds (frequency, |Z|, R > 0,
    phase), screened for the whole batch at once on the arrays. Pass it to
    :func:`reading_problem` (``points_checked``), which then walks a reading's points
    for the reason only where this says False."""
    if not readings:
        return []
    z = [rd.impedance for rd in readings]
    f = np.concatenate([p.freq_khz for p in z])
    r = np.concatenate([p.r_ohm for p in z])
    x = np.concatenate([p.x_ohm for p in z])
    with np.errstate(all="ignore"):
        x = np.where(x == x, x, 0.0)  # NaN: no reactance; |Z| is then |R|
        mag = np.hypot(r, x)
        phase = np.degrees(np.arctan2(x, r))
        good = (
            (f >= FREQ_KHZ[0]) & (f <= FREQ_KHZ[1]) & (r > 0)
            & (mag >= IMPEDANCE_OHM[0]) & (mag <= IMPEDANCE_OHM[1])
            & (phase >= PHASE_DEG[0]) & (phase <= PHASE_DEG[1])
        )  # fmt: skip
    out = np.ones(len(readings), dtype=bool)
    owner = np.repeat(np.arange(len(readings)), [len(p) for p in z])
    out[owner[~good]] = False
    return out.tolist()


def reading_problem(reading: Reading, *, points_checked: bool = False) -> str | None:
    """Why ``reading`` cannot be stored as a measurement, or None if it can.

    ``points_checked``: its impedance points are known to be within the bounds
    (:func:`points_within_bounds` said so)."""
    for name, (lo, hi, unit) in RANGES.items():
        v = getattr(reading, name)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, int | float):
            return f"{name} is not a number"
        if not math.isfinite(v):
            return f"{name} is not a finite number"
        if not lo <= v <= hi:
            return f"{name} {_num(v)} is outside the physical range {lo:g}–{hi:g} {unit}"
    for name in IDENTIFIER_FIELDS:
        v = getattr(reading, name)
        if v is not None and not isinstance(v, str):
            return f"{name} is not text"
    if reading.measured_at is not None:
        year = reading.measured_at.year
        if not YEARS[0] <= year <= YEARS[1]:
            return (
                f"device date in year {year} is outside {YEARS[0]}–{YEARS[1]} "
                "(check the analyzer's clock)"
            )
    for z in () if points_checked else reading.impedance:
        where = f"impedance {z.segment}"
        if not (isinstance(z.freq_khz, int | float) and math.isfinite(z.freq_khz)):
            return f"{where}: frequency is not a finite number"
        where = f"impedance {z.segment} at {z.freq_khz:g} kHz"
        if not FREQ_KHZ[0] <= z.freq_khz <= FREQ_KHZ[1]:
            return f"{where}: frequency is outside {FREQ_KHZ[0]:g}–{FREQ_KHZ[1]:g} kHz"
        r, x = z.r_ohm, z.x_ohm
        if not (isinstance(r, int | float) and math.isfinite(r)) or (
            x is not None and not (isinstance(x, int | float) and math.isfinite(x))
        ):
            return f"{where}: resistance or reactance is not a finite number"
        mag = abs(r) if x is None else math.hypot(r, x)
        if not r > 0 or not IMPEDANCE_OHM[0] <= mag <= IMPEDANCE_OHM[1]:
            return (
                f"{where}: |Z| {_num(mag)} ohm (R {_num(r)} ohm) is outside the physical range "
                f"{IMPEDANCE_OHM[0]:g}–{IMPEDANCE_OHM[1]:g} ohm"
            )
        if x is not None:
            phase = math.degrees(math.atan2(x, r))
            if not PHASE_DEG[0] <= phase <= PHASE_DEG[1]:
                return (
                    f"{where}: phase {phase:.1f} deg is outside the physical range "
                    f"{PHASE_DEG[0]:g} to +{PHASE_DEG[1]:g} deg"
                )
    problem = _values_problem(reading.device_values)
    if problem is not None:
        return problem
    if reading.weight_kg is None and not reading.impedance:
        return "no weight and no impedance: the frame carries no measurement"
    return None


def _values_problem(values: Mapping[str, object]) -> str | None:
    for key, v in values.items():
        if isinstance(v, float) and not math.isfinite(v):
            return f"device value {key} is not a finite number"
        if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 1 << 63:
            return f"device value {key} does not fit in 64 bits"
    return None


def volumes_problem(row: Mapping[str, object], weight_kg: float | None) -> str | None:
    """Why one computed result row's volumes are physically impossible, or None."""
    vols = [row.get(k) for k in ("ecw_l", "icw_l", "tbw_l")]
    nums = [float(v) for v in vols if isinstance(v, int | float)]
    if any(not math.isfinite(v) or v <= 0 for v in nums):
        return "a volume is zero, negative or not finite"
    tbw = row.get("tbw_l")
    if isinstance(tbw, int | float):
        limit = min(TBW_MAX_L, weight_kg) if weight_kg else TBW_MAX_L
        if row.get("segment") == "whole_body" and tbw > limit:
            return f"total body water {tbw:.0f} L exceeds {limit:.0f} L"
        if tbw > TBW_MAX_L:
            return f"body water {tbw:.0f} L exceeds {TBW_MAX_L:g} L"
    ratio = row.get("ecw_tbw_ratio")
    if isinstance(ratio, int | float) and not RATIO[0] <= ratio <= RATIO[1]:
        return f"ECW/TBW {ratio:.3f} is outside {RATIO[0]:g}–{RATIO[1]:g}"
    return None


def volumes_within_bounds(
    results: Results, weight_kg: npt.NDArray[np.float64]
) -> npt.NDArray[np.bool_]:
    """Per measurement of a method's results: True when :func:`mark_implausible` would
    change none of its rows, so they need not be walked one by one; NaN is "not
    computed". A screen for a whole batch at once (a superset of what it acts on: every
    segment's water is held to the whole body's limit here): a measurement it does not
    pass is walked row by row for its reasons. Rows the core already withheld
    (``UNCLASSIFIED``) are left alone there, except that impossible whole-body volumes
    withhold every other segment's."""
    weight = np.asarray(weight_kg, dtype=float)
    unknown = np.isnan(weight) | (weight == 0)  # as mark_implausible's "if weight_kg"
    limit = np.where(unknown, TBW_MAX_L, np.minimum(TBW_MAX_L, weight))[:, None]
    with np.errstate(invalid="ignore"):
        bad = (results.ecw_l <= 0) | (results.icw_l <= 0) | (results.tbw_l <= 0)
        bad |= results.tbw_l > limit
        bad |= (results.ecw_tbw_ratio < RATIO[0]) | (results.ecw_tbw_ratio > RATIO[1])
    judged = results.classification != UNCLASSIFIED
    whole = [k for k, seg in enumerate(results.segments) if seg == "whole_body"]
    flagged = (bad & judged).any(axis=1)
    if whole:
        flagged |= bad[:, whole[0]] & judged.any(axis=1)
    return np.asarray(~flagged)


def mark_implausible(rows: Iterable[dict[str, object]], weight_kg: float | None) -> list[str]:
    """Withhold the classification of every result row whose volumes are impossible
    (``fit_status`` says why); impossible whole-body volumes withhold every segment's
    too (the measurement is not to be trusted). The core labels a fit that is not ok
    itself. Return one note per row with impossible volumes, for the measurement's
    warnings. Exports leave out the volumes of a row whose ``fit_status`` is not ``ok``."""
    rows = list(rows)
    whole = next((r for r in rows if r.get("segment") == "whole_body"), None)
    whole_problem = volumes_problem(whole, weight_kg) if whole is not None else None
    notes = []
    for row in rows:
        if row.get("classification") == UNCLASSIFIED:
            continue  # the core already withheld it (too few frequencies, a poor fit...)
        problem = volumes_problem(row, weight_kg)
        if problem is None and whole_problem is not None and row.get("ecw_l") is not None:
            problem = f"whole body: {whole_problem}"
        if problem is None:
            continue
        row["classification"] = UNCLASSIFIED
        status = str(row.get("fit_status") or "")
        row["fit_status"] = f"{IMPLAUSIBLE}: {problem}" + (
            f"; {status}" if status not in ("", "ok") else ""
        )
        notes.append(f"{row.get('segment')}: {problem}; no classification")
    return notes
