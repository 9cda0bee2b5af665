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

The hot path, per block of spectra that fits in cache (:func:`_fit_block`):
screen each spectrum (hook, resistance falling, enough points); start from
the algebraic circle fit (:func:`bia_acq.core.cole.arc_parameters`); run
Levenberg–Marquardt on the spectra still iterating (:func:`_lm`: each round
solves all their damped 4×4 systems at once, evaluates the model at the
trial points, and forms the normal equations only for rows that go on,
:func:`_normal_equations`: no Jacobian, but weighted sums of a few per-point
quantities of G, from which JᵀWJ and JᵀWε follow in closed form); then the
interval (:func:`_covariance`: Jᵀ Σ⁻¹ J from the same quantities, taken
from the solver where it formed them at the optimum, else from the G it
evaluated there; exact three-point arcs by the closed-form derivative,
:func:`_arc3_covariance`). Every decision is per spectrum and every sum runs
over one spectrum's points in a fixed order, so a spectrum's result does not
depend on the batch it came in.

Derivatives (Cole model of PHYSIOLOGY.md, checked algebraically and against
finite differences in the tests [D]): with q = (j f/fc)^α, G = 1/(1 + q),
H = G²q = G(1 − G), ΔR = R0 − R∞, ℓ = ln(f/fc): ∂Z/∂R0 = G, ∂Z/∂R∞ = 1 − G,
∂Z/∂α = −ΔR·H·(ℓ + jπ/2), ∂Z/∂ln fc = ΔR·α·H.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

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
#: initial damping λ of Levenberg–Marquardt: from a start read off the spectrum, and
#: from the circle fit (close to the optimum: the first step is then Gauss–Newton's,
#: which more often lands where the next step is negligible)
LAMBDA_START = 1e-3
LAMBDA_START_CIRCLE = 1e-5
#: a row whose accepted step was below this many STEP_TOL is probably at its optimum:
#: the solver then builds the interval's normal matrix from the Jacobian it builds anyway
#: (speed only: the matrix is used only where p did not move after it)
SHARE_STEPS = 300.0


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


#: what the normal equations are built from (:func:`_cole`'s intermediates):
#: G's real and imaginary parts and ℓ = ln(f/fc) (n, F); ΔR and α (n, 1)
_Parts = tuple[Array, Array, Array, Array, Array]


def _cole(logf: Array, p: Array) -> tuple[Array, Array, _Parts]:
    """Cole R and X (n, F) at ln f for parameters p (n, 4), and their intermediates.

    Real arithmetic throughout (faster than complex): with u = (f/fc)^α,
    c = cos(απ/2), s = sin(απ/2), D = 1 + 2uc + u², G = ((1 + uc) − j·us)/D.
    """
    r0, rinf, alpha, lfc = p[:, 0:1], p[:, 1:2], p[:, 2:3], p[:, 3:4]
    lr = logf - lfc  # ln(f/fc)
    u = np.multiply(alpha, lr)
    np.exp(u, out=u)
    half = alpha * (np.pi / 2)
    c, s = np.cos(half), np.sin(half)
    uc = u * c
    inv_d = uc * 2.0  # (in place from here on: fewer temporaries)
    inv_d += 1.0
    inv_d += u * u
    np.divide(1.0, inv_d, out=inv_d)
    gr = np.add(uc, 1.0, out=uc)
    gr *= inv_d
    gi = np.multiply(u, -s, out=u)
    gi *= inv_d
    dr = r0 - rinf
    zr = dr * gr
    zr += rinf
    return zr, dr * gi, (gr, gi, lr, dr, alpha)


def _residuals(
    zr: Array, zi: Array, mr: Array, mi: Array, ww: Array, magnitude: bool
) -> tuple[Array, Array | None, Array]:
    """The residuals ε = Z_model − Z (real and imaginary parts, (n, F)) and the
    cost Σ W·|ε|² (n,), W = ``ww`` (the fit's weight, 0 at points left out).
    Magnitude-only (``mr`` holds |Z|): ε = |Z_model| − |Z|, no imaginary part."""
    if magnitude:
        er = np.sqrt(zr * zr + zi * zi) - mr
        return er, None, np.einsum("nf,nf->n", er * er, ww)
    er, ei = zr - mr, zi - mi
    return er, ei, np.einsum("nf,nf->n", er * er + ei * ei, ww)


#: rows per piece in :func:`_normal_equations`: a piece's per-point quantities stay
#: in the core's cache between being computed and being summed
JAC_ROWS = 256
#: how many per-point quantities the normal matrix needs (complex; magnitude-only)
_N_MATRIX = 11
_N_MATRIX_MAGNITUDE = 10
_HP = 0.5 * np.pi


def _normal_equations(
    parts: _Parts,
    zr: Array,
    zi: Array,
    ww: Array | None,
    eps: tuple[Array, Array | None] | None,
    magnitude: bool,
    idx: npt.NDArray[np.intp] | None = None,
    ww_sig: Array | None = None,
    also: npt.NDArray[np.bool_] | None = None,
) -> tuple[Array | None, Array | None, Array | None]:
    """A = JᵀWJ and, given the residuals ε, b = JᵀWε for the rows ``idx`` (all if
    None), where J = ∂Z_model/∂(R0, R∞, α, ln fc) and W = ``ww`` per point (None:
    neither). Entry-major, as :func:`_solve_spd` takes them: A (4, 4, m), b (4, m).

    No Jacobian is formed. Each column of J is a complex factor times a point's
    value: c0 = G, c1 = 1 − G, c2 = −ΔR·(ℓ + jπ/2)·H, c3 = α·ΔR·H with
    H = G(1 − G) and ℓ = ln(f/fc) (module docstring), so A_kl = Σ W·Re(c̄_k·c_l)
    and b_k = Σ W·Re(c̄_k·ε) are fixed combinations of W-weighted sums of eleven
    per-point quantities (five more for b): G, |G|², ḠH = |G|²(1 − G), H, |H|²,
    with ℓ and ℓ² where the combination needs them (see :func:`_assemble`).
    These are computed piece by piece (JAC_ROWS rows) into one stack and summed
    by one matrix–vector product per spectrum. Magnitude-only spectra: the
    Jacobian of |Z| has the real rows Re(ū·c_k), ū = conj(Z_model)/|Z_model|,
    and the stack holds their ten products (and four with ε).

    Given ``ww_sig`` (1/σ² per point) also Jᵀ Σ⁻¹ J, the interval's normal
    matrix, from the same per-point quantities, for the selected rows where
    ``also`` (m,) holds (NaN elsewhere); without ``also``, for all of them.
    The same arithmetic whichever path asks for it (the solver or
    :func:`_covariance`), so a spectrum's interval does not depend on which.
    """
    gr_all, gi_all, lr_all, dr_all, al_all = parts
    m = gr_all.shape[0] if idx is None else idx.size
    nf = gr_all.shape[1]
    n_mat = _N_MATRIX_MAGNITUDE if magnitude else _N_MATRIX
    n_grad = 0 if eps is None else 4 if magnitude else 5
    sums = None if ww is None else np.empty((m, n_mat + n_grad))
    sums_sig = None if ww_sig is None else np.full((m, n_mat), np.nan)
    s1 = np.empty(m)
    s1_sig = None if ww_sig is None else np.empty(m)
    # quantity, spectrum, point: one buffer for all pieces (a fresh one each time
    # would be fresh pages of memory each time)
    buf = np.empty((n_mat + n_grad, min(m, JAC_ROWS), nf))
    for s in range(0, m, JAC_ROWS):
        out = slice(s, min(m, s + JAC_ROWS))
        k = out if idx is None else idx[out]
        gr, gi, lr = gr_all[k], gi_all[k], lr_all[k]
        st = buf[:, : gr.shape[0]]
        if magnitude:
            er = None if eps is None else eps[0][k]
            _magnitude_quantities(gr, gi, lr, zr[k], zi[k], dr_all[k], al_all[k], er, st)
        else:
            ee = None if eps is None else (eps[0][k], eps[1][k])  # type: ignore[index]
            _quantities(gr, gi, lr, ee, st)
        stack = st.transpose(1, 0, 2)  # (spectrum, quantity, point)
        if ww is not None and sums is not None:
            w = ww[k]
            sums[out] = np.matmul(stack, w[..., None])[..., 0]
            s1[out] = w.sum(-1)
        if ww_sig is not None and sums_sig is not None and s1_sig is not None:
            # the whole piece where any row asks (each row's sums are its own)
            sub = np.arange(gr.shape[0]) if also is None else np.nonzero(also[out])[0]
            if sub.size:
                ws = ww_sig[k]
                sig = np.matmul(stack[:, :n_mat], ws[..., None])[..., 0]
                sums_sig[s + sub], s1_sig[s + sub] = sig[sub], ws.sum(-1)[sub]
    k_all = slice(None) if idx is None else idx
    dr, alpha = dr_all[k_all, 0], al_all[k_all, 0]
    a = b = None
    if sums is not None:
        a = _assemble(sums, s1, dr, alpha, magnitude)
        b = None if eps is None else _gradient(sums[:, n_mat:], dr, alpha, magnitude)
    a_sig = None
    if sums_sig is not None and s1_sig is not None:
        a_sig = _assemble(sums_sig, s1_sig, dr, alpha, magnitude)
    return a, b, a_sig


def _quantities(
    gr: Array, gi: Array, lr: Array, eps: tuple[Array, Array | None] | None, st: Array
) -> None:
    """The per-point quantities of :func:`_normal_equations` (complex spectra) into
    ``st`` (quantity, spectrum, point): G's real part, |G|², Re(ḠH), −Im(ḠH),
    ℓ·Re(ḠH), H's real and imaginary parts, ℓ·Re H, |H|², ℓ·|H|², ℓ²·|H|²; given
    ε also Re ε, Re(Ḡε), Re(H̄ε), Im(H̄ε), ℓ·Re(H̄ε)."""
    q = gi * gi
    np.copyto(st[0], gr)
    g2 = np.multiply(gr, gr, out=st[1])
    hr = np.subtract(gr, g2, out=st[5])  # Re H = Re G − (Re G)² + (Im G)²
    hr += q
    g2 += q
    one_m = 1.0 - gr
    ga = np.multiply(g2, one_m, out=st[2])  # Re(ḠH) = |G|²(1 − Re G)
    np.multiply(g2, gi, out=st[3])  # Im(ḠH) = −|G|²·Im G
    np.multiply(ga, lr, out=st[4])
    one_m -= gr
    hi = np.multiply(gi, one_m, out=st[6])  # Im H = Im G·(1 − 2 Re G)
    np.multiply(hr, lr, out=st[7])
    hh = np.multiply(hr, hr, out=st[8])
    np.multiply(hi, hi, out=q)
    hh += q
    hhl = np.multiply(hh, lr, out=st[9])
    np.multiply(hhl, lr, out=st[10])
    if eps is None:
        return
    er, ei = eps
    assert ei is not None
    np.copyto(st[11], er)
    t = np.multiply(gr, er, out=st[12])
    t += np.multiply(gi, ei, out=q)
    t = np.multiply(hr, er, out=st[13])
    t += np.multiply(hi, ei, out=q)
    np.multiply(t, lr, out=st[15])
    t = np.multiply(hr, ei, out=st[14])
    t -= np.multiply(hi, er, out=q)


def _magnitude_quantities(
    gr: Array,
    gi: Array,
    lr: Array,
    zr: Array,
    zi: Array,
    dr: Array,
    alpha: Array,
    er: Array | None,
    st: Array,
) -> None:
    """Magnitude-only spectra: the ten products of the Jacobian's real rows
    a_k = Re(ū·c_k) (ū = conj(Z_model)/|Z_model|) and, given ε, a_k·ε, into ``st``."""
    mod = np.sqrt(zr * zr + zi * zi)
    ur, ui = zr / mod, zi / mod
    hr = gr - gr * gr + gi * gi
    hi = gi * (1.0 - 2.0 * gr)
    a0 = ur * gr + ui * gi
    t = ur * hr + ui * hi  # Re(ū·H)
    t2 = ur * hi - ui * hr  # Im(ū·H)
    rows = (a0, ur - a0, -dr * (lr * t - _HP * t2), (alpha * dr) * t)
    n = 0
    for i in range(4):
        for j in range(i + 1):
            np.multiply(rows[i], rows[j], out=st[n])
            n += 1
    if er is not None:
        for i in range(4):
            np.multiply(rows[i], er, out=st[n + i])


def _assemble(s: Array, s1: Array, dr: Array, alpha: Array, magnitude: bool) -> Array:
    """The 4×4 matrices, entry-major (4, 4, m), from the sums (m, ·) of
    :func:`_normal_equations` (``s1``: Σ W)."""
    m = s.shape[0]
    a = np.empty((4, 4, m))
    if magnitude:  # the ten products, row by row of the lower triangle
        n = 0
        for i in range(4):
            for j in range(i + 1):
                a[i, j] = a[j, i] = s[:, n]
                n += 1
        return a
    g, gg, ga, gb, gal, h, k, hl, hh, hhl, hhll = (s[:, i] for i in range(_N_MATRIX))
    ad = alpha * dr
    a02 = -dr * (gal + _HP * gb)  # Re(Ḡ·c2)
    entries = {
        (0, 0): gg,
        (0, 1): g - gg,
        (1, 1): s1 - 2.0 * g + gg,
        (0, 2): a02,
        (1, 2): -dr * (hl - _HP * k) - a02,  # Re(c2) − Re(Ḡ·c2)
        (0, 3): ad * ga,
        (1, 3): ad * (h - ga),
        (2, 2): dr * dr * (hhll + _HP * _HP * hh),
        (2, 3): -ad * dr * hhl,
        (3, 3): ad * ad * hh,
    }
    for (i, j), v in entries.items():
        a[i, j] = a[j, i] = v
    return a


def _gradient(s: Array, dr: Array, alpha: Array, magnitude: bool) -> Array:
    """b = JᵀWε, entry-major (4, m), from the sums of :func:`_normal_equations`' ε
    quantities."""
    if magnitude:
        return np.ascontiguousarray(s[:, :4].T)
    r, g, h, hi, hl = (s[:, i] for i in range(5))
    b = np.empty((4, s.shape[0]))
    b[0] = g
    b[1] = r - g
    b[2] = -dr * (hl + _HP * hi)  # Re(c̄2·ε) = −ΔR·(ℓ·Re(H̄ε) + (π/2)·Im(H̄ε))
    b[3] = alpha * dr * h
    return b


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


class _Solved(NamedTuple):
    """What :func:`_lm` returns, per row."""

    p: Array
    er: Array  # ε = Z_model − Z at p (see :func:`_residuals`)
    ei: Array | None
    iterations: npt.NDArray[np.int64]
    converged: npt.NDArray[np.bool_]
    at_bound: npt.NDArray[np.bool_]
    gr: Array  # G = 1/(1 + (j f/fc)^α) at p: the interval's quantities need no
    gi: Array  # model evaluation
    a_sig: Array | None  # Jᵀ Σ⁻¹ J at p where the solver formed it (NaN elsewhere)


def _lm(
    logf: Array,
    mr: Array,
    mi: Array,
    ww: Array,
    p0: Array,
    lfc_lo: Array,
    lfc_hi: Array,
    magnitude: bool,
    max_iter: int,
    tol: float,
    ww_sig: Array | None = None,
    lam0: Array | float = LAMBDA_START,
) -> _Solved:
    """Levenberg–Marquardt on rows of (n, F) arrays, W = ``ww`` per point.

    Returns p, the residuals ε at p, the iterations, whether each row
    converged, whether it ended on a bound, G at p (for the interval) and,
    given ``ww_sig`` (1/σ² per point), the interval's normal matrix Jᵀ Σ⁻¹ J at
    p where the solver already formed the normal equations at p (NaN
    elsewhere): a row that moved by less than SHARE_STEPS·STEP_TOL is probably
    at its optimum (its next step negligible), so when its normal equations
    are formed for that next step, the interval's matrix is taken from the same
    per-point quantities.

    ``lam0`` is each row's initial damping λ (see LAMBDA_START).

    Each round works only on the rows still active: it solves their damped 4×4
    normal equations together, evaluates the model at the trial points (values
    only) and accepts a trial where the cost did not rise. The normal
    equations are then formed only for accepted rows that go on iterating, so
    the round in which a spectrum converges costs one model evaluation, not
    new normal equations. A row leaves the active set when its Gauss–Newton
    step is negligible (before spending an evaluation on it), when an accepted
    step gains less than ``tol`` of the cost or moves less than STEP_TOL, or
    when λ runs away. Every decision is the row's own: a spectrum's result does
    not depend on the others in its batch.
    """
    n = p0.shape[0]
    p, at = _project(p0, lfc_lo, lfc_hi)
    zr, zi, parts = _cole(logf, p)
    er, ei, cost = _residuals(zr, zi, mr, mi, ww, magnitude)
    jtj, jte, _ = _normal_equations(parts, zr, zi, ww, (er, ei), magnitude)
    assert jtj is not None and jte is not None
    gr, gi = parts[0], parts[1]  # G at p (updated with p below)
    a_sig = None if ww_sig is None else np.full((4, 4, n), np.nan)  # Jᵀ Σ⁻¹ J at p, where known
    lam = np.broadcast_to(np.asarray(lam0, dtype=float), (n,)).copy()
    iters = np.zeros(n, dtype=np.int64)
    done = np.zeros(n, dtype=bool)
    active = np.arange(n)
    for _ in range(max_iter):
        if active.size == 0:
            break
        rows = _rows(active, n)
        step = _solve_spd(jtj[:, :, rows], -jte[:, rows], lam[rows]).T
        step = np.where(np.isfinite(step), step, 0.0)  # singular despite damping: no step
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
        wa = ww[rows]
        zr_t, zi_t, parts_t = _cole(_take(logf, rows), trial)
        er_t, ei_t, cost_t = _residuals(zr_t, zi_t, mr[rows], mi[rows], wa, magnitude)
        old = cost[rows]
        better = np.isfinite(cost_t) & (cost_t <= old)
        moved = np.abs(trial - pa)  # (``old`` and ``pa`` may be views: used before p moves)
        tiny_step = (moved <= STEP_TOL * scale).all(-1)
        small_gain = better & ((old - cost_t <= tol * (old + 1e-30)) | tiny_step)
        near = np.asarray((moved <= SHARE_STEPS * STEP_TOL * scale).all(-1), dtype=bool)
        b = active[better]
        if a_sig is not None:
            a_sig[:, :, b] = np.nan  # moved: the interval's matrix, if any, was of the old point
        if b.size == n:  # every row moved (the first round, as a rule): take the trial's arrays
            p, cost, er, ei, at, gr, gi = trial, cost_t, er_t, ei_t, at_t, parts_t[0], parts_t[1]
        else:
            p[b] = trial[better]
            cost[b] = cost_t[better]
            er[b] = er_t[better]
            if ei is not None and ei_t is not None:
                ei[b] = ei_t[better]
            at[b] = at_t[better]
            gr[b], gi[b] = parts_t[0][better], parts_t[1][better]
        lam[rows] = np.where(better, np.maximum(lam[rows] * 0.2, 1e-12), lam[rows] * 10.0)
        iters[rows] += 1
        finished = small_gain | (lam[rows] > 1e12)
        # moved and going on: the next step needs the normal equations at the new point
        # (a rejected row keeps those of the point it stays at)
        go_on = np.nonzero(better & ~finished)[0]
        if go_on.size:
            idx = None if go_on.size == active.size else go_on
            a_k, b_k, s_k = _normal_equations(
                parts_t,
                zr_t,
                zi_t,
                wa,
                (er_t, ei_t),
                magnitude,
                idx,
                None if ww_sig is None else ww_sig[rows],
                near[go_on],
            )
            jtj[:, :, active[go_on]], jte[:, active[go_on]] = a_k, b_k
            if a_sig is not None and s_k is not None:
                a_sig[:, :, active[go_on]] = s_k
        done[active[finished]] = True
        active = active[~finished]
    return _Solved(p, er, ei, iters, done, at, gr, gi, a_sig)


def _solve_spd(a: Array, b: Array, lam: Array | None = None) -> Array:
    """x with a·x = b for symmetric positive definite 4×4 matrices, entry-major: ``a``
    (k, k, m) (entry (i, j) of every matrix a contiguous vector), b (k, m) or, for
    several right-hand sides, (k, r, m); x shaped as b. Given ``lam`` (m,), the
    matrices are damped as Levenberg–Marquardt's: a_ii + (λ·a_ii + 1e-12·max_i a_ii).

    Cholesky a = L·Lᵀ unrolled over the k×k entries, each a vector over the
    stack: a few dozen array operations for k = 4 instead of m LAPACK calls.
    Where the factorisation breaks down (not positive definite in floating
    point), LU for that matrix alone; NaN where it is singular.
    """
    k = a.shape[0]
    diag = [a[i, i] for i in range(k)]
    if lam is not None:
        ridge = 1e-12 * (np.maximum.reduce(diag) + 1e-30)
        diag = [d + (lam * d + ridge) for d in diag]
    el, rhs = a, b
    if b.ndim == 3:  # each entry multiplies a row of b's right-hand sides
        el, diag = a[:, :, None, :], [d[None, :] for d in diag]
    low: list[list[Array]] = [[] for _ in range(k)]
    inv: list[Array] = []  # 1/L[i, i]
    y: list[Array] = []
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        for i in range(k):
            for j in range(i + 1):
                s = diag[i] if i == j else el[i, j]
                for q in range(j):
                    s = s - low[i][q] * low[j][q]
                if i == j:
                    low[i].append(np.sqrt(s))
                    inv.append(1.0 / low[i][i])
                else:
                    low[i].append(s * inv[j])
            t = rhs[i]
            for q in range(i):
                t = t - low[i][q] * y[q]
            y.append(t * inv[i])
        x: list[Array] = [y[0]] * k
        for i in reversed(range(k)):  # Lᵀ·x = y
            t = y[i]
            for q in range(i + 1, k):
                t = t - low[q][i] * x[q]
            x[i] = t * inv[i]
    out = np.stack(x)
    lost = np.nonzero(~np.isfinite(out).all(tuple(range(out.ndim - 1))))[0]
    for r in lost:  # rare: LU, matrix by matrix
        dense = a[:, :, r].copy()
        dense[np.diag_indices(k)] = [d[..., r].item() for d in diag]
        try:
            out[..., r] = np.linalg.solve(dense, b[..., r])
        except np.linalg.LinAlgError:
            out[..., r] = np.nan
    return out


def _take(a: Array, rows: npt.NDArray[np.intp] | slice) -> Array:
    """``a[rows]``; where ``a`` repeats one row (ln f or f shared by all spectra), a
    view of as many rows instead of a copy."""
    if a.strides[0] == 0 and not isinstance(rows, slice):
        return a[: rows.size]
    return a[rows]


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
    # C order whatever the caller's (or the sort's) layout: numpy's sums follow the
    # memory order, so a spectrum's result would otherwise depend on its batch's layout
    zc = np.ascontiguousarray(zc)
    sig = None if sig is None else np.ascontiguousarray(sig)
    if f_row is None:
        f = np.ascontiguousarray(f)
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
    full = bool(ok.all())  # every point measured: no masking (the same values, faster)
    flags = np.zeros(n, dtype=np.int64)
    if magnitude:
        flags |= FLAG_MAGNITUDE_ONLY
    r = _where(ok, full, np.ascontiguousarray(z.real), np.nan)
    # -- hook: past the arc's peak, −X rises again (or X turns positive) --------
    if not magnitude:
        y = _where(ok, full, -z.imag, np.nan)
        tol_y = _hook_tolerance(y)[:, None]
        yv = _where(ok, full, y, -np.inf)
        peak = np.argmax(yv, axis=-1)  # the arc's top; a hook can only come above it
        ymax = np.take_along_axis(yv, peak[:, None], -1)
        above = np.arange(nf)[None, :] > peak[:, None]
        passed = np.logical_or.accumulate(ok & above & (ymax - y > tol_y), axis=-1)
        after = np.where(passed, y, np.inf)
        runmin = np.fmin.accumulate(after, axis=-1)
        prev_min = np.concatenate([np.full((n, 1), np.inf), runmin[:, :-1]], axis=-1)
        hook_at = ok & ((passed & (y - prev_min > tol_y)) | (above & (y < -tol_y)))
        has_hook = hook_at.any(-1)
        if has_hook.any():
            first = np.where(has_hook, np.argmax(hook_at, -1), nf)
            ok &= np.arange(nf)[None, :] < first[:, None]
            flags |= np.where(has_hook, FLAG_HOOK, 0)
            full = False
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
    rise = _where(ok, full, r - runmin_r, 0.0).max(-1)
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
        ff, zz, okk = _take(f, fit_rows), z[fit_rows], ok[fit_rows]
        if full and f_row is not None:
            fmin, fmax = np.full(idx_fit.size, f_row[0]), np.full(idx_fit.size, f_row[-1])
        else:
            fmin = np.nanmin(_where(okk, full, ff, np.inf), -1)
            fmax = np.nanmax(_where(okk, full, ff, -np.inf), -1)
        lfc_lo = np.log(fmin) - FC_DECADES * np.log(10)
        lfc_hi = np.log(fmax) + FC_DECADES * np.log(10)
        p0, circle_ok = _start(ff, zz, okk, magnitude)
        zmeas = _where(okk, full, zz, 0.0)
        mod = np.abs(zmeas)
        used = okk & (mod > 0)
        all_used = bool(used.all())
        with np.errstate(divide="ignore"):
            ww = _where(used, all_used, 1.0 / (mod * mod), 0.0)  # the fit's weight: 1/|Z|²
        lf_row = None if f_row is None else np.log(np.where(f_row > 0, f_row, 1.0))
        if lf_row is not None and okk.all():  # one ln f for all rows
            logf = np.broadcast_to(lf_row, ff.shape)
        elif lf_row is not None:
            logf = np.where(okk, lf_row, 0.0)
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
        er = np.zeros((m, nf))
        ei = None if magnitude else np.zeros((m, nf))
        g = (er, er)  # G at p (real, imaginary) where iterated: for the interval
        a_sig = None  # the interval's normal matrix where the solver formed it
        s_ok = ww_sig = None
        if sig is not None:  # the points' σ where usable (NaN elsewhere), 1/σ² (0 elsewhere)
            sg = sig[fit_rows]
            s_use = okk & (sg > 0)
            s_all = bool(s_use.all())
            s_ok = _where(s_use, s_all, sg, np.nan)
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                ww_sig = 1.0 / (s_ok * s_ok)
                if not s_all or not np.isfinite(ww_sig).all():
                    ww_sig = np.where(np.isfinite(s_ok), ww_sig, 0.0)
        it_rows = np.nonzero(~exact)[0]
        if it_rows.size:
            sel = _rows(it_rows, m)
            sv = _lm(
                _take(logf, sel),
                mr[sel],
                mi[sel],
                ww[sel],
                p0[sel],
                lfc_lo[sel],
                lfc_hi[sel],
                magnitude,
                max_iter,
                tol,
                None if ww_sig is None else ww_sig[sel],
                np.where(circle_ok[sel], LAMBDA_START_CIRCLE, LAMBDA_START),
            )
            p[sel], er[sel], it[sel], conv[sel], at[sel] = (
                sv.p,
                sv.er,
                sv.iterations,
                sv.converged,
                sv.at_bound,
            )
            if ei is not None and sv.ei is not None:
                ei[sel] = sv.ei
            if it_rows.size == m:
                g, a_sig = (sv.gr, sv.gi), sv.a_sig
            elif sig is not None:
                g = (np.zeros((m, nf)), np.zeros((m, nf)))
                g[0][sel], g[1][sel] = sv.gr, sv.gi
                if sv.a_sig is not None:
                    a_sig = np.full((4, 4, m), np.nan)
                    a_sig[:, :, sel] = sv.a_sig
        ex = np.nonzero(exact)[0]
        if ex.size:
            zr, zi, _ = _cole(_take(logf, ex), p[ex])
            er_x, ei_x, _ = _residuals(zr, zi, mr[ex], mi[ex], ww[ex], magnitude)
            er[ex] = er_x
            if ei is not None and ei_x is not None:
                ei[ex] = ei_x
        e2 = er * er if ei is None else er * er + ei * ei  # |Z_model − Z|² at each point
        cnt = np.maximum(okk.sum(-1), 1)
        rms = np.sqrt(_where(used, all_used, e2, 0.0).sum(-1) / cnt)
        rel = np.sqrt(np.einsum("nf,nf->n", e2, ww) / cnt)
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
        if s_ok is not None and ww_sig is not None:
            cov = np.full((n, 4, 4), np.nan)
            cov[idx_fit] = _covariance(
                logf, mr, mi, er, ei, okk, s_ok, ww_sig, p, g, a_sig, exact, magnitude, keep
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
    er: Array,
    ei: Array | None,
    ok: npt.NDArray[np.bool_],
    s: Array,
    ww_sig: Array,
    p: Array,
    g: tuple[Array, Array],
    a_sig: Array | None,
    exact: npt.NDArray[np.bool_],
    magnitude: bool,
    keep: npt.NDArray[np.bool_],
) -> Array:
    """Covariance (n, 4, 4) of (R0, R∞, α, ln fc) from the points' uncertainty:
    ``s`` = σ (NaN where not usable), ``ww_sig`` = 1/σ² (0 there); ``er``, ``ei``
    the residuals at p.

    Least-squares fits: the delta method on the model's Jacobian J at the
    optimum, cov = (Jᵀ Σ⁻¹ J)⁻¹ (Σ = diag σ², R and X independent), scaled by
    the reduced χ² where the residuals exceed the stated uncertainty (the fit
    then misses the model, and its spread is the better estimate; never scaled
    down). Jᵀ Σ⁻¹ J comes from the solver where it formed it at p (``a_sig``,
    finite there); elsewhere from G = ``g`` that the solver evaluated at p, by
    the same arithmetic (:func:`_normal_equations`). Exact three-point fits (the
    circle through them): no residual to speak of, so the estimator itself is
    differentiated in closed form (:func:`_arc3_covariance`), giving
    D = ∂p/∂data, and cov = D Σ Dᵀ. The interval of an exact fit is therefore
    as wide as the circle's sensitivity to its three points, never zero.
    """
    n = mr.shape[0]
    cov = np.full((n, 4, 4), np.nan)
    lsq = keep & ~exact
    if lsq.any():
        rows = _rows(np.nonzero(lsq)[0], n)
        ws = ww_sig[rows]
        pr = p[rows]
        e2 = er[rows] ** 2 if ei is None else er[rows] ** 2 + ei[rows] ** 2
        chi2 = np.einsum("nf,nf->n", e2, ws)  # Σ((Z_model − Z)/σ)²
        a = np.full((4, 4, pr.shape[0]), np.nan) if a_sig is None else a_sig[:, :, rows]
        build = np.nonzero(~np.isfinite(a).all((0, 1)))[0]
        if build.size:
            gr, gi = g[0][rows], g[1][rows]
            dr = pr[:, 0:1] - pr[:, 1:2]
            parts = (gr, gi, _take(logf, rows) - pr[:, 3:4], dr, pr[:, 2:3])
            zr, zi = pr[:, 1:2] + dr * gr, dr * gi  # the model at p, as _cole
            a[:, :, build] = _normal_equations(parts, zr, zi, None, None, magnitude, build, ws)[2]
        dof = (1 if magnitude else 2) * ok[rows].sum(-1) - 4
        ridge = 1e-12 * (np.maximum.reduce([a[i, i] for i in range(4)]) + 1e-300)
        for i in range(4):
            a[i, i] += ridge
        inv = _solve_spd(a, np.broadcast_to(np.eye(4)[:, :, None], a.shape))
        chi2 /= np.maximum(dof, 1)
        scale = np.where(dof > 0, np.maximum(chi2, 1.0), 1.0)
        cov[rows] = np.moveaxis(inv * scale, -1, 0)
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


def _where(ok: npt.NDArray[np.bool_], full: bool, x: npt.NDArray[Any], fill: float) -> Any:
    """``x`` where ``ok``, else ``fill``: ``x`` itself where every point is ok (``full``)."""
    return x if full else np.where(ok, x, fill)


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
        srt = np.sort(_where(finite, bool(finite.all()), d2, np.inf), axis=-1)
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
