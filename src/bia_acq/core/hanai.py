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

Constants (ρ_ECW 40.5/39.0 Ω·cm, ρ_ICW 273.9/264.9 Ω·cm for men/women,
K_B 4.3, D_b 1.05 kg/L) are those quoted for the Xitron Hydra 4200 in the
literature; status [U] in PHYSIOLOGY.md until confirmed against De Lorenzo 1997
(the core issue confirms them).
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
    """(ρ_ECW, ρ_ICW) in Ω·cm for a boolean array ``sex_male``."""
    m = np.asarray(sex_male, dtype=bool)
    rho_e = np.where(m, RHO_ECW_OHM_CM["male"], RHO_ECW_OHM_CM["female"])
    rho_i = np.where(m, RHO_ICW_OHM_CM["male"], RHO_ICW_OHM_CM["female"])
    return rho_e, rho_i


def hanai_volumes(
    r0: npt.ArrayLike,
    rinf: npt.ArrayLike,
    height_cm: npt.ArrayLike,
    weight_kg: npt.ArrayLike,
    sex_male: npt.ArrayLike,
) -> tuple[Array, Array, Array]:
    """Whole-body (ECW, ICW, TBW) in litres from R0 and R∞, broadcasting."""
    rho_e, rho_i = rho(sex_male)
    ecw = ecw_de_lorenzo(height_cm, weight_kg, r0, rho_e)
    x = icw_ecw_ratio_matthie(
        np.asarray(r0, dtype=float) / np.asarray(rinf, dtype=float), rho_i / rho_e
    )
    icw = ecw * x
    return ecw, icw, ecw + icw
