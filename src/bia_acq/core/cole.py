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
from typing import NamedTuple

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


class Arc(NamedTuple):
    """The circle of :func:`arc_parameters` and the Cole arc read off it, per spectrum."""

    x0: Array  # centre in the (R, −X) plane
    y0: Array
    rad2: Array  # squared radius
    half2: Array  # ((R0 − R∞)/2)²: positive where the circle crosses the R axis
    r0: Array
    rinf: Array
    alpha: Array
    fc_hz: Array
    solved: npt.NDArray[np.bool_]  # at least three points and a well-conditioned system


def arc_parameters(f: Array, r: Array, y: Array, ok: npt.NDArray[np.bool_]) -> Arc:
    """The Kåsa circle through the points ``ok`` of (R, −X) = (``r``, ``y``), (..., F),
    and R0, R∞, α, fc of the arc on it (NaN where there is none).

    Least squares of u² + v² + D·u + E·v + F = 0 on the centred points: a
    symmetric 3×3 system per spectrum, solved in closed form (adjugate and
    determinant, all spectra at once). fc: (ωτ)^α = |(R0 − Z)/(Z − R∞)| at each
    point, averaged as ln τ over the points.
    """
    n = ok.sum(axis=-1)
    full = bool(ok.all())  # every point measured: no masking (the same values, faster)
    rr = r if full else np.where(ok, r, 0.0)
    yy = y if full else np.where(ok, y, 0.0)
    # centre the data for conditioning
    cnt = np.maximum(n, 1)
    mr = rr.sum(-1) / cnt
    my = yy.sum(-1) / cnt
    u = rr - mr[..., None]
    v = yy - my[..., None]
    if not full:
        u *= ok
        v *= ok
    z = u * u + v * v

    def dot(a: Array, b: Array) -> Array:
        out: Array = np.einsum("...f,...f->...", a, b)  # Σ a·b without a temporary
        return out

    # normal equations of  u² + v² + D u + E v + F = 0
    suu, svv, suv = dot(u, u), dot(v, v), dot(u, v)
    su, sv, sn = u.sum(-1), v.sum(-1), n.astype(float)
    b0, b1, b2 = -dot(z, u), -dot(z, v), -z.sum(-1)
    # adjugate of the symmetric matrix [[suu, suv, su], [suv, svv, sv], [su, sv, sn]]
    c00, c01, c02 = svv * sn - sv * sv, su * sv - suv * sn, suv * sv - svv * su
    c11, c12, c22 = suu * sn - su * su, suv * su - suu * sv, suu * svv - suv * suv
    det = suu * c00 + suv * c01 + su * c02
    big = np.maximum.reduce([np.abs(suu), np.abs(svv), np.abs(suv), np.abs(su), np.abs(sv), sn])
    solved = (n >= 3) & np.isfinite(det) & (np.abs(det) > 1e-12 * (big**3 + 1e-300))
    with np.errstate(invalid="ignore", divide="ignore"):
        inv = np.where(solved, 1.0 / np.where(solved, det, 1.0), np.nan)
        cu = -0.5 * (c00 * b0 + c01 * b1 + c02 * b2) * inv  # −D/2
        cv = -0.5 * (c01 * b0 + c11 * b1 + c12 * b2) * inv  # −E/2
        fterm = (c02 * b0 + c12 * b1 + c22 * b2) * inv
        rad2 = cu * cu + cv * cv - fterm
        x0 = cu + mr
        y0 = cv + my
        half2 = rad2 - y0 * y0
        half = np.sqrt(half2)
        r0 = x0 + half
        rinf = x0 - half
        alpha = 1.0 - (2.0 / np.pi) * np.arctan2(-y0, half)
        # characteristic frequency: (ωτ)^α = |(R0 − Z)/(Z − R∞)| at each point
        # (squared moduli in real arithmetic: ln ratio = ½ ln(|R0 − Z|²/|Z − R∞|²))
        y2 = y * y
        ratio2 = ((r0[..., None] - r) ** 2 + y2) / ((r - rinf[..., None]) ** 2 + y2)
        # ln ω: once where every spectrum has the same frequencies (f repeats one row)
        one = f.ndim == 2 and f.shape[0] > 0 and f.strides[0] == 0
        log_w = np.log(2 * np.pi * (f[:1] if one else f))
        log_tau = 0.5 * np.log(ratio2) / alpha[..., None] - log_w
        use = ok & np.isfinite(log_tau)
        all_use = bool(use.all())
        summed = (log_tau if all_use else np.where(use, log_tau, 0.0)).sum(-1)
        mean_log_tau = summed / np.maximum(use.sum(-1), 1)
        fc = np.where(use.any(-1), 1.0 / (2 * np.pi * np.exp(mean_log_tau)), np.nan)
    return Arc(x0, y0, rad2, half2, r0, rinf, alpha, fc, solved)


def circle_fit(
    freq_hz: npt.ArrayLike, r: npt.ArrayLike, x: npt.ArrayLike, *, check_monotonic: bool = True
) -> CircleFit:
    """Fit a Cole arc to each spectrum by the algebraic (Kåsa) circle fit.

    ``freq_hz`` has shape (F,) or broadcasts with ``r``/``x`` of shape (..., F);
    NaN marks a missing point. Spectra with fewer than three points, with
    resistance rising with frequency, or whose circle does not cross the R axis
    twice get NaN parameters and a non-zero ``status``. ``check_monotonic=False``
    skips the strict monotonicity test (noisy spectra). The circle and the arc:
    :func:`arc_parameters`.
    """
    r_ = np.asarray(r, dtype=float)
    y_ = -np.asarray(x, dtype=float)  # work in the (R, −X) plane
    f = np.broadcast_to(np.asarray(freq_hz, dtype=float), r_.shape)
    ok = np.isfinite(r_) & np.isfinite(y_)
    n = ok.sum(axis=-1)
    cnt = np.maximum(n, 1)
    arc = arc_parameters(f, r_, y_, ok)
    r0, rinf, alpha = arc.r0, arc.rinf, arc.alpha
    with np.errstate(invalid="ignore"):
        # residual: distance of points from the circle (np.hypot is ten times slower)
        du, dv = r_ - arc.x0[..., None], y_ - arc.y0[..., None]
        dist = np.sqrt(du * du + dv * dv) - np.sqrt(arc.rad2)[..., None]
        rms = np.sqrt(np.where(ok, dist * dist, 0.0).sum(-1) / cnt)
    status = np.full(r_.shape[:-1], FIT_OK, dtype=np.int8)
    no_arc = ~arc.solved | ~(arc.half2 > 0) | ~(rinf > 0) | ~(alpha > 0) | ~(alpha <= 1 + 1e-9)
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
        fc_hz=np.where(bad, nan, arc.fc_hz),
        rms_ohm=np.where(bad, nan, rms),
        status=status,
    )
