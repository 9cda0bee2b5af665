"""The batch screen of computed volumes passes only what mark_implausible leaves alone."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from bia_acq.core.estimate import RESULT_SEGMENTS
from bia_acq.plausibility import mark_implausible, volumes_within_bounds

S = len(RESULT_SEGMENTS)
value = st.one_of(
    st.just(float("nan")),
    st.sampled_from([0.0, -1.0, 0.1, 0.14, 0.16, 0.84, 0.86, 299.0, 301.0, float("inf")]),
    st.floats(-10, 400),
)


@given(
    st.lists(st.tuples(st.integers(0, S - 1), st.integers(0, 3), value), max_size=3),
    st.one_of(st.none(), st.just(0.0), st.floats(1, 650)),
)
def test_a_measurement_the_screen_passes_is_one_mark_implausible_leaves_alone(
    changes: list[tuple[int, int, float]], weight: float | None
) -> None:
    cells = [[10.0, 15.0, 25.0, 0.4] for _ in range(S)]  # ECW, ICW, TBW, ECW/TBW
    for seg, col, v in changes:  # a few values anywhere, possible or not
        cells[seg][col] = v
    a = np.array(cells, dtype=float).T[:, None, :]  # (4 columns, 1 measurement, S)
    passed = volumes_within_bounds(
        a[0], a[1], a[2], a[3], np.array([np.nan if weight is None else weight])
    )
    rows: list[dict[str, object]] = [
        {
            "segment": seg.value,
            "classification": "normal",
            "fit_status": "ok",
            # as a result row has them: a value that is not a finite number is None
            **{
                k: (v if np.isfinite(v) else None)
                for k, v in zip(("ecw_l", "icw_l", "tbw_l", "ecw_tbw_ratio"), c, strict=True)
            },
        }
        for seg, c in zip(RESULT_SEGMENTS, cells, strict=True)
    ]
    before = [dict(r) for r in rows]
    notes = mark_implausible(rows, weight)
    if passed[0]:
        assert notes == [] and rows == before
    assert passed.shape == (1,)


def test_the_screen_stops_impossible_water() -> None:
    ok = np.full((2, S), 10.0)
    tbw = ok.copy()
    tbw[1, -1] = 90.0  # more water than the 80 kg the body weighs
    ratio = np.full((2, S), 0.4)
    passed = volumes_within_bounds(ok, ok, tbw, ratio, np.array([80.0, 80.0]))
    assert passed.tolist() == [True, False]
    assert mark_implausible(
        [{"segment": "whole_body", "tbw_l": 90.0, "classification": "normal"}], 80.0
    )
