"""The Cole model and a vectorised algebraic circle fit.

Cole model (Cole 1940; notation of PHYSIOLOGY.md, checked algebraically [D]):
Z(ω) = R∞ + (R0 − R∞) / (1 + (jωτ)^α), ω = 2πf, fc = 1/(2πτ), 0 < α ≤ 1.
In the (R, −X) plane the locus is a circular arc whose centre lies below the
R axis; R0 and R∞ are where the circle crosses the axis, and
α = 1 − (2/π)·atan(−y0 / √(r² − y0²)).

The circle is found with the algebraic (Kåsa 1976) least-squares fit, which is
exact through three points (the MC-780 case: 5/50/250 kHz) and a fast start for
iterative fits on longer spectra. Everything broadcasts over leading axes:
``r`` and ``x`` have shape (..., F) with NaN where a frequency is missing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]

#: status codes of a fit, one per spectrum
FIT_OK = 0
FIT_TOO_FEW_POINTS = 1
FIT_NON_MONOTONIC = 2
FIT_NO_ARC = 3  # the points do not lie on a depressed semicircle (hook, noise)

FIT_STATUS_TEXT = {
    FIT_OK: "ok",
    FIT_TOO_FEW_POINTS: "fewer than 3 frequencies measured",
    FIT_NON_MONOTONIC: "resistance does not fall with frequency",
    FIT_NO_ARC: "points do not form a Cole arc (hook or noise)",
}


def cole_impedance(
    freq_hz: npt.ArrayLike,
    r0: npt.ArrayLike,
    rinf: npt.ArrayLike,
    alpha: npt.ArrayLike,
    fc_hz: npt.ArrayLike,
) -> npt.NDArray[np.complex128]:
    """Complex impedance Z = R + jX of the Cole model (X ≤ 0), broadcasting."""
    f = np.asarray(freq_hz, dtype=float)
    r0_ = np.asarray(r0, dtype=float)
    rinf_ = np.asarray(rinf, dtype=float)
    a = np.asarray(alpha, dtype=float)
    fc = np.asarray(fc_hz, dtype=float)
    jwt = (1j * (f / fc)) ** a  # (jωτ)^α with ωτ = f/fc
    return rinf_ + (r0_ - rinf_) / (1.0 + jwt)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class CircleFit:
    """Result of :func:`circle_fit`: arrays of the spectra's leading shape."""

    r0: Array
    rinf: Array
    alpha: Array
    fc_hz: Array
    rms_ohm: Array  # RMS distance of the points from the circle
    status: npt.NDArray[np.int8]


def circle_fit(
    freq_hz: npt.ArrayLike, r: npt.ArrayLike, x: npt.ArrayLike, *, check_monotonic: bool = True
) -> CircleFit:
    """Fit a Cole arc to each spectrum by the algebraic (Kåsa) circle fit.

    ``freq_hz`` has shape (F,) or broadcasts with ``r``/``x`` of shape (..., F);
    NaN marks a missing point. Spectra with fewer than three points, with
    resistance rising with frequency, or whose circle does not cross the R axis
    twice get NaN parameters and a non-zero ``status``. ``check_monotonic=False``
    skips the strict monotonicity test (noisy spectra, used as a start for
    :func:`bia_acq.core.fit.fit_cole`, which tests with a noise allowance).
    """
    r_ = np.asarray(r, dtype=float)
    y_ = -np.asarray(x, dtype=float)  # work in the (R, −X) plane
    f = np.broadcast_to(np.asarray(freq_hz, dtype=float), r_.shape)
    ok = np.isfinite(r_) & np.isfinite(y_)
    n = ok.sum(axis=-1)
    w = ok.astype(float)
    rr = np.where(ok, r_, 0.0)
    yy = np.where(ok, y_, 0.0)
    # centre the data for conditioning
    cnt = np.maximum(n, 1)
    mr = rr.sum(-1) / cnt
    my = yy.sum(-1) / cnt
    u = (rr - mr[..., None]) * w
    v = (yy - my[..., None]) * w
    z = u * u + v * v
    # normal equations of  u² + v² + D u + E v + F = 0
    suu, svv, suv = (u * u).sum(-1), (v * v).sum(-1), (u * v).sum(-1)
    su, sv = u.sum(-1), v.sum(-1)
    szu, szv, sz = (z * u).sum(-1), (z * v).sum(-1), z.sum(-1)
    a = np.stack(
        [
            np.stack([suu, suv, su], -1),
            np.stack([suv, svv, sv], -1),
            np.stack([su, sv, n.astype(float)], -1),
        ],
        -2,
    )
    b = -np.stack([szu, szv, sz], -1)
    det = np.linalg.det(a)
    good = (
        (n >= 3)
        & np.isfinite(det)
        & (np.abs(det) > 1e-12 * (np.abs(a).max((-1, -2)) ** 3 + 1e-300))
    )
    a_safe = np.where(good[..., None, None], a, np.eye(3))
    sol = np.linalg.solve(a_safe, b[..., None])[..., 0]
    d, e, fterm = sol[..., 0], sol[..., 1], sol[..., 2]
    cu, cv = -d / 2, -e / 2
    rad2 = cu * cu + cv * cv - fterm
    x0 = cu + mr
    y0 = cv + my
    half2 = rad2 - y0 * y0
    with np.errstate(invalid="ignore", divide="ignore"):
        half = np.sqrt(half2)
        r0 = x0 + half
        rinf = x0 - half
        alpha = 1.0 - (2.0 / np.pi) * np.arctan2(-y0, half)
        # residual: distance of points from the circle (np.hypot is ten times slower)
        du, dv = r_ - x0[..., None], y_ - y0[..., None]
        dist = np.sqrt(du * du + dv * dv) - np.sqrt(rad2)[..., None]
        rms = np.sqrt(np.where(ok, dist * dist, 0.0).sum(-1) / cnt)
        # characteristic frequency: (ωτ)^α = |(R0 − Z)/(Z − R∞)| at each point
        # (squared moduli in real arithmetic: ln ratio = ½ ln(|R0 − Z|²/|Z − R∞|²))
        y2 = y_ * y_
        ratio2 = ((r0[..., None] - r_) ** 2 + y2) / ((r_ - rinf[..., None]) ** 2 + y2)
        log_tau = 0.5 * np.log(ratio2) / alpha[..., None] - np.log(2 * np.pi * f)
        use = ok & np.isfinite(log_tau)
        mean_log_tau = np.where(use, log_tau, 0.0).sum(-1) / np.maximum(use.sum(-1), 1)
        fc = np.where(use.any(-1), 1.0 / (2 * np.pi * np.exp(mean_log_tau)), np.nan)
    status = np.full(r_.shape[:-1], FIT_OK, dtype=np.int8)
    no_arc = ~good | ~(half2 > 0) | ~(rinf > 0) | ~(alpha > 0) | ~(alpha <= 1 + 1e-9)
    status = np.where(no_arc, FIT_NO_ARC, status)
    if check_monotonic:  # resistance must fall with frequency (sorted by frequency)
        order = np.argsort(f, axis=-1)
        rs = np.take_along_axis(np.where(ok, r_, np.nan), order, -1)
        diffs = np.diff(rs, axis=-1)
        rising = np.nansum(np.where(np.isfinite(diffs), diffs > 0, False), -1) > 0
        status = np.where(rising, FIT_NON_MONOTONIC, status)
    status = np.where(n < 3, FIT_TOO_FEW_POINTS, status).astype(np.int8)
    bad = status != FIT_OK
    nan = np.nan
    return CircleFit(
        r0=np.where(bad, nan, r0),
        rinf=np.where(bad, nan, rinf),
        alpha=np.where(bad, nan, np.minimum(alpha, 1.0)),
        fc_hz=np.where(bad, nan, fc),
        rms_ohm=np.where(bad, nan, rms),
        status=status,
    )
