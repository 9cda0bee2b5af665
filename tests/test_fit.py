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
    _cole,
    _normal_equations,
    _residuals,
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


@pytest.mark.parametrize("magnitude", [False, True], ids=["complex", "magnitude"])
def test_normal_equations_match_a_finite_difference_jacobian(magnitude: bool) -> None:
    """JᵀWJ, JᵀWε and Jᵀ Σ⁻¹ J as the solver forms them (from sums of per-point
    quantities, no Jacobian) equal the products of a central-difference Jacobian of
    the model, with uneven weights and a point left out (W = 0)."""
    rng = np.random.default_rng(5)
    p = np.array([[600.0, 380.0, 0.72, np.log(60e3)], [450.0, 300.0, 0.6, np.log(30e3)]])
    logf = np.broadcast_to(np.log(BIS), (2, BIS.size))
    z = cole_impedance(BIS, 610.0, 370.0, 0.7, 55e3) * (1 + 0.01 * rng.normal(size=(2, BIS.size)))
    mr, mi = (np.abs(z), np.zeros(z.shape)) if magnitude else (z.real, z.imag)
    ww = rng.uniform(0.5, 2.0, z.shape) / np.abs(z) ** 2
    ww[:, 7] = 0.0
    ww_sig = rng.uniform(0.5, 2.0, z.shape) / np.abs(z) ** 2

    def values(q: np.ndarray) -> np.ndarray:  # the residual vector: R and X, or |Z|
        zr, zi, _ = _cole(logf, q)
        return np.hypot(zr, zi) if magnitude else np.concatenate([zr, zi], -1)

    jac = np.empty((2, 4, values(p).shape[-1]))
    for k in range(4):
        h = np.zeros_like(p)
        h[:, k] = 1e-6 * np.maximum(1.0, np.abs(p[:, k]))
        jac[:, k] = (values(p + h) - values(p - h)) / (2 * h[:, k : k + 1])
    zr, zi, parts = _cole(logf, p)
    er, ei, cost = _residuals(zr, zi, mr, mi, ww, magnitude)
    a, b, a_sig = (  # entry-major: (4, 4, m) and (4, m)
        np.moveaxis(x, -1, 0)
        for x in _normal_equations(parts, zr, zi, ww, (er, ei), magnitude, ww_sig=ww_sig)
    )
    w2 = ww if magnitude else np.concatenate([ww, ww], -1)
    ws2 = ww_sig if magnitude else np.concatenate([ww_sig, ww_sig], -1)
    eps = values(p) - (mr if magnitude else np.concatenate([mr, mi], -1))
    assert cost == pytest.approx((w2 * eps**2).sum(-1), rel=1e-12)
    assert a == pytest.approx(np.einsum("nkf,nlf,nf->nkl", jac, jac, w2), rel=1e-6, abs=1e-9)
    assert b == pytest.approx(np.einsum("nkf,nf,nf->nk", jac, eps, w2), rel=1e-6, abs=1e-9)
    assert a_sig == pytest.approx(np.einsum("nkf,nlf,nf->nkl", jac, jac, ws2), rel=1e-6, abs=1e-9)


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


def _same(a: object, b: object) -> bool:
    """Bit-identical arrays (NaN where NaN), or equal values."""
    if isinstance(a, np.ndarray) and a.dtype.kind == "f":
        return bool(np.array_equal(a, np.asarray(b), equal_nan=True))
    if isinstance(a, np.ndarray):
        return bool(np.array_equal(a, np.asarray(b)))
    return a == b


def test_a_fit_depends_only_on_its_own_spectrum() -> None:
    """The same spectra fitted all at once (more than one of fit_cole's blocks), in
    batches of 5 and one by one give identical arrays, intervals included:
    complete and gapped sweeps, six points with a delay and contact effects (poor
    fits, some at the iteration limit), exact three-point arcs (in Fortran order, as
    selecting columns leaves them: a layout must not change a sum), magnitude-only."""
    rng = np.random.default_rng(11)
    n = 1600
    r0 = rng.uniform(300, 1100, n)
    cole = cole_impedance(BIS, r0[:, None], (r0 / 1.8)[:, None], 0.7, 50e3)
    z = cole * (1 + 0.003 * (rng.normal(size=cole.shape) + 1j * rng.normal(size=cole.shape)))
    z[1400:1500][rng.random((100, BIS.size)) < 0.3] = np.nan  # gapped
    six = [0, 12, 20, 32, 40, 49]  # ~3 kHz to 1 MHz; a delay and contact effects
    z6 = z[:100, six] * np.exp(-2j * np.pi * BIS[six] * rng.uniform(0, 3e-7, (100, 1)))
    z6 = z6 + rng.uniform(0, 30, (100, 1)) / (1 + 1j * BIS[six] / 5e3)
    sets = [
        (BIS, z[:1500]),  # 1310 spectra of 50 points make a block
        (BIS[six], z6),
        (BIS[[10, 25, 35]], z[1500:, [10, 25, 35]].round(1)),
        (BIS, np.abs(z[:100])),
    ]
    for f, zz in sets:
        sig = 0.005 * np.abs(zz)
        whole = fit_cole(f, zz, sigma=sig)
        for size, upto in ((5, len(zz)), (1, 100)):
            parts = [
                fit_cole(f, zz[s : s + size], sigma=sig[s : s + size]) for s in range(0, upto, size)
            ]
            for name in ("r0", "rinf", "alpha", "fc_hz", "rel_rms", "iterations", "flags", "cov"):
                got = np.concatenate([getattr(p, name) for p in parts])
                assert _same(getattr(whole, name)[:upto], got), (f.size, size, name)
    assert (fit_cole(BIS[six], z6).iterations == 30).any()  # the iteration limit is reached


def test_estimates_depend_only_on_their_own_measurement() -> None:
    """hanai-bis through ``estimate`` on simulated MC-780 (trunk derived from the
    hand-to-foot paths) and MC-980 readings: batches of 1, 5 and all at once give
    identical results, intervals included."""
    import dataclasses
    import datetime as dt

    from bia_acq.core.estimate import estimate
    from bia_acq.drivers import get_profile
    from bia_acq.simulator.population import Population, load_scenario

    now = dt.datetime(2026, 11, 2, 9, 30, tzinfo=dt.UTC)
    for profile, n in (("tanita-mc780", 30), ("tanita-mc980", 10)):
        rng = np.random.default_rng(3)
        pop = Population(load_scenario("healthy-adults"), get_profile(profile), rng)
        readings = [pop.next_measurement(now)[0] for _ in range(n)]
        whole = estimate(readings, "hanai-bis")
        for size in (1, 5):
            parts = [estimate(readings[s : s + size], "hanai-bis") for s in range(0, n, size)]
            for fld in dataclasses.fields(whole):
                a = getattr(whole, fld.name)
                if isinstance(a, np.ndarray):
                    got = np.concatenate([getattr(p, fld.name) for p in parts])
                    assert _same(a, got), (profile, size, fld.name)
