"""fit_cole: batched Levenberg–Marquardt on the Cole model."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bia_acq.core import cole_impedance, fit_cole
from bia_acq.core.fit import (
    FLAG_BARELY_DETERMINED,
    FLAG_HOOK,
    FLAG_MAGNITUDE_ONLY,
    FLAG_NON_MONOTONIC,
    FLAG_TOO_FEW_POINTS,
    _model,
)

BIS = np.geomspace(3e3, 1e6, 50)

params = st.tuples(
    st.floats(300, 1100),  # R0 (NHANES range, PHYSIOLOGY.md)
    st.floats(1.15, 3.0),  # R0/R∞
    st.floats(0.5, 0.95),  # α
    st.floats(10, 200),  # fc kHz
)


@settings(max_examples=60, deadline=None)
@given(p=params, nf=st.sampled_from([3, 8, 50, 256]))
def test_fitting_cole_spectra_recovers_their_parameters(p, nf) -> None:
    r0, s, alpha, fc_khz = p
    f = np.geomspace(5e3, 1e6, nf) if nf > 3 else np.array([5e3, 50e3, 250e3])
    z = cole_impedance(f, r0, r0 / s, alpha, fc_khz * 1e3)
    fit = fit_cole(f, z)
    assert fit.grade in ("good", "fair")
    assert fit.r0 == pytest.approx(r0, rel=1e-6)
    assert fit.rinf == pytest.approx(r0 / s, rel=1e-6)
    assert fit.alpha == pytest.approx(alpha, rel=1e-6)
    assert fit.fc_hz == pytest.approx(fc_khz * 1e3, rel=1e-5)
    assert bool(fit.flags & FLAG_BARELY_DETERMINED) == (nf == 3)


@settings(max_examples=25, deadline=None)
@given(p=params)
def test_magnitude_only_spectra_are_fitted(p) -> None:
    r0, s, alpha, fc_khz = p
    f = np.geomspace(2e3, 2e6, 40)
    mod = np.abs(cole_impedance(f, r0, r0 / s, alpha, fc_khz * 1e3))
    fit = fit_cole(f, mod)  # a real array: magnitudes
    assert fit.flags & FLAG_MAGNITUDE_ONLY
    assert fit.r0 == pytest.approx(r0, rel=1e-4)
    assert fit.rinf == pytest.approx(r0 / s, rel=1e-4)


def test_noisy_batch_is_accurate_and_keeps_leading_shape() -> None:
    rng = np.random.default_rng(7)
    shape = (40, 5)
    r0 = rng.uniform(300, 1100, shape)
    rinf = r0 / rng.uniform(1.2, 3.0, shape)
    alpha = rng.uniform(0.5, 0.95, shape)
    fc = rng.uniform(20e3, 150e3, shape)
    z = cole_impedance(BIS, r0[..., None], rinf[..., None], alpha[..., None], fc[..., None])
    noise = rng.normal(0, 1, z.shape) + 1j * rng.normal(0, 1, z.shape)
    fit = fit_cole(BIS, z + 0.002 * np.abs(z) * noise)
    assert fit.r0.shape == shape and fit.grade.shape == shape
    assert (fit.grade == "good").all()
    assert np.median(np.abs(fit.r0 / r0 - 1)) < 0.003
    assert np.median(np.abs(fit.rinf / rinf - 1)) < 0.005
    assert (fit.rinf < fit.r0).all() and (fit.alpha <= 1).all()


def test_analytic_jacobian_matches_finite_differences() -> None:
    p = np.array([[600.0, 380.0, 0.72, np.log(60e3)]])
    logf = np.log(BIS)[None, :]
    w = np.ones_like(logf)
    _, _, jac = _model(logf, p, True, w)
    assert jac is not None
    for k in range(4):
        h = np.zeros_like(p)
        h[0, k] = 1e-6 * max(1.0, abs(p[0, k]))
        zr1, zi1, _ = _model(logf, p + h, False)
        zr0, zi0, _ = _model(logf, p - h, False)
        num = np.concatenate([zr1 - zr0, zi1 - zi0], -1) / (2 * h[0, k])
        assert jac[0, k] == pytest.approx(num[0], rel=1e-5, abs=1e-7)


def test_what_cannot_be_fitted_is_flagged_not_returned() -> None:
    z = cole_impedance(BIS, 600.0, 400.0, 0.7, 50e3)
    two = z.copy()
    two[2:] = np.nan
    rising = z[::-1].copy()  # resistance rising with frequency
    fit = fit_cole(BIS, np.stack([z, two, rising]))
    assert list(fit.grade) == ["good", "failed", "failed"]
    assert fit.flags[1] & FLAG_TOO_FEW_POINTS and fit.flags[2] & FLAG_NON_MONOTONIC
    assert np.isnan(fit.r0[1:]).all() and np.isnan(fit.alpha[1:]).all()
    assert fit.status_text()[1] == "fewer than 3 frequencies measured"
    assert fit.status_text()[0] == "ok"


def test_high_frequency_hook_is_detected_and_left_out() -> None:
    # stray capacitance in parallel with the body: Z' = Z / (1 + jωC·Z), 30 pF
    z = cole_impedance(BIS, 600.0, 400.0, 0.7, 50e3)
    hooked = z / (1 + 1j * 2 * np.pi * BIS * 30e-12 * z)
    y = -hooked.imag
    assert y[-1] > y[np.argmax(y) :].min() + 2  # the curve does turn up
    fit = fit_cole(BIS, hooked)
    assert fit.flags & FLAG_HOOK
    assert fit.grade != "failed" and fit.n_points < len(BIS)
    assert fit.r0 == pytest.approx(600.0, rel=0.05)


def test_no_frequencies_at_all_is_a_failed_fit_not_an_error() -> None:
    fit = fit_cole(np.empty(0), np.empty((2, 0), dtype=complex))
    assert fit.grade.tolist() == ["failed", "failed"] and np.isnan(fit.r0).all()


def _robust_sd(a: np.ndarray) -> np.ndarray:
    q75, q25 = np.nanpercentile(a, [75, 25], axis=0)
    return np.asarray((q75 - q25) / 1.349)


@pytest.mark.parametrize(
    "freqs",
    [
        np.array([5e3, 50e3, 250e3]),  # MC-780: the exact three-point circle
        np.array([1e3, 5e3, 50e3, 250e3, 500e3, 1e6]),  # MC-980
        np.geomspace(3e3, 1e6, 30),  # a BIS sweep
    ],
    ids=["3 points", "6 points", "30 points"],
)
def test_the_delta_method_interval_matches_a_monte_carlo_reference(freqs) -> None:
    """cov of (R0, R∞, α, ln fc) from the stated 1 % uncertainty agrees with the spread
    of fits to 3000 spectra with that noise (robust SD: hook false alarms aside)."""
    rng = np.random.default_rng(7)
    z0 = cole_impedance(freqs, 600.0, 400.0, 0.7, 40e3)
    sigma = 0.01 * np.abs(z0)
    delta = fit_cole(freqs, z0[None, :], sigma=sigma)
    noise = rng.normal(size=(2, 3000, freqs.size)) * sigma
    mc = fit_cole(freqs, z0 + noise[0] + 1j * noise[1], sigma=sigma)
    usable = np.isin(mc.grade, ("good", "fair"))
    assert usable.mean() > 0.98
    got = np.array([float(delta.sd(k)[0]) for k in range(4)])
    params = np.stack([mc.r0, mc.rinf, mc.alpha, np.log(mc.fc_hz)], -1)[usable]
    ref = _robust_sd(params)
    assert got == pytest.approx(ref, rel=0.12)
    assert (got > 0).all()


def test_an_exact_three_point_fit_gets_a_wide_interval_not_a_zero_one() -> None:
    z3 = cole_impedance(np.array([5e3, 50e3, 250e3]), 600.0, 400.0, 0.7, 40e3)
    f6 = np.array([1e3, 5e3, 50e3, 250e3, 500e3, 1e6])
    z6 = cole_impedance(f6, 600.0, 400.0, 0.7, 40e3)
    three = fit_cole([5e3, 50e3, 250e3], z3, sigma=0.01 * np.abs(z3))
    six = fit_cole(f6, z6, sigma=0.01 * np.abs(z6))
    assert three.grade == "fair" and three.rel_rms < 1e-9  # the arc passes through all three
    assert float(three.sd(1)) > 2 * float(six.sd(1)) > 0  # R∞: extrapolated from three points
    assert fit_cole(f6, z6).cov is None  # no stated uncertainty: no interval
