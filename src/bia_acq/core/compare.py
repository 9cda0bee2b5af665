"""Comparisons clinicians read results by: left–right asymmetry and change from baseline.

Both are plain functions on arrays so reports, views and tests compute them
the same way. In the database they need nothing beyond ``segment_result``
(one row per segment: asymmetry is a self-join of right and left rows) and
``subject_baseline`` (a chosen baseline; without one, the subject's first
measurement).

Unilateral lymphedema is judged by comparing limbs: Ward et al. (Lymphat Res
Biol 2011, doi:10.1089/lrb.2010.0014) give arm R0 ratios (unaffected /
at-risk) of about 1.07–1.14 as cut-offs, and L-Dex flags a rise of more than
6.5 from the patient's own baseline (PHYSIOLOGY.md, [V]). The functions return
the ratios and differences; thresholds stay with the caller.
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
