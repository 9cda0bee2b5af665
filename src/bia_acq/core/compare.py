"""Comparisons clinicians read results by: left–right asymmetry and change from baseline.

Both are plain functions on arrays so reports, views and tests compute them
the same way. In the database they need nothing beyond ``segment_result``
(one row per segment: asymmetry is a self-join of right and left rows) and
``subject_baseline`` (a chosen baseline; without one, the subject's first
measurement).

Unilateral swelling is judged by comparing limbs, with the published normal
limits of the inter-limb R0 ratio (unaffected / affected: above 1 where the
affected limb holds more fluid), each the mean + 3 SD of healthy controls
measured by BIS (docs/physiology.md, "Asymmetry"; abstracts seen [V]):

* legs: 1.167 men, 1.136 women, no correction for dominance (Ward LC et al.,
  reference ranges for unilateral lymphedema of the legs by BIS, 150 men and
  172 women; Australian Catholic University research bank, fhs_pub/3827);
* arms: 1.134 when the dominant arm is the affected one, 1.106 when the
  non-dominant is (Ward LC et al. Lymphat Res Biol 2011;9:21,
  doi:10.1089/lrb.2010.0014; 172 women: no published limit for men here).

:func:`limb_asymmetry_labels` judges every limb by the 95 % interval of its
ratio: ``asymmetric`` (lower limit above the limit), ``within limits``
(upper below), else ``indeterminate``; ``not applicable`` without a limit or
a ratio. Without a known dominant side the arm limit is the pair (1.106,
1.134) and the interval must clear both. Change from the subject's own
baseline is judged against the minimal detectable change
MDC95 = 1.96·√(SD_now² + SD_baseline²) from the analyzer's propagated
uncertainty (:func:`mdc95`, :func:`change_labels`). L-Dex's own rule (a rise of
more than 6.5 L-Dex units, ImpediMed) is on a scale this project does not
compute and is not used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from bia_acq.model import Segment

if TYPE_CHECKING:
    from bia_acq.core.estimate import Results

Array = npt.NDArray[np.float64]

#: limb pairs as (right, left)
LIMB_PAIRS: dict[str, tuple[Segment, Segment]] = {
    "arm": (Segment.RIGHT_ARM, Segment.LEFT_ARM),
    "leg": (Segment.RIGHT_LEG, Segment.LEFT_LEG),
}


def asymmetry(right: npt.ArrayLike, left: npt.ArrayLike) -> dict[str, Array]:
    """Right vs left: ``diff`` (right − left), ``ratio`` (right / left) and
    ``index`` (larger / smaller, ≥ 1; the side-independent R0 ratio of Ward et al.)."""
    r = np.asarray(right, dtype=float)
    lt = np.asarray(left, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = r / lt
        index = np.maximum(r, lt) / np.minimum(r, lt)
    return {"diff": r - lt, "ratio": ratio, "index": index}


def limb_asymmetry(results: Results) -> dict[str, dict[str, dict[str, Array]]]:
    """Per limb pair and quantity (``ecw_tbw_ratio``, ``ecw_l``, ``r0_ohm``): :func:`asymmetry`."""
    col = {s: k for k, s in enumerate(results.segments)}
    out: dict[str, dict[str, dict[str, Array]]] = {}
    for pair, (right, left) in LIMB_PAIRS.items():
        out[pair] = {}
        for name in ("ecw_tbw_ratio", "ecw_l", "r0_ohm"):
            a: Array = getattr(results, name)
            out[pair][name] = asymmetry(a[:, col[right]], a[:, col[left]])
    return out


def baseline_rows(
    subject: npt.ArrayLike,
    when: npt.ArrayLike,
    chosen: Mapping[int, int] | None = None,
) -> npt.NDArray[np.int64]:
    """For each row, the row of its subject's baseline (−1 where no subject).

    ``subject`` are subject ids (negative: unknown subject), ``when`` the times
    (epoch seconds); the baseline is the subject's earliest row unless
    ``chosen`` maps the subject id to a row index.
    """
    subj = np.asarray(subject, dtype=np.int64)
    t = np.asarray(when, dtype=float)
    n = subj.shape[0]
    out = np.full(n, -1, dtype=np.int64)
    known = np.nonzero(subj >= 0)[0]
    if known.size:
        order = known[np.lexsort((np.where(np.isfinite(t[known]), t[known], np.inf), subj[known]))]
        uniq, first = np.unique(subj[order], return_index=True)
        pos = np.searchsorted(uniq, subj[known])
        out[known] = order[first[pos]]
    for s, row in (chosen or {}).items():
        out[subj == s] = row
    return out


def baseline_change(
    values: npt.ArrayLike,
    subject: npt.ArrayLike,
    when: npt.ArrayLike,
    chosen: Mapping[int, int] | None = None,
) -> Array:
    """``values`` (N, ...) minus the value at each row's subject baseline; NaN without one."""
    v = np.asarray(values, dtype=float)
    rows = baseline_rows(subject, when, chosen)
    base = v[np.maximum(rows, 0)]
    base[rows < 0] = np.nan
    return np.asarray(v - base, dtype=float)


#: inter-limb R0 ratio limits (mean + 3 SD of healthy controls), docs/physiology.md
LEG_R0_RATIO_LIMIT = {"male": 1.167, "female": 1.136}
LEG_LIMIT_SOURCE = (
    "Ward LC et al., inter-leg impedance ratio, BIS, 150 men, 172 women (mean + 3 SD)"
)
ARM_R0_RATIO_LIMIT = {"dominant": 1.134, "non-dominant": 1.106}
ARM_LIMIT_SOURCE = "Ward LC et al. Lymphat Res Biol 2011, inter-arm impedance ratio, 172 women"

ASYMMETRY_LABELS = ("asymmetric", "within limits", "indeterminate", "not applicable")


def _ratio_interval(
    r_other: Array, sd_other: Array, r_this: Array, sd_this: Array
) -> tuple[Array, Array, Array]:
    """R0(other)/R0(this) and its 95 % interval (delta method on the log ratio)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ratio = r_other / r_this
        rel = np.sqrt((sd_other / r_other) ** 2 + (sd_this / r_this) ** 2)
        lo, hi = ratio * np.exp(-1.959964 * rel), ratio * np.exp(1.959964 * rel)
    return ratio, lo, hi


def limb_asymmetry_labels(
    r0: npt.ArrayLike,
    r0_sd: npt.ArrayLike,
    segments: tuple[Segment, ...],
    sex: npt.ArrayLike,
    dominant: npt.ArrayLike | None = None,
) -> tuple[Array, npt.NDArray[np.str_]]:
    """Per limb cell (N, S): R0(other side)/R0(this side) and its label.

    ``r0``, ``r0_sd`` (N, S) in ``segments`` order; ``sex`` (N,) 'male'/'female'
    (else unknown); ``dominant`` (N,) 'right'/'left' (else unknown). Cells that
    are not limbs get NaN and ''.
    """
    r = np.asarray(r0, dtype=float)
    sd = np.asarray(r0_sd, dtype=float)
    n = r.shape[0]
    sx = np.asarray(sex, dtype=object).reshape(n)
    dom = np.asarray(dominant if dominant is not None else [None] * n, dtype=object).reshape(n)
    col = {seg: k for k, seg in enumerate(segments)}
    ratio = np.full(r.shape, np.nan)
    labels = np.full(r.shape, "", dtype=object)
    for pair, (right, left) in LIMB_PAIRS.items():
        if right not in col or left not in col:
            continue
        jr, jl = col[right], col[left]
        for this, other, side in ((jr, jl, "right"), (jl, jr, "left")):
            q, lo, hi = _ratio_interval(r[:, other], sd[:, other], r[:, this], sd[:, this])
            if pair == "leg":
                big = np.where(sx == "female", LEG_R0_RATIO_LIMIT["female"], np.nan)
                big = np.where(sx == "male", LEG_R0_RATIO_LIMIT["male"], big)
                unknown = ~np.isin(sx, ("male", "female"))
                lim_hi = np.where(unknown, max(LEG_R0_RATIO_LIMIT.values()), big)
                lim_lo = np.where(unknown, min(LEG_R0_RATIO_LIMIT.values()), big)
            else:
                is_dom = dom == side
                known = np.isin(dom, ("right", "left"))
                d, nd = ARM_R0_RATIO_LIMIT["dominant"], ARM_R0_RATIO_LIMIT["non-dominant"]
                lim_hi = np.where(known, np.where(is_dom, d, nd), max(d, nd))
                lim_lo = np.where(known, np.where(is_dom, d, nd), min(d, nd))
                # published for women only
                lim_hi = np.where(sx == "female", lim_hi, np.nan)
                lim_lo = np.where(sx == "female", lim_lo, np.nan)
            with np.errstate(invalid="ignore"):
                lab = np.where(
                    lo > lim_hi,
                    "asymmetric",
                    np.where(hi < lim_lo, "within limits", "indeterminate"),
                )
            ok = np.isfinite(q) & np.isfinite(lo) & np.isfinite(lim_hi)
            ratio[:, this] = q
            labels[:, this] = np.where(ok, lab, "not applicable")
    return ratio, np.asarray(labels, dtype=str)


def mdc95(sd_now: npt.ArrayLike, sd_baseline: npt.ArrayLike) -> Array:
    """Minimal detectable change (95 %) between two measurements of known SD."""
    a = np.asarray(sd_now, dtype=float)
    b = np.asarray(sd_baseline, dtype=float)
    return np.asarray(1.959964 * np.sqrt(a * a + b * b), dtype=float)


def change_labels(change: npt.ArrayLike, mdc: npt.ArrayLike) -> npt.NDArray[np.str_]:
    """'increased' / 'decreased' beyond the MDC, 'within MDC', '' without values."""
    d = np.asarray(change, dtype=float)
    m = np.asarray(mdc, dtype=float)
    with np.errstate(invalid="ignore"):
        out = np.where(d > m, "increased", np.where(d < -m, "decreased", "within MDC"))
    return np.asarray(np.where(np.isfinite(d) & np.isfinite(m), out, ""), dtype=str)
