"""The batch screen of computed volumes passes only what mark_implausible leaves alone."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from bia_acq.core.estimate import RESULT_SEGMENTS
from bia_acq.plausibility import UNCLASSIFIED, mark_implausible, volumes_within_bounds

S = len(RESULT_SEGMENTS)
value = st.one_of(
    st.just(float("nan")),
    st.sampled_from([0.0, -1.0, 0.1, 0.14, 0.16, 0.84, 0.86, 299.0, 301.0, float("inf")]),
    st.floats(-10, 400),
)
COLUMNS = ("ecw_l", "icw_l", "tbw_l", "ecw_tbw_ratio")


def _results(cells: list[list[float]], labels: list[str]) -> Any:
    """One measurement's results as the screen reads them (arrays of 1 × segments)."""
    a = np.array(cells, dtype=float).T[:, None, :]
    return cast(
        Any,
        SimpleNamespace(
            segments=RESULT_SEGMENTS,
            classification=np.array([labels]),
            **{c: a[k] for k, c in enumerate(COLUMNS)},
        ),
    )


@given(
    st.lists(st.tuples(st.integers(0, S - 1), st.integers(0, 3), value), max_size=3),
    st.lists(st.sampled_from(["normal", UNCLASSIFIED]), min_size=S, max_size=S),
    st.one_of(st.none(), st.just(0.0), st.floats(1, 650)),
)
def test_a_measurement_the_screen_passes_is_one_mark_implausible_leaves_alone(
    changes: list[tuple[int, int, float]], labels: list[str], weight: float | None
) -> None:
    cells = [[10.0, 15.0, 25.0, 0.4] for _ in range(S)]  # ECW, ICW, TBW, ECW/TBW
    for seg, col, v in changes:  # a few values anywhere, possible or not
        cells[seg][col] = v
    passed = volumes_within_bounds(
        _results(cells, labels), np.array([np.nan if weight is None else weight])
    )
    rows: list[dict[str, object]] = [
        {
            "segment": seg.value,
            "classification": label,
            "fit_status": "ok",
            # as a result row has them: a value that is not a finite number is None
            **{k: (v if np.isfinite(v) else None) for k, v in zip(COLUMNS, c, strict=True)},
        }
        for seg, c, label in zip(RESULT_SEGMENTS, cells, labels, strict=True)
    ]
    before = [dict(r) for r in rows]
    notes = mark_implausible(rows, weight)
    if passed[0]:
        assert notes == [] and rows == before
    assert passed.shape == (1,)


def test_the_screen_stops_impossible_water_and_passes_rows_already_withheld() -> None:
    ok = [[10.0, 15.0, 25.0, 0.4] for _ in range(S)]
    wet = [list(c) for c in ok]
    wet[-1][2] = 90.0  # whole body: more water than the 80 kg the body weighs
    poor = [list(c) for c in ok]
    poor[0][3] = 0.05  # an arm's ratio out of bounds, on a fit the core withheld
    labels = ["normal"] * S
    assert volumes_within_bounds(_results(ok, labels), np.array([80.0]))[0]
    assert not volumes_within_bounds(_results(wet, labels), np.array([80.0]))[0]
    withheld = [UNCLASSIFIED, *labels[1:]]
    assert volumes_within_bounds(_results(poor, withheld), np.array([80.0]))[0]
    assert not volumes_within_bounds(_results(poor, labels), np.array([80.0]))[0]
    # impossible whole-body water withholds the other segments even when the core
    # withheld the whole body's own label
    whole_withheld = [*labels[:-1], UNCLASSIFIED]
    assert not volumes_within_bounds(_results(wet, whole_withheld), np.array([80.0]))[0]
    rows = [
        {"segment": seg.value, "ecw_l": 1.0, "tbw_l": c[2]}
        for seg, c in zip(RESULT_SEGMENTS, wet, strict=True)
    ]
    rows[-1]["classification"] = UNCLASSIFIED
    assert mark_implausible(rows, 80.0)  # what the screen is for
