"""The first core method: Cole arcs, Hanai volumes, batch estimation."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from conftest import EXAMPLE_FRAME
from hypothesis import given, settings
from hypothesis import strategies as st

from bia_acq.core import circle_fit, cole_impedance, ecw_de_lorenzo, estimate, icw_ecw_ratio_matthie
from bia_acq.core.cole import FIT_NON_MONOTONIC, FIT_OK, FIT_TOO_FEW_POINTS
from bia_acq.core.estimate import METHODS, VALUE_COLUMNS
from bia_acq.core.hanai import k_ecw, s_from_ecw_tbw
from bia_acq.protocols.tanita import TanitaProtocol


def test_cole_limits_and_sign() -> None:
    z = cole_impedance([1e-6, 50e3, 1e18], 600.0, 400.0, 0.7, 50e3)
    assert z[0].real == pytest.approx(600.0, rel=1e-6)
    assert z[2].real == pytest.approx(400.0, rel=1e-6)
    assert z[1].imag < 0  # capacitive
    # at fc with α = 1 the reactance is −ΔR/2
    assert cole_impedance(50e3, 600.0, 400.0, 1.0, 50e3).imag == pytest.approx(-100.0)


@settings(max_examples=200)
@given(
    r0=st.floats(300, 1100),
    s=st.floats(1.2, 3.0),
    alpha=st.floats(0.5, 0.95),
    fc_khz=st.floats(20, 120),
)
def test_circle_fit_recovers_parameters_from_three_frequencies(r0, s, alpha, fc_khz) -> None:
    f = np.array([5e3, 50e3, 250e3])
    z = cole_impedance(f, r0, r0 / s, alpha, fc_khz * 1e3)
    fit = circle_fit(f, z.real, z.imag)
    assert fit.status == FIT_OK
    assert fit.r0 == pytest.approx(r0, rel=1e-6)
    assert fit.rinf == pytest.approx(r0 / s, rel=1e-6)
    assert fit.alpha == pytest.approx(alpha, rel=1e-6)
    assert fit.fc_hz == pytest.approx(fc_khz * 1e3, rel=1e-5)


def test_circle_fit_is_batched_and_flags_bad_spectra() -> None:
    f = np.array([5e3, 50e3, 250e3])
    good = cole_impedance(f, 600.0, 400.0, 0.7, 50e3)
    rising = good[::-1].copy()
    two = good.copy()
    two[2] = np.nan
    z = np.stack([good, rising, two])
    fit = circle_fit(f, z.real, z.imag)
    assert list(fit.status) == [FIT_OK, FIT_NON_MONOTONIC, FIT_TOO_FEW_POINTS]
    assert np.isnan(fit.r0[1:]).all() and fit.r0[0] == pytest.approx(600.0)


def test_de_lorenzo_prefactor_and_volume_by_hand() -> None:
    # 10⁻²·(4.3²·40.5²/1.05)^(1/3) = 10⁻²·(18.49·1640.25/1.05)^(1/3) = 10⁻²·28884.0^(1/3)
    assert float(k_ecw(40.5)) == pytest.approx(0.306822, rel=1e-5)
    # 175 cm, 75 kg, Re 600 Ω: (30625·8.660254/600)^(2/3) = 442.034^(2/3) = 58.028 → 17.80 L
    assert float(ecw_de_lorenzo(175.0, 75.0, 600.0, 40.5)) == pytest.approx(17.804, rel=1e-4)


def test_matthie_relation_limits_and_inverse() -> None:
    k = 273.9 / 40.5
    assert float(icw_ecw_ratio_matthie(1.0, k)) == pytest.approx(0.0)  # no ICW contrast, no ICW
    # s = 1.5: 1 + x = (6.763·1.5 − 5.763·1.5^(1/3))^(2/3) = 3.5478^(2/3) = 2.3258
    x = float(icw_ecw_ratio_matthie(1.5, k))
    assert 1 / (1 + x) == pytest.approx(0.42996, rel=1e-4)
    assert float(s_from_ecw_tbw(1 / (1 + x), k)) == pytest.approx(1.5, rel=1e-9)


def test_estimate_on_the_example_frame() -> None:
    reading = TanitaProtocol().decode(EXAMPLE_FRAME)
    res = estimate([reading, reading])
    rows = {r["segment"]: r for r in res.rows(0)}
    assert res.rows(0) == res.rows(1)
    wb = rows["whole_body"]
    assert wb["method"] == "hanai-bis" and wb["method_version"] == METHODS["hanai-bis"].version
    # the device itself reports ECW 13.7 L, TBW 33.6 L (ECW/TBW 0.408): same ballpark
    assert 12.0 < wb["ecw_l"] < 16.0 and 30.0 < wb["tbw_l"] < 40.0
    assert 0.37 < wb["ecw_tbw_ratio"] < 0.43
    assert math.isclose(wb["ecw_l"] + wb["icw_l"], wb["tbw_l"])
    # no trunk code and no hand-to-foot path on this frame: trunk is missing, not invented
    assert rows["trunk"]["ecw_tbw_ratio"] is None
    assert any("trunk not measured" in n for n in res.notes[0])
    # issue 12: values with their interval, but three frequencies earn no label
    assert wb["classification"] == "not applicable"
    for seg in ("right_arm", "left_arm", "right_leg", "left_leg"):
        assert rows[seg]["fit_status"].startswith("not applicable: 3 frequencies")
        assert 0.3 < rows[seg]["ecw_tbw_ratio"] < 0.5
        assert rows[seg]["ecw_tbw_low"] < rows[seg]["ecw_tbw_ratio"] < rows[seg]["ecw_tbw_high"]
    assert rows["right_arm"]["phase_angle_50khz_deg"] == pytest.approx(
        math.degrees(math.atan(36.1 / 329.0))
    )


def test_all_rows_match_the_arrays_cell_by_cell() -> None:
    """``all_rows`` (one conversion for the batch, used by imports) gives, for every
    measurement, ``rows(i)``: each value read from its array cell, NaN and inf as None."""
    reading = TanitaProtocol().decode(EXAMPLE_FRAME)
    bare = dataclasses.replace(reading, sex=None)  # no sex: TBW equations give NaN
    res = estimate([reading, bare, reading])
    every = res.all_rows()
    assert len(every) == 3 and every[0] == every[2]
    for i, rows in enumerate(every):
        assert rows == res.rows(i)
        for j, row in enumerate(rows):
            assert row["segment"] == res.segments[j].value
            assert row["fit_status"] == res.fit_status[i][j]
            for name, a in zip(VALUE_COLUMNS, res._values(), strict=True):
                cell = float(a[i, j])
                assert row[name] == (cell if math.isfinite(cell) else None)
    assert any(r["tbw_l"] is None for r in every[1]) and every[0][-1]["tbw_l"] is not None
