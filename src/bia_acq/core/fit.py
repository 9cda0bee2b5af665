"""Batched complex nonlinear least-squares fit of the Cole model.

:func:`fit_cole` fits R0, R∞, α and fc to every spectrum of a batch at once:
a Levenberg–Marquardt iteration (Marquardt 1963, diagonal scaling) with the
analytic Jacobian of the Cole model, on R and X jointly with modulus
weighting (each point's residual divided by its measured |Z|, the usual
weighting of complex nonlinear least squares for bioimpedance), started from
the algebraic circle fit of :mod:`bia_acq.core.cole`. The 4×4 normal
equations of all spectra are solved together, so a million spectra cost a
handful of array passes per iteration, not a million Python calls.

Parameters are bounded after every step: 0 < R∞ < R0, 0.05 ≤ α ≤ 1 and fc
within two decades of the measured band. Magnitude-only spectra (|Z| as a
real array) are fitted on |Z| alone, from a start read off the spectrum.

Nothing questionable is returned as a number. Each spectrum gets ``flags``
(a bit set, :data:`FLAG_TEXT`) and a ``grade``:

* ``good``: relative RMS residual ≤ 1 % and no warning flag;
* ``fair``: residual ≤ 3 %, or a warning flag (hook points dropped, barely
  determined, a parameter on its bound, not converged);
* ``poor``: residual above 3 %: parameters are returned, but estimation
  withholds volumes computed from them;
* ``failed``: too few points, resistance not falling with frequency, or no
  Cole arc: parameters are NaN.

A high-frequency "hook" (stray capacitance makes −X fall past the arc's
peak and rise again, or X turn positive, above the frequency of the largest
−X) is detected on the frequency-sorted spectrum, with an allowance for noise
estimated from the spectrum itself, and the points from its onset upwards are
left out of the fit. A hook so strong that −X is largest at the top of the
band is not recognised as one; it shows as a poor fit instead.

Derivatives (Cole model of PHYSIOLOGY.md, checked algebraically and against
finite differences in the tests [D]): with q = (j f/fc)^α, G = 1/(1 + q),
ΔR = R0 − R∞: ∂Z/∂R0 = G, ∂Z/∂R∞ = 1 − G, ∂Z/∂α = −ΔR·G²·q·(ln(f/fc) + jπ/2),
∂Z/∂ln fc = ΔR·G²·α·q.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bia_acq.core.cole import arc_parameters

Array = npt.NDArray[np.float64]

FLAG_TOO_FEW_POINTS = 1
FLAG_NON_MONOTONIC = 2
FLAG_HOOK = 4
FLAG_NO_ARC = 8
FLAG_NOT_CONVERGED = 16
FLAG_AT_BOUND = 32
FLAG_BARELY_DETERMINED = 64
FLAG_MAGNITUDE_ONLY = 128

#: flags that make a fit fail (parameters NaN)
FATAL = FLAG_TOO_FEW_POINTS | FLAG_NON_MONOTONIC | FLAG_NO_ARC
#: flags that cap the grade at "fair"
WARNING = FLAG_HOOK | FLAG_NOT_CONVERGED | FLAG_AT_BOUND | FLAG_BARELY_DETERMINED

FLAG_TEXT = {
    FLAG_TOO_FEW_POINTS: "fewer than 3 frequencies measured",
    FLAG_NON_MONOTONIC: "resistance does not fall with frequency",
    FLAG_HOOK: "high-frequency hook: points above its onset left out",
    FLAG_NO_ARC: "points do not form a Cole arc",
    FLAG_NOT_CONVERGED: "fit did not converge",
    FLAG_AT_BOUND: "a parameter is on its bound",
    FLAG_BARELY_DETERMINED: "barely determined (four parameters from very few points)",
    FLAG_MAGNITUDE_ONLY: "magnitude-only spectrum",
}

GOOD_REL_RMS = 0.01
FAIR_REL_RMS = 0.03
ALPHA_MIN = 0.05
#: fc may lie this many decades outside the measured band
FC_DECADES = 2.0
#: a hook: past the arc's peak −X falls and rises again by this fraction of its
#: height (plus a noise allowance)
HOOK_TOL = 0.03
#: non-monotonic: R rises between neighbouring frequencies by more than
#: this fraction of its range plus this fraction of its level (noise allowance)
MONOTONE_TOL_RANGE = 0.1
MONOTONE_TOL_LEVEL = 0.01
#: converged when an accepted step moves R0 and R∞ by less than this fraction
#: and α and ln fc by less than this (absolute)
STEP_TOL = 1e-5
#: a row whose accepted step was below this many STEP_TOL is probably at its optimum:
#: the solver then builds the interval's normal matrix from the Jacobian it builds anyway
#: (speed only: the matrix is used only where p did not move after it)
SHARE_STEPS = 100.0


def describe_flags(flags: int) -> str:
    """The flags of one spectrum as text ('' for none)."""
    return "; ".join(t for bit, t in FLAG_TEXT.items() if flags & bit)


@dataclass(frozen=True)
class ColeFit:
    """Result of :func:`fit_cole`: arrays of the spectra's leading shape."""

    r0: Array
    rinf: Array
    alpha: Array
    fc_hz: Array
    rms_ohm: Array  # RMS of |Z_model − Z| over the fitted points
    rel_rms: Array  # RMS of |Z_model − Z| / |Z|
    n_points: npt.NDArray[np.int64]  # points used (after dropping a hook)
    iterations: npt.NDArray[np.int64]
    flags: npt.NDArray[np.int64]
    grade: npt.NDArray[np.str_]
    #: covariance of (R0, R∞, α, ln fc), shape (..., 4, 4): propagated from the
    #: points' stated uncertainty (``sigma``); NaN where no fit or no uncertainty
    cov: Array | None = None

    def sd(self, k: int) -> Array:
        """Standard uncertainty of parameter ``k`` (0 R0, 1 R∞, 2 α, 3 ln fc); NaN without cov."""
        if self.cov is None:
            return np.full(self.r0.shape, np.nan)
        return np.sqrt(np.maximum(self.cov[..., k, k], 0.0))

    def status_text(self) -> npt.NDArray[np.str_]:
        """Per spectrum: 'ok' for good and fair fits, else the grade and the reasons."""
        out = np.where(np.isin(self.grade, ("good", "fair")), "ok", "").astype(object)
        for idx in zip(*np.nonzero(out == ""), strict=True):
            flags = int(self.flags[idx])
            if self.grade[idx] == "poor":
                out[idx] = f"poor fit (relative residual {float(self.rel_rms[idx]):.1%})"
            elif flags & FLAG_TOO_FEW_POINTS and flags & FLAG_MAGNITUDE_ONLY:
                out[idx] = "fewer than 4 frequencies measured (|Z| only)"
            else:
                out[idx] = describe_flags(flags & ~FLAG_MAGNITUDE_ONLY)
        return np.asarray(out, dtype=str)


def _model(
    logf: Array, p: Array, need_jac: bool, w: Array | None = None
) -> tuple[Array, Array, Array | None]:
    """Cole R and X (n, F) at ln f and, if asked, the weighted Jacobian (n, 4, 2F).

    The solver itself calls :func:`_cole` and :func:`_jacobian` separately, so
    that a Jacobian is built only where the next step needs it.
    """
    zr, zi, parts = _cole(logf, p)
    if not need_jac:
        return zr, zi, None
    assert w is not None
    return zr, zi, _jacobian(parts, w)


#: what :func:`_jacobian` is built from: G's real and imaginary parts and ln(f/fc)
#: (n, F); ΔR and α (n, 1)
_Parts = tuple[Array, Array, Array, Array, Array]


def _cole(logf: Array, p: Array) -> tuple[Array, Array, _Parts]:
    """Cole R and X (n, F) at ln f for parameters p (n, 4), and their intermediates.

    Real arithmetic throughout (faster than complex): with u = (f/fc)^α,
    c = cos(απ/2), s = sin(απ/2), D = 1 + 2uc + u², G = ((1 + uc) − j·us)/D.
    """
    r0, rinf, alpha, lfc = p[:, 0:1], p[:, 1:2], p[:, 2:3], p[:, 3:4]
    lr = logf - lfc  # ln(f/fc)
    u = np.exp(alpha * lr)
    half = alpha * (np.pi / 2)
    c, s = np.cos(half), np.sin(half)
    uc, us = u * c, u * s
    inv_d = 1.0 / (1.0 + 2.0 * uc + u * u)
    gr = (1.0 + uc) * inv_d
    gi = -us * inv_d
    dr = r0 - rinf
    return rinf + dr * gr, dr * gi, (gr, gi, lr, dr, alpha)


def _jacobian(parts: _Parts, w: Array) -> Array:
    """The weighted Jacobian (n, 4, 2F) from :func:`_cole`'s intermediates.

    Rows are ∂/∂(R0, R∞, α, ln fc); columns the real parts then the imaginary
    parts of each point, multiplied by the weights ``w``.
    """
    gr, gi, lr, dr, alpha = parts
    n, nf = gr.shape
    a = np.empty((n, 4, 2 * nf))
    a0r = np.multiply(gr, w, out=a[:, 0, :nf])
    a0i = np.multiply(gi, w, out=a[:, 0, nf:])
    np.subtract(w, a0r, out=a[:, 1, :nf])
    np.negative(a0i, out=a[:, 1, nf:])
    # ΔR·G²·q = ΔR·G·(1 − G), since q·G = 1 − G (in place: fewer temporaries)
    t = dr * w
    dgr = gr * gr
    np.subtract(gr, dgr, out=dgr)
    dgr += gi * gi
    dgr *= t
    dgi = 1.0 - 2.0 * gr
    dgi *= gi
    dgi *= t
    hp = 0.5 * np.pi
    a2r, a2i = a[:, 2, :nf], a[:, 2, nf:]
    np.multiply(dgi, hp, out=a2r)
    a2r -= dgr * lr
    np.multiply(dgi, lr, out=a2i)
    a2i += dgr * hp
    np.negative(a2i, out=a2i)
    np.multiply(dgr, alpha, out=a[:, 3, :nf])
    np.multiply(dgi, alpha, out=a[:, 3, nf:])
    return a


def _errors(
    zr: Array, zi: Array, mr: Array, mi: Array, w: Array, magnitude: bool
) -> tuple[Array, Array]:
    """Weighted residuals e and the cost Σe² (n,) of each spectrum.

    Complex spectra: e = (Z_model − Z)·w, real parts then imaginary parts
    (n, 2F). Magnitude-only (``mr`` holds |Z|): e = (|Z_model| − |Z|)·w (n, F).
    """
    if magnitude:
        e = (np.sqrt(zr * zr + zi * zi) - mr) * w
    else:
        nf = zr.shape[1]
        e = np.empty((zr.shape[0], 2 * nf))
        np.multiply(zr - mr, w, out=e[:, :nf])
        np.multiply(zi - mi, w, out=e[:, nf:])
    return e, np.einsum("nf,nf->n", e, e)


#: rows per piece of the Jacobian in :func:`_normal_equations`: a (rows, 4, 2F)
#: piece stays in the core's cache between being built and being multiplied
JAC_ROWS = 256


def _normal_equations(
    parts: _Parts,
    w: Array,
    e: Array | None,
    zr: Array,
    zi: Array,
    magnitude: bool,
    idx: npt.NDArray[np.intp] | None = None,
    rho: Array | None = None,
    also: npt.NDArray[np.bool_] | None = None,
) -> tuple[Array, Array | None, Array | None]:
    """JᵀJ (m, 4, 4) and, given e, Jᵀe (m, 4) for the rows ``idx`` (all if None)
    of the weighted Jacobian (:func:`_jacobian`), built and multiplied piece by
    piece (JAC_ROWS rows), so that no full Jacobian is ever written to memory.
    Magnitude-only spectra: the Jacobian of |Z| is Re(conj(Z)·∂Z)/|Z|.

    Given ``rho`` (per row and residual, the interval's weight over the fit's,
    w_σ/w) also (J·ρ)(J·ρ)ᵀ = Jᵀ Σ⁻¹ J, the interval's normal matrix from the
    same Jacobian, for the selected rows where ``also`` (m,) holds (NaN elsewhere).
    """
    m = parts[0].shape[0] if idx is None else idx.size
    jtj = np.empty((m, 4, 4))
    jte = None if e is None else np.empty((m, 4))
    a_rho = None if rho is None or also is None else np.full((m, 4, 4), np.nan)
    for s in range(0, m, JAC_ROWS):
        out = slice(s, min(m, s + JAC_ROWS))
        k = out if idx is None else idx[out]
        jac = _jacobian(tuple(x[k] for x in parts), w[k])  # type: ignore[arg-type]
        if magnitude:
            nf = zr.shape[1]
            mod = np.sqrt(zr[k] * zr[k] + zi[k] * zi[k])
            jac = (
                jac[:, :, :nf] * (zr[k] / mod)[:, None, :]
                + jac[:, :, nf:] * (zi[k] / mod)[:, None, :]
            )
        jtj[out] = np.matmul(jac, jac.transpose(0, 2, 1))
        if jte is not None and e is not None:
            jte[out] = np.matmul(jac, e[k][..., None])[..., 0]
        if a_rho is not None and rho is not None and also is not None:
            sub = np.nonzero(also[out])[0]
            if sub.size:
                jr = jac[sub] * rho[k][sub][:, None, :]
                a_rho[s + sub] = np.matmul(jr, jr.transpose(0, 2, 1))
    return jtj, jte, a_rho


def _project(p: Array, lfc_lo: Array, lfc_hi: Array) -> tuple[Array, npt.NDArray[np.bool_]]:
    """Clip parameters into the bounds; also return which hit a bound."""
    q = p.copy()
    q[:, 0] = np.maximum(q[:, 0], 1e-6)
    q[:, 1] = np.clip(q[:, 1], 1e-4 * q[:, 0], q[:, 0] * (1 - 1e-6))
    q[:, 2] = np.clip(q[:, 2], ALPHA_MIN, 1.0)
    q[:, 3] = np.clip(q[:, 3], lfc_lo, lfc_hi)
    at = (
        (q[:, 2] <= ALPHA_MIN)
        | (q[:, 2] >= 1.0 - 1e-9)
        | (q[:, 3] <= lfc_lo + 1e-9)
        | (q[:, 3] >= lfc_hi - 1e-9)
        | (q[:, 1] <= 1e-4 * q[:, 0] * (1 + 1e-9))
    )
    return q, at


def _lm(
    logf: Array,
    mr: Array,
    mi: Array,
    w: Array,
    p0: Array,
    lfc_lo: Array,
    lfc_hi: Array,
    magnitude: bool,
    max_iter: int,
    tol: float,
    rho: Array | None = None,
) -> tuple[
    Array,
    Array,
    npt.NDArray[np.int64],
    npt.NDArray[np.bool_],
    npt.NDArray[np.bool_],
    Array,
    Array,
    Array | None,
]:
    """Levenberg–Marquardt on rows of (n, F) arrays.

    Returns p, the weighted residuals e at p (see :func:`_errors`), the
    iterations, whether each row converged, whether it ended on a bound, and
    G = 1/(1 + (j f/fc)^α) at p (real and imaginary parts: the interval's
    Jacobian is built from them without evaluating the model again), and,
    given ``rho`` (w_σ/w, see :func:`_normal_equations`), the interval's normal
    matrix Jᵀ Σ⁻¹ J at p where the solver already built the Jacobian at p
    (NaN elsewhere): a row that moved by less than SHARE_STEPS·STEP_TOL is
    probably at its optimum (its next step negligible), so when its Jacobian
    is built for that next step, the interval's matrix is taken from it too.

    Each round works only on the rows still active: it solves their damped 4×4
    normal equations together, evaluates the model at the trial points (values
    only) and accepts a trial where the cost did not rise. The Jacobian is then
    built only for accepted rows that go on iterating, so the round in which a
    spectrum converges costs one model evaluation, not a Jacobian and its
    normal equations. A row leaves the active set when its Gauss–Newton step is
    negligible (before spending an evaluation on it), when an accepted step
    gains less than ``tol`` of the cost or moves less than STEP_TOL, or when λ
    runs away.
    """
    n = p0.shape[0]
    p, at = _project(p0, lfc_lo, lfc_hi)
    zr, zi, parts = _cole(logf, p)
    e, cost = _errors(zr, zi, mr, mi, w, magnitude)
    jtj, jte, _ = _normal_equations(parts, w, e, zr, zi, magnitude)
    assert jte is not None
    gr, gi = parts[0], parts[1]  # G at p (updated with p below)
    a_sig = None if rho is None else np.full((n, 4, 4), np.nan)  # Jᵀ Σ⁻¹ J at p, where known
    lam = np.full(n, 1e-3)
    iters = np.zeros(n, dtype=np.int64)
    done = np.zeros(n, dtype=bool)
    eye = np.eye(4)
    active = np.arange(n)
    for _ in range(max_iter):
        if active.size == 0:
            break
        rows = _rows(active, n)
        a = jtj[rows]
        d = np.diagonal(a, axis1=1, axis2=2)
        damped = (
            a + (lam[rows, None] * d + 1e-12 * (d.max(-1, keepdims=True) + 1e-30))[:, :, None] * eye
        )
        rhs = -jte[rows]
        step = _solve_spd(damped, rhs)
        lost = ~np.isfinite(step).all(-1)  # Cholesky broke down (rare): LU for those
        if lost.any():
            try:
                step[lost] = np.linalg.solve(damped[lost], rhs[lost][..., None])[..., 0]
            except np.linalg.LinAlgError:  # pragma: no cover - singular despite damping
                step[lost] = 0.0
        step = np.where(np.isfinite(step), step, 0.0)
        # a Gauss–Newton step this small (undamped: λ small) means p is the optimum
        # to within STEP_TOL: stop without spending an evaluation on it
        pa = p[rows]
        scale = np.concatenate([np.abs(pa[:, :2]), np.ones((active.size, 2))], axis=1)
        settled = (np.abs(step) <= STEP_TOL * scale).all(-1) & (lam[rows] <= 1e-2)
        if settled.any():
            done[active[settled]] = True
            keep = ~settled
            active, step, scale, pa = active[keep], step[keep], scale[keep], pa[keep]
            if active.size == 0:
                break
            rows = _rows(active, n)
        trial, at_t = _project(pa + step, lfc_lo[rows], lfc_hi[rows])
        wa = w[rows]
        zr_t, zi_t, parts_t = _cole(logf[rows], trial)
        e_t, cost_t = _errors(zr_t, zi_t, mr[rows], mi[rows], wa, magnitude)
        old = cost[rows]
        better = np.isfinite(cost_t) & (cost_t <= old)
        tiny_step = (np.abs(trial - pa) <= STEP_TOL * scale).all(-1)
        small_gain = better & ((old - cost_t <= tol * (old + 1e-30)) | tiny_step)
        b = active[better]  # (``old`` and ``pa`` may be views: used up before this)
        if a_sig is not None:
            a_sig[b] = np.nan  # moved: the interval's matrix, if any, was of the old point
        if b.size == n:  # every row moved (the first round, as a rule): take the trial's arrays
            p, cost, e, at, gr, gi = trial, cost_t, e_t, at_t, parts_t[0], parts_t[1]
        else:
            p[b] = trial[better]
            cost[b] = cost_t[better]
            e[b] = e_t[better]
            at[b] = at_t[better]
            gr[b], gi[b] = parts_t[0][better], parts_t[1][better]
        lam[rows] = np.where(better, np.maximum(lam[rows] * 0.2, 1e-12), lam[rows] * 10.0)
        iters[rows] += 1
        finished = small_gain | (lam[rows] > 1e12)
        # moved and going on: the next step needs the Jacobian at the new point
        # (a rejected row keeps the one of the point it stays at)
        go_on = np.nonzero(better & ~finished)[0]
        if go_on.size:
            idx = None if go_on.size == active.size else go_on
            near: npt.NDArray[np.bool_] | None = None
            rho_a = None
            if a_sig is not None and rho is not None:  # the interval's matrix too, where near
                steps = np.abs(trial - pa) <= SHARE_STEPS * STEP_TOL * scale
                near, rho_a = np.asarray(steps.all(-1))[go_on], rho[rows]
            a_k, b_k, s_k = _normal_equations(
                parts_t, wa, e_t, zr_t, zi_t, magnitude, idx, rho_a, near
            )
            jtj[active[go_on]], jte[active[go_on]] = a_k, b_k
            if a_sig is not None and s_k is not None:
                a_sig[active[go_on]] = s_k
        done[active[finished]] = True
        active = active[~finished]
    return p, e, iters, done, at, gr, gi, a_sig


def _solve_spd(a: Array, b: Array) -> Array:
    """x with a·x = b for a stack (m, k, k) of symmetric positive definite ``a``, b (m, k)
    or, for several right-hand sides, (m, k, r).

    Cholesky a = L·Lᵀ unrolled over the k×k entries, each a contiguous vector
    over the stack: a few dozen array operations for k = 4 instead of m LAPACK
    calls, three times faster. Rows whose factorisation breaks down (not
    positive definite in floating point) come out NaN.
    """
    k = a.shape[-1]
    el = np.ascontiguousarray(np.moveaxis(a, 0, -1))  # (k, k, m): entry (i, j) over the stack
    rhs = np.ascontiguousarray(np.moveaxis(b, 0, -1))  # (k, m) or (k, r, m)
    if b.ndim == 3:  # each entry multiplies a row of b's right-hand sides
        el = el[:, :, None, :]
    low: list[list[Array]] = [[] for _ in range(k)]
    inv: list[Array] = []  # 1/L[i, i]
    y: list[Array] = []
    with np.errstate(invalid="ignore", divide="ignore"):
        for i in range(k):
            for j in range(i + 1):
                s = el[i, j] - sum((low[i][q] * low[j][q] for q in range(j)), 0.0)
                if i == j:
                    low[i].append(np.sqrt(s))
                    inv.append(1.0 / low[i][i])
                else:
                    low[i].append(s * inv[j])
            y.append((rhs[i] - sum((low[i][q] * y[q] for q in range(i)), 0.0)) * inv[i])
        x: list[Array] = [y[0]] * k
        for i in reversed(range(k)):  # Lᵀ·x = y
            x[i] = (y[i] - sum((low[q][i] * x[q] for q in range(i + 1, k)), 0.0)) * inv[i]
    return np.moveaxis(np.stack(x), -1, 0)


def _rows(idx: npt.NDArray[np.intp], n: int) -> npt.NDArray[np.intp] | slice:
    """Index of rows ``idx`` (sorted, unique) of an n-row array: a slice (views, no
    copies) while that is all of them."""
    return slice(None) if idx.size == n else idx


def _sorted_by_frequency(
    f: Array, z: npt.NDArray[np.complex128]
) -> tuple[Array, npt.NDArray[np.complex128]]:
    order = np.argsort(f, axis=-1, kind="stable")
    return np.take_along_axis(f, order, -1), np.take_along_axis(z, order, -1)


def fit_cole(
    freq_hz: npt.ArrayLike,
    z: npt.ArrayLike,
    *,
    max_iter: int = 30,
    tol: float = 1e-6,
    chunk: int | None = None,
    sigma: npt.ArrayLike | None = None,
) -> ColeFit:
    """Fit the Cole model to every spectrum of a batch.

    ``freq_hz`` has shape (F,) or broadcasts with ``z`` of shape (..., F):
    complex Z = R + jX (X negative), or real |Z| for magnitude-only
    spectra; NaN marks a missing point. Works from 3 points (complex; 4 for
    magnitude-only) to a few hundred. Returns arrays of the leading shape.

    ``sigma`` (broadcasts with ``z``) is each point's standard measurement
    uncertainty in Ω, of R and of X alike (of |Z| for magnitude spectra). With
    it, ``cov`` holds the covariance of (R0, R∞, α, ln fc) by the delta method
    (see :func:`_covariance`); without it ``cov`` is None.
    """
    z_in = np.asarray(z)
    magnitude = not np.iscomplexobj(z_in)
    if z_in.shape[-1] == 0:  # no frequencies at all: one missing point, flagged below
        z_in = np.full((*z_in.shape[:-1], 1), np.nan, dtype=z_in.dtype)
        freq_hz = np.ones(1)
        sigma = None if sigma is None else np.full(z_in.shape, np.nan)
    zc = z_in.astype(np.complex128, copy=False)  # never written to
    shape = zc.shape[:-1]
    nf = zc.shape[-1]
    f = np.broadcast_to(np.asarray(freq_hz, dtype=float), zc.shape).reshape(-1, nf)
    zc = zc.reshape(-1, nf)
    f1 = np.asarray(freq_hz, dtype=float)
    sig = (
        None
        if sigma is None
        else np.broadcast_to(np.asarray(sigma, dtype=float), (*shape, nf)).reshape(-1, nf)
    )
    f_row = None  # the frequencies, where all spectra share them
    if f1.ndim == 1 and f1.shape[0] == nf:  # one frequency list for all: sort once
        order = np.argsort(f1, kind="stable")
        f_row = f1[order]
        if (order != np.arange(nf)).any():  # not sorted already: sorted copies
            f, zc = np.broadcast_to(f_row, zc.shape), zc[:, order]
            if sig is not None:
                sig = sig[:, order]
    else:
        order2 = np.argsort(f, axis=-1, kind="stable")
        f, zc = np.take_along_axis(f, order2, -1), np.take_along_axis(zc, order2, -1)
        if sig is not None:
            sig = np.take_along_axis(sig, order2, -1)
    n = zc.shape[0]
    out = {k: np.full(n, np.nan) for k in ("r0", "rinf", "alpha", "fc_hz", "rms_ohm", "rel_rms")}
    npts = np.zeros(n, dtype=np.int64)
    iters = np.zeros(n, dtype=np.int64)
    flags = np.zeros(n, dtype=np.int64)
    cov = None if sig is None else np.full((n, 4, 4), np.nan)
    if chunk is None:  # keep a block's arrays in cache: about 64k points
        chunk = max(256, 65536 // max(nf, 1))
    for s in range(0, n, chunk):
        sl = slice(s, min(n, s + chunk))
        s_sl = None if sig is None else sig[sl]
        res = _fit_block(f[sl], zc[sl], magnitude, max_iter, tol, s_sl, f_row)
        if cov is not None:
            cov[sl] = res["cov"]
        for k in out:
            out[k][sl] = res[k]
        npts[sl], iters[sl], flags[sl] = res["n_points"], res["iterations"], res["flags"]
    grade = np.where(
        flags & FATAL,
        "failed",
        np.where(
            out["rel_rms"] > FAIR_REL_RMS,
            "poor",
            np.where((out["rel_rms"] > GOOD_REL_RMS) | (flags & WARNING > 0), "fair", "good"),
        ),
    )
    return ColeFit(
        r0=out["r0"].reshape(shape),
        rinf=out["rinf"].reshape(shape),
        alpha=out["alpha"].reshape(shape),
        fc_hz=out["fc_hz"].reshape(shape),
        rms_ohm=out["rms_ohm"].reshape(shape),
        rel_rms=out["rel_rms"].reshape(shape),
        n_points=npts.reshape(shape),
        iterations=iters.reshape(shape),
        flags=flags.reshape(shape),
        grade=grade.reshape(shape),
        cov=None if cov is None else cov.reshape(*shape, 4, 4),
    )


def _fit_block(
    f: Array,
    z: npt.NDArray[np.complex128],
    magnitude: bool,
    max_iter: int,
    tol: float,
    sig: Array | None = None,
    f_row: Array | None = None,
) -> dict[str, npt.NDArray[np.generic]]:
    n, nf = z.shape
    ok = np.isfinite(z) & np.isfinite(f) & (f > 0)  # complex z: finite R and X
    if magnitude:
        ok &= z.real > 0
    flags = np.zeros(n, dtype=np.int64)
    if magnitude:
        flags |= FLAG_MAGNITUDE_ONLY
    r = np.where(ok, z.real, np.nan)
    # -- hook: past the arc's peak, −X rises again (or X turns positive) --------
    if not magnitude:
        y = np.where(ok, -z.imag, np.nan)
        tol_y = _hook_tolerance(y)[:, None]
        yv = np.where(ok, y, -np.inf)
        peak = np.argmax(yv, axis=-1)  # the arc's top; a hook can only come above it
        ymax = np.take_along_axis(yv, peak[:, None], -1)
        above = np.arange(nf)[None, :] > peak[:, None]
        passed = np.logical_or.accumulate(ok & above & (ymax - y > tol_y), axis=-1)
        after = np.where(passed, y, np.inf)
        runmin = np.fmin.accumulate(after, axis=-1)
        prev_min = np.concatenate([np.full((n, 1), np.inf), runmin[:, :-1]], axis=-1)
        hook_at = ok & ((passed & (y - prev_min > tol_y)) | (above & (y < -tol_y)))
        has_hook = hook_at.any(-1)
        first = np.where(has_hook, np.argmax(hook_at, -1), nf)
        ok &= np.arange(nf)[None, :] < first[:, None]
        flags |= np.where(has_hook, FLAG_HOOK, 0)
        r = np.where(ok, r, np.nan)
    npts = ok.sum(-1)
    min_pts = 4 if magnitude else 3
    flags |= np.where(npts < min_pts, FLAG_TOO_FEW_POINTS, 0)
    barely = npts <= (5 if magnitude else 3)
    flags |= np.where(barely & (npts >= min_pts), FLAG_BARELY_DETERMINED, 0)
    # -- resistance (or |Z|) must fall with frequency ---------------------------
    rmax = np.fmax.reduce(r, axis=-1)  # (r is NaN where a point is left out)
    # largest rise of R over any lower frequency
    runmin_r = np.fmin.accumulate(r, axis=-1)
    rmin = runmin_r[:, -1]
    rise = np.where(ok, r - runmin_r, 0.0).max(-1)
    with np.errstate(invalid="ignore"):  # rows without points: flagged above
        non_mono = rise > MONOTONE_TOL_RANGE * (rmax - rmin) + MONOTONE_TOL_LEVEL * np.abs(rmax)
    flags |= np.where(non_mono & (npts >= min_pts), FLAG_NON_MONOTONIC, 0)
    try_fit = (flags & FATAL) == 0
    res: dict[str, npt.NDArray[np.generic]] = {
        k: np.full(n, np.nan) for k in ("r0", "rinf", "alpha", "fc_hz", "rms_ohm", "rel_rms")
    }
    res["n_points"] = npts
    res["iterations"] = np.zeros(n, dtype=np.int64)
    idx_fit = np.nonzero(try_fit)[0]
    if idx_fit.size:
        fit_rows = _rows(idx_fit, n)
        ff, zz, okk = f[fit_rows], z[fit_rows], ok[fit_rows]
        fmin = np.nanmin(np.where(okk, ff, np.inf), -1)
        fmax = np.nanmax(np.where(okk, ff, -np.inf), -1)
        lfc_lo = np.log(fmin) - FC_DECADES * np.log(10)
        lfc_hi = np.log(fmax) + FC_DECADES * np.log(10)
        p0, circle_ok = _start(ff, zz, okk, magnitude)
        zmeas = np.where(okk, zz, 0.0)
        mod = np.abs(zmeas)
        w = np.where(okk & (mod > 0), 1.0 / np.where(mod > 0, mod, 1.0), 0.0)
        if f_row is not None and okk.all():  # one ln f for all rows
            logf = np.broadcast_to(np.log(f_row), ff.shape)
        else:
            logf = np.log(np.where(okk, ff, 1.0))
        mr, mi = zmeas.real.copy(), zmeas.imag.copy()
        # three complex points: the arc through them is exact and determines R0, R∞
        # and α; a free four-parameter fit would trade the arc for fc (constrained
        # fallback, PHYSIOLOGY.md). Keep the circle fit there; iterate the rest.
        exact = circle_ok & (npts[idx_fit] == 3)
        m = idx_fit.size
        p = p0.copy()
        it = np.zeros(m, dtype=np.int64)
        conv = np.ones(m, dtype=bool)
        at = (p0[:, 2] >= 1.0 - 1e-9) | (p0[:, 2] <= ALPHA_MIN)
        e = np.zeros((m, nf if magnitude else 2 * nf))
        g = (e, e)  # G at p (real, imaginary) where iterated: for the interval
        a_sig = None  # the interval's normal matrix where the solver built it
        s_ok = w_sig = rho = None
        if sig is not None:  # the points' σ where usable (NaN elsewhere), 1/σ (0 elsewhere)
            s_ok = np.where(okk & (sig[idx_fit] > 0), sig[idx_fit], np.nan)
            with np.errstate(divide="ignore", invalid="ignore"):
                w_sig = np.where(np.isfinite(s_ok), 1.0 / s_ok, 0.0)
            if not magnitude:  # w_σ/w per residual; NaN where w = 0 but w_σ is not
                r1 = np.where(mod > 0, w_sig * mod, np.where(w_sig > 0, np.nan, 0.0))
                rho = np.concatenate([r1, r1], axis=1)
        it_rows = np.nonzero(~exact)[0]
        if it_rows.size:
            sel = _rows(it_rows, m)
            p[sel], e[sel], it[sel], conv[sel], at[sel], gr, gi, a_it = _lm(
                logf[sel],
                mr[sel],
                mi[sel],
                w[sel],
                p0[sel],
                lfc_lo[sel],
                lfc_hi[sel],
                magnitude,
                max_iter,
                tol,
                None if rho is None else rho[sel],
            )
            if it_rows.size == m:
                g, a_sig = (gr, gi), a_it
            elif sig is not None:
                g = (np.zeros((m, nf)), np.zeros((m, nf)))
                g[0][sel], g[1][sel] = gr, gi
                if a_it is not None:
                    a_sig = np.full((m, 4, 4), np.nan)
                    a_sig[sel] = a_it
        ex = np.nonzero(exact)[0]
        if ex.size:
            zr, zi, _ = _cole(logf[ex], p[ex])
            e[ex] = _errors(zr, zi, mr[ex], mi[ex], w[ex], magnitude)[0]
        # e = (Z_model − Z)/|Z| at each point (0 where left out), so
        # |Z_model − Z|² = e²·|Z|²
        e2 = e * e if magnitude else e[:, :nf] ** 2 + e[:, nf:] ** 2
        cnt = np.maximum(okk.sum(-1), 1)
        rms = np.sqrt((e2 * (mod * mod)).sum(-1) / cnt)
        rel = np.sqrt(e2.sum(-1) / cnt)
        good = np.isfinite(p).all(-1) & np.isfinite(rms)
        sub = np.zeros(idx_fit.size, dtype=np.int64)
        sub |= np.where(~good, FLAG_NO_ARC, 0)
        sub |= np.where(good & ~conv, FLAG_NOT_CONVERGED, 0)
        sub |= np.where(good & at, FLAG_AT_BOUND, 0)
        flags[idx_fit] |= sub
        keep = good
        for k, v in (
            ("r0", p[:, 0]),
            ("rinf", p[:, 1]),
            ("alpha", p[:, 2]),
            ("fc_hz", np.exp(p[:, 3])),
            ("rms_ohm", rms),
            ("rel_rms", rel),
        ):
            res[k][idx_fit] = np.where(keep, v, np.nan)
        res["iterations"][idx_fit] = it
        if s_ok is not None and w_sig is not None:
            cov = np.full((n, 4, 4), np.nan)
            cov[idx_fit] = _covariance(
                logf, mr, mi, okk, s_ok, w_sig, p, g, a_sig, exact, magnitude, keep
            )
            res["cov"] = cov
    elif sig is not None:
        res["cov"] = np.full((n, 4, 4), np.nan)
    res["flags"] = flags
    return res


def _covariance(
    logf: Array,
    mr: Array,
    mi: Array,
    ok: npt.NDArray[np.bool_],
    s: Array,
    w_sig: Array,
    p: Array,
    g: tuple[Array, Array],
    a_sig: Array | None,
    exact: npt.NDArray[np.bool_],
    magnitude: bool,
    keep: npt.NDArray[np.bool_],
) -> Array:
    """Covariance (n, 4, 4) of (R0, R∞, α, ln fc) from the points' uncertainty:
    ``s`` = σ (NaN where not usable), ``w_sig`` = 1/σ (0 there).

    Least-squares fits: the delta method on the model's Jacobian J at the
    optimum, cov = (Jᵀ Σ⁻¹ J)⁻¹ (Σ = diag σ², R and X independent), scaled by
    the reduced χ² where the residuals exceed the stated uncertainty (the fit
    then misses the model, and its spread is the better estimate; never scaled
    down). Jᵀ Σ⁻¹ J comes from the solver where it built it at p (``a_sig``,
    finite there); elsewhere J is built from G = ``g`` that the solver
    evaluated at p. Exact three-point fits (the circle through them): no
    residual to speak of, so the estimator itself is differentiated in closed
    form (:func:`_arc3_covariance`), giving D = ∂p/∂data, and cov = D Σ Dᵀ.
    The interval of an exact fit is therefore as wide as the circle's
    sensitivity to its three points, never zero.
    """
    n = mr.shape[0]
    cov = np.full((n, 4, 4), np.nan)
    lsq = keep & ~exact
    if lsq.any():
        rows = _rows(np.nonzero(lsq)[0], n)
        w = w_sig[rows]
        pr = p[rows]
        gr, gi = g[0][rows], g[1][rows]
        dr = pr[:, 0:1] - pr[:, 1:2]
        zr, zi = pr[:, 1:2] + dr * gr, dr * gi  # the model at p, as _cole
        chi2 = _errors(zr, zi, mr[rows], mi[rows], w, magnitude)[1]  # Σ((Z_model − Z)/σ)²
        a = np.full((gr.shape[0], 4, 4), np.nan) if a_sig is None else a_sig[rows]
        build = np.nonzero(~np.isfinite(a).all((-1, -2)))[0]
        if build.size:
            parts = (gr, gi, logf[rows] - pr[:, 3:4], dr, pr[:, 2:3])
            a[build] = _normal_equations(parts, w, None, zr, zi, magnitude, build)[0]
        dof = (1 if magnitude else 2) * ok[rows].sum(-1) - 4
        d = np.diagonal(a, axis1=1, axis2=2)
        ridge = 1e-12 * (d.max(-1) + 1e-300)
        a += ridge[:, None, None] * np.eye(4)
        eye = np.broadcast_to(np.eye(4), a.shape)
        inv = _solve_spd(a, eye)
        lost = ~np.isfinite(inv).all((-1, -2))  # Cholesky broke down (rare): LU for those
        if lost.any():
            inv[lost] = np.linalg.solve(a[lost], eye[lost])
        chi2 /= np.maximum(dof, 1)
        scale = np.where(dof > 0, np.maximum(chi2, 1.0), 1.0)
        cov[rows] = inv * scale[:, None, None]
    ex = keep & exact
    if ex.any():
        rows = np.nonzero(ex)[0]
        cov[rows] = _arc3_covariance(mr[rows], mi[rows], ok[rows], s[rows])
    return cov


def _arc3_covariance(mr: Array, mi: Array, ok: npt.NDArray[np.bool_], s: Array) -> Array:
    """cov = D Σ Dᵀ of the Cole arc through three points, D = ∂p/∂(R, −X) in closed form.

    The arc (as :func:`bia_acq.core.cole.circle_fit`, exact for three points):
    the circumcentre (x0, y0) and squared radius ρ² of the points (x_k, y_k) in
    the (R, −X) plane; h = √(ρ² − y0²), R0, R∞ = x0 ± h,
    α = 1 − (2/π)·atan2(−y0, h), and ln fc = mean_k(ln f_k − L_k/α) with
    L_k = ½·ln(A_k/B_k), A_k = (R0 − x_k)² + y_k², B_k = (x_k − R∞)² + y_k².

    Differentiated (implicit function theorem on (x_k − x0)² + (y_k − y0)² = ρ²,
    k = 1..3): with dx_k = x_k − x0, dy_k = y_k − y0, Δ = Σ_k x_k·(y_{k+1} − y_{k+2})
    (indices cyclic) and a_k = (y_{k+1} − y_{k+2})/Δ, b_k = (x_{k+2} − x_{k+1})/Δ,
    c_k = (dx_{k+1}·dy_{k+2} − dx_{k+2}·dy_{k+1})/Δ (the columns of the inverse of
    the rows (dx_k, dy_k, 1)), the point x_k moves (x0, y0, ρ²) by
    (a_k, b_k, 2c_k)·dx_k, and y_k by (a_k, b_k, 2c_k)·dy_k. Then
    dh = (dρ² − 2·y0·dy0)/(2h), dα = (2/π)·(h·dy0 − y0·dh)/ρ², and
    d ln fc = mean_k(L_k)·dα/α² − mean_k(dL_k)/α with
    dL_k = ((R0 − x_k)(dR0 − dx_k) + y_k·dy_k)/A_k − ((x_k − R∞)(dx_k − dR∞) + y_k·dy_k)/B_k.
    (The tests compare the result with a Monte Carlo reference.) Σ: σ of R and of
    X (σ(−X) = σ(X)) at each point, independent. A row without a valid arc is NaN.
    """
    order = np.argsort(~ok, axis=-1, kind="stable")[:, :3]  # the three measured points
    x = np.take_along_axis(mr, order, -1)
    y = -np.take_along_axis(mi, order, -1)
    sd = np.take_along_axis(s, order, -1)
    x1, x2, x3 = x[:, 0], x[:, 1], x[:, 2]
    y1, y2, y3 = y[:, 0], y[:, 1], y[:, 2]
    xn, yn = x[:, [1, 2, 0]], y[:, [1, 2, 0]]  # x_{k+1}, y_{k+1}
    xnn, ynn = x[:, [2, 0, 1]], y[:, [2, 0, 1]]  # x_{k+2}, y_{k+2}
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        det = (x * (yn - ynn)).sum(-1)[:, None]  # Δ: twice the triangle's signed area
        q1, q2, q3 = x1 * x1 + y1 * y1, x2 * x2 + y2 * y2, x3 * x3 + y3 * y3
        x0 = (q1 * (y2 - y3) + q2 * (y3 - y1) + q3 * (y1 - y2)) / (2.0 * det[:, 0])
        y0 = (q1 * (x3 - x2) + q2 * (x1 - x3) + q3 * (x2 - x1)) / (2.0 * det[:, 0])
        dx, dy = x - x0[:, None], y - y0[:, None]
        rho2 = dx[:, 0] ** 2 + dy[:, 0] ** 2
        h = np.sqrt(rho2 - y0 * y0)
        r0, rinf = x0 + h, x0 - h
        alpha = 1.0 - (2.0 / np.pi) * np.arctan2(-y0, h)
        # derivatives along the six data directions (x1, x2, x3, y1, y2, y3): (n, 6)
        a = (yn - ynn) / det
        b = (xnn - xn) / det
        c = (dx[:, [1, 2, 0]] * dy[:, [2, 0, 1]] - dx[:, [2, 0, 1]] * dy[:, [1, 2, 0]]) / det
        move = np.concatenate([dx, dy], axis=-1)
        d_x0 = np.tile(a, 2) * move
        d_y0 = np.tile(b, 2) * move
        d_rho2 = 2.0 * np.tile(c, 2) * move
        d_h = (d_rho2 - 2.0 * y0[:, None] * d_y0) / (2.0 * h[:, None])
        d_r0, d_rinf = d_x0 + d_h, d_x0 - d_h
        d_alpha = (2.0 / np.pi) * (h[:, None] * d_y0 - y0[:, None] * d_h) / rho2[:, None]
        u0, uinf = r0[:, None] - x, x - rinf[:, None]  # R0 − x_k, x_k − R∞
        big_a, big_b = u0 * u0 + y * y, uinf * uinf + y * y
        ell = 0.5 * (np.log(big_a) - np.log(big_b))  # L_k
        # Σ_k dL_k: through R0 and R∞, plus each point's own x_k or y_k
        own = np.concatenate([-u0 / big_a - uinf / big_b, y / big_a - y / big_b], axis=-1)
        sum_dl = (
            (u0 / big_a).sum(-1)[:, None] * d_r0 + (uinf / big_b).sum(-1)[:, None] * d_rinf + own
        )
        al = alpha[:, None]
        d_lfc = ell.mean(-1)[:, None] * d_alpha / (al * al) - sum_dl / (3.0 * al)
        sd2 = np.tile(sd, 2)
        g = [d * sd2 for d in (d_r0, d_rinf, d_alpha, d_lfc)]
        cov = np.empty((x.shape[0], 4, 4))
        for i in range(4):
            for j in range(i + 1):
                cov[:, i, j] = cov[:, j, i] = np.einsum("nc,nc->n", g[i], g[j])
    cov[~np.isfinite(cov).all((-1, -2))] = np.nan
    return np.asarray(cov, dtype=float)


def _hook_tolerance(y: Array) -> Array:
    """How far −X must fall and rise again to count as a hook, per spectrum.

    HOOK_TOL of the arc's height plus four times the noise, estimated from the
    second differences of −X (robust: median absolute value; zero with fewer
    than three second differences).
    """
    n, nf = y.shape
    ymax = np.fmax.reduce(y, axis=-1)  # NaN (no points at all) where nothing is finite
    sigma = np.zeros(n)
    if nf >= 5:
        d2 = np.abs(y[:, 2:] - 2 * y[:, 1:-1] + y[:, :-2])
        finite = np.isfinite(d2)
        cnt = finite.sum(-1)
        srt = np.sort(np.where(finite, d2, np.inf), axis=-1)
        med = np.take_along_axis(srt, np.maximum(cnt - 1, 0)[:, None] // 2, -1)[:, 0]
        sigma = np.where(cnt >= 3, 1.4826 * med / np.sqrt(6.0), 0.0)
    return np.asarray(HOOK_TOL * np.abs(ymax) + 4.0 * sigma, dtype=float)


def _start(
    f: Array, z: npt.NDArray[np.complex128], ok: npt.NDArray[np.bool_], magnitude: bool
) -> tuple[Array, npt.NDArray[np.bool_]]:
    """Starting parameters (n, 4) and where they come from a valid circle fit.

    Complex spectra start from the algebraic circle fit
    (:func:`bia_acq.core.cole.arc_parameters`, the arc of
    :func:`bia_acq.core.cole.circle_fit`); the rest (no usable circle, or
    magnitude-only) from values read off the spectrum.
    """
    n = z.shape[0]
    p = np.empty((n, 4))
    use = np.zeros(n, dtype=bool)
    if not magnitude:
        arc = arc_parameters(f, z.real, -z.imag, ok)
        with np.errstate(invalid="ignore"):
            use = arc.solved & (arc.half2 > 0) & (arc.rinf > 0) & np.isfinite(arc.r0)
            use &= (arc.alpha > 0) & (arc.alpha <= 1 + 1e-9) & (arc.fc_hz > 0)
            use &= np.isfinite(arc.fc_hz)
        p[use, 0] = arc.r0[use]
        p[use, 1] = arc.rinf[use]
        p[use, 2] = np.clip(arc.alpha[use], ALPHA_MIN, 1.0)
        p[use, 3] = np.log(arc.fc_hz[use])
    rest = np.nonzero(~use)[0]
    if rest.size:
        p[rest] = _read_off_start(f[rest], z[rest].real, ok[rest])
    return p, use


def _read_off_start(f: Array, r: Array, ok: npt.NDArray[np.bool_]) -> Array:
    """Starting parameters (n, 4) read off R (or |Z|): R0 and R∞ a tenth of the
    span beyond its ends, α = 0.75, fc where R is halfway between its ends."""
    n = r.shape[0]
    r = np.where(ok, r, np.nan)
    first = np.argmax(ok, -1)
    last = ok.shape[-1] - 1 - np.argmax(ok[:, ::-1], -1)
    rows = np.arange(n)
    r_lo = r[rows, first]
    r_hi = r[rows, last]
    span = np.maximum(r_lo - r_hi, 1e-3 * np.abs(r_lo))
    p = np.empty((n, 4))
    p[:, 0] = r_lo + 0.1 * span
    p[:, 1] = np.maximum(r_hi - 0.1 * span, 1e-3 * np.abs(r_lo))
    p[:, 2] = 0.75
    # fc: where the curve is halfway between its ends (geometric middle as fallback)
    mid = 0.5 * (r_lo + r_hi)
    below = ok & (r <= mid[:, None])
    k = np.where(below.any(-1), np.argmax(below, -1), (first + last) // 2)
    p[:, 3] = np.log(f[rows, k])
    return p
