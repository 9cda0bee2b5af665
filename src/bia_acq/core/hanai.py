"""Hanai mixture theory: body water from R0 and R∞ (bioimpedance spectroscopy).

ECW (De Lorenzo et al. 1997, J Appl Physiol 82:1542, doi:10.1152/jappl.1997.82.5.1542):
    ECW [L] = k_ECW · (H²·√W / Re)^(2/3),  k_ECW = 10⁻² · (K_B²·ρ_ECW² / D_b)^(1/3)
with H in cm, W in kg, Re = R0 in Ω, ρ in Ω·cm, D_b in kg/L. The prefactor is
derived algebraically from the paper's equation [D].

ICW, second generation (Matthie 2005, J Appl Physiol 99:780,
doi:10.1152/japplphysiol.00145.2005), with x = ICW/ECW, s = R0/R∞,
kρ = ρ_ICW/ρ_ECW:
    1 + x = (kρ·s − (kρ − 1)·s^(1/3))^(2/3)
so ECW/TBW = 1/(1 + x) depends only on s and kρ, and can be computed for a
segment without its length.

ICW, first generation (the Xitron Hydra 4200 manual's form, as in De Lorenzo
1997): (1 + x)^(5/2) = s·(1 + kρ·x). Available as :func:`icw_ecw_ratio_first_generation`
and ``hanai_volumes(..., icw="first-generation")`` for comparison only: with
kρ ≈ 6.8 its only positive root is x ≳ 1.8 for every s > 1 (at s = 1 the
root besides 0 is x ≈ 1.8), i.e. ECW/TBW ≲ 0.36 and TBW near 95 % of body
weight whatever the spectrum: implausible with these constants, which is why
Matthie 2005 replaced it [D].

Segment volumes (:func:`segment_ecw`): the same Hanai relation for a uniform
cylinder of length L and tissue volume V_t, ECW = (ρ_ECW·L²/Re)^(2/3)·V_t^(1/3)
(the whole-body equation is this with V_t = W/D_b and the body-shape factor
K_B; for a single limb segment K_B = 1) [D]. L and V_t come from height and
weight with the anthropometric proportions of :mod:`bia_acq.core.anthropometry`.

Constants (ρ_ECW 40.5/39.0 Ω·cm, ρ_ICW 273.9/264.9 Ω·cm for men/women,
K_B 4.3, D_b 1.05 kg/L) are those quoted for the Xitron Hydra 4200 in the
secondary literature. Verification: NOT confirmed against De Lorenzo 1997
itself (the paper's full text was not found by this project's search of public
pages and documentation, November 2026); they stay [S] in PHYSIOLOGY.md. The
prefactor algebra and the limits of both ICW forms are checked in the tests [D].

Moissl et al. 2006 (Physiol Meas 27:921, doi:10.1088/0967-3334/27/9/012), the
Fresenius BCM method: ECW = k_ECW·(H²√W/Re)^(2/3) with k_ECW = 0.188/BMI + 0.2883,
ICW = k_ICW·(H²√W/Ri)^(2/3) with k_ICW = 5.8758/BMI + 0.4194, Ri = R0·R∞/(R0 − R∞)
(:func:`moissl_volumes`). Verification: the coefficients are as PHYSIOLOGY.md
quotes them [U]; the paper was not found in the public material searched, so
they are NOT confirmed. With typical inputs they give ECW within a few percent
of De Lorenzo's, which the tests check as a plausibility bound only.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]

K_B = 4.3
D_B_KG_PER_L = 1.05
RHO_ECW_OHM_CM = {"male": 40.5, "female": 39.0}
RHO_ICW_OHM_CM = {"male": 273.9, "female": 264.9}


def k_ecw(rho_ecw_ohm_cm: npt.ArrayLike, k_b: float = K_B, d_b: float = D_B_KG_PER_L) -> Array:
    """De Lorenzo's ECW prefactor 10⁻²·(K_B²·ρ_ECW²/D_b)^(1/3)."""
    rho = np.asarray(rho_ecw_ohm_cm, dtype=float)
    return 1e-2 * np.cbrt(k_b**2 * rho**2 / d_b)


def ecw_de_lorenzo(
    height_cm: npt.ArrayLike,
    weight_kg: npt.ArrayLike,
    re_ohm: npt.ArrayLike,
    rho_ecw_ohm_cm: npt.ArrayLike,
) -> Array:
    """Extracellular water in litres from whole-body Re = R0 (De Lorenzo 1997)."""
    h = np.asarray(height_cm, dtype=float)
    w = np.asarray(weight_kg, dtype=float)
    re = np.asarray(re_ohm, dtype=float)
    return np.asarray(k_ecw(rho_ecw_ohm_cm) * (h * h * np.sqrt(w) / re) ** (2.0 / 3.0), dtype=float)


def icw_ecw_ratio_matthie(s: npt.ArrayLike, k_rho: npt.ArrayLike) -> Array:
    """x = ICW/ECW from s = R0/R∞ (Matthie 2005, second generation)."""
    s_ = np.asarray(s, dtype=float)
    k = np.asarray(k_rho, dtype=float)
    inner = k * s_ - (k - 1.0) * np.cbrt(s_)
    return np.asarray(inner ** (2.0 / 3.0) - 1.0, dtype=float)


def icw_ecw_ratio_first_generation(
    s: npt.ArrayLike, k_rho: npt.ArrayLike, iterations: int = 64
) -> Array:
    """x = ICW/ECW from (1 + x)^(5/2) = s·(1 + kρ·x), first generation (implausible).

    The positive root, by bisection on x in [0, 100] (f(x) = (1 + x)^(5/2) −
    s(1 + kρx) is convex with f(0) ≤ 0 for s ≥ 1, so that root is unique). NaN
    where s < 1 or inputs are not finite. Kept to document why the second
    generation is the default; see the module docstring.
    """
    s_ = np.asarray(s, dtype=float)
    k = np.asarray(k_rho, dtype=float)
    shape = np.broadcast(s_, k).shape
    lo = np.zeros(shape)
    hi = np.full(shape, 100.0)
    # f < 0 on (0, root) (at s = 1 too, where x = 0 is the other root), f > 0 beyond
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        above = (1.0 + mid) ** 2.5 - s_ * (1.0 + k * mid) > 0
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid)
    x = 0.5 * (lo + hi)
    ok = np.isfinite(s_) & np.isfinite(k) & (s_ >= 1.0)
    return np.where(ok, x, np.nan)


def s_from_ecw_tbw(ratio: npt.ArrayLike, k_rho: npt.ArrayLike, iterations: int = 60) -> Array:
    """Inverse of the Matthie relation: the R0/R∞ that gives ``ratio`` = ECW/TBW.

    Solved by bisection on s in [1, 50] (the relation is monotonic in s); used
    by the simulator to make spectra with a known fluid status.
    """
    target = 1.0 / np.asarray(ratio, dtype=float) - 1.0
    k = np.asarray(k_rho, dtype=float)
    lo = np.ones(np.broadcast(target, k).shape)
    hi = np.full_like(lo, 50.0)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        high = icw_ecw_ratio_matthie(mid, k) > target
        hi = np.where(high, mid, hi)
        lo = np.where(high, lo, mid)
    return 0.5 * (lo + hi)


def rho(sex_male: npt.ArrayLike) -> tuple[Array, Array]:
    """(ρ_ECW, ρ_ICW) in Ω·cm for ``sex_male``: booleans, or "male"/"female" text."""
    raw = np.asarray(sex_male)
    m = raw == "male" if raw.dtype.kind in "UO" else raw.astype(bool)
    rho_e = np.where(m, RHO_ECW_OHM_CM["male"], RHO_ECW_OHM_CM["female"])
    rho_i = np.where(m, RHO_ICW_OHM_CM["male"], RHO_ICW_OHM_CM["female"])
    return rho_e, rho_i


def hanai_volumes(
    r0: npt.ArrayLike,
    rinf: npt.ArrayLike,
    height_cm: npt.ArrayLike,
    weight_kg: npt.ArrayLike,
    sex_male: npt.ArrayLike,
    *,
    icw: str = "matthie2005",
) -> tuple[Array, Array, Array]:
    """Whole-body (ECW, ICW, TBW) in litres from R0 and R∞, broadcasting.

    ``sex_male``: booleans (True for men) or "male"/"female" text.
    ``icw="matthie2005"`` (default, second generation) or ``"first-generation"``
    (documented as implausible, see the module docstring).
    """
    rho_e, rho_i = rho(sex_male)
    ecw = ecw_de_lorenzo(height_cm, weight_kg, r0, rho_e)
    s = np.asarray(r0, dtype=float) / np.asarray(rinf, dtype=float)
    if icw == "matthie2005":
        x = icw_ecw_ratio_matthie(s, rho_i / rho_e)
    elif icw == "first-generation":
        x = icw_ecw_ratio_first_generation(s, rho_i / rho_e)
    else:
        raise ValueError(f"unknown ICW form {icw!r}: use 'matthie2005' or 'first-generation'")
    icw_l = ecw * x
    return ecw, icw_l, ecw + icw_l


def segment_ecw(
    re_ohm: npt.ArrayLike,
    length_cm: npt.ArrayLike,
    tissue_volume_l: npt.ArrayLike,
    rho_ecw_ohm_cm: npt.ArrayLike,
) -> Array:
    """ECW (L) of a cylindrical segment: (ρ·L²/Re)^(2/3)·V_t^(1/3) (Hanai, K_B = 1).

    Units: (Ω·cm·cm²/Ω)^(2/3) = cm², V_t^(1/3) in L^(1/3) = 10 cm, so the
    product is in cm³·10 and the result in litres is ×10⁻² [D].
    """
    re = np.asarray(re_ohm, dtype=float)
    length = np.asarray(length_cm, dtype=float)
    rho_ = np.asarray(rho_ecw_ohm_cm, dtype=float)
    vt = np.asarray(tissue_volume_l, dtype=float)
    return np.asarray(
        1e-2 * (rho_ * length * length / re) ** (2.0 / 3.0) * np.cbrt(vt), dtype=float
    )


MOISSL_K_ECW = (0.188, 0.2883)  # k_ECW = a/BMI + b  [U]
MOISSL_K_ICW = (5.8758, 0.4194)  # k_ICW = a/BMI + b  [U]


def moissl_volumes(
    r0: npt.ArrayLike,
    rinf: npt.ArrayLike,
    height_cm: npt.ArrayLike,
    weight_kg: npt.ArrayLike,
) -> tuple[Array, Array, Array]:
    """Whole-body (ECW, ICW, TBW) in litres by Moissl et al. 2006 (BCM), broadcasting."""
    re = np.asarray(r0, dtype=float)
    rinf_ = np.asarray(rinf, dtype=float)
    h = np.asarray(height_cm, dtype=float)
    w = np.asarray(weight_kg, dtype=float)
    bmi = w / (h / 100.0) ** 2
    ri = re * rinf_ / (re - rinf_)
    size = h * h * np.sqrt(w)
    ecw = (MOISSL_K_ECW[0] / bmi + MOISSL_K_ECW[1]) * (size / re) ** (2.0 / 3.0)
    icw = (MOISSL_K_ICW[0] / bmi + MOISSL_K_ICW[1]) * (size / ri) ** (2.0 / 3.0)
    return ecw, icw, ecw + icw
