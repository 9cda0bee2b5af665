"""Regression equations for body water from whole-body (hand-to-foot) impedance at 50 kHz.

H height in cm, W weight in kg, R resistance and Xc reactance magnitude in Ω
at 50 kHz, age in years, sex 1 for men and 0 for women; results in litres.
Each function is a plain broadcast over arrays: with arrays in hand they cost
a few array passes (see bench/core.py).

* Sun et al. 2003, Am J Clin Nutr 77:331 (NHANES III reference equations,
  n = 1,829, ages 12–94): men TBW = 1.203 + 0.449·H²/R + 0.176·W;
  women TBW = 3.747 + 0.450·H²/R + 0.113·W.
  Verification: the abstract (PubMed 12540391) confirms the predictors
  (stature²/resistance and body weight), R² 0.84/0.79 and RMSE 3.8/2.6 L for
  men/women; the coefficients themselves are from secondary sources [S], NOT
  confirmed against the paper's table.
* Kushner et al. 1992, Am J Clin Nutr 56:835: TBW = 0.59·H²/R + 0.065·W + 0.04
  (RJL BIA-101, right-side tetrapolar). Verification: confirmed as quoted by
  the medicalalgorithms.com summary of the paper (secondary) [V-secondary];
  the paper itself was not retrieved.
* Lukaski & Bolonchuk 1988, Aviat Space Environ Med 59:1163:
  TBW = 0.377·H²/R + 0.14·W − 0.08·age + 2.9·sex + 4.65 (SEE 1.5 L);
  ECW = 0.189·H²/R + 0.052·W − 0.0002·H²/Xc + 1.03 (SEE 1.0 L).
  Verification: both confirmed as quoted by the medicalalgorithms.com
  summaries of the paper (secondary; R² 0.975 and 0.884) [V-secondary].

These equations were derived on single-frequency analyzers measuring the
right hand-to-foot path; their ECW/TBW ratio is on the InBody-style scale
(about 0.36–0.39 in health), not the Hanai-BIS scale (about 0.43).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]

SUN_2003 = {"male": (1.203, 0.449, 0.176), "female": (3.747, 0.450, 0.113)}  # a + b·H²/R + c·W
KUSHNER_1992 = (0.59, 0.065, 0.04)  # b·H²/R + c·W + a
LUKASKI_TBW = (0.377, 0.14, -0.08, 2.9, 4.65)  # H²/R, W, age, sex, constant
LUKASKI_ECW = (0.189, 0.052, -0.0002, 1.03)  # H²/R, W, H²/Xc, constant


def _f(a: npt.ArrayLike) -> Array:
    return np.asarray(a, dtype=float)


def tbw_sun_2003(
    height_cm: npt.ArrayLike, weight_kg: npt.ArrayLike, r50_ohm: npt.ArrayLike, male: npt.ArrayLike
) -> Array:
    """TBW (L), Sun et al. 2003, sex-specific."""
    h, w, r = _f(height_cm), _f(weight_kg), _f(r50_ohm)
    m = np.asarray(male, dtype=bool)
    am, bm, cm = SUN_2003["male"]
    af, bf, cf = SUN_2003["female"]
    hi = h * h / r
    return np.where(m, am + bm * hi + cm * w, af + bf * hi + cf * w)


def tbw_kushner_1992(
    height_cm: npt.ArrayLike, weight_kg: npt.ArrayLike, r50_ohm: npt.ArrayLike
) -> Array:
    """TBW (L), Kushner et al. 1992 (both sexes)."""
    h, w, r = _f(height_cm), _f(weight_kg), _f(r50_ohm)
    b, c, a = KUSHNER_1992
    return np.asarray(b * h * h / r + c * w + a, dtype=float)


def tbw_lukaski_bolonchuk(
    height_cm: npt.ArrayLike,
    weight_kg: npt.ArrayLike,
    r50_ohm: npt.ArrayLike,
    age_years: npt.ArrayLike,
    male: npt.ArrayLike,
) -> Array:
    """TBW (L), Lukaski & Bolonchuk 1988."""
    h, w, r, age = _f(height_cm), _f(weight_kg), _f(r50_ohm), _f(age_years)
    sex = np.asarray(male, dtype=float)
    ki, kw, ka, ks, k0 = LUKASKI_TBW
    return np.asarray(ki * h * h / r + kw * w + ka * age + ks * sex + k0, dtype=float)


def ecw_lukaski_bolonchuk(
    height_cm: npt.ArrayLike,
    weight_kg: npt.ArrayLike,
    r50_ohm: npt.ArrayLike,
    xc50_ohm: npt.ArrayLike,
) -> Array:
    """ECW (L), Lukaski & Bolonchuk 1988; ``xc50_ohm`` is the reactance magnitude."""
    h, w, r, xc = _f(height_cm), _f(weight_kg), _f(r50_ohm), np.abs(_f(xc50_ohm))
    ki, kw, kx, k0 = LUKASKI_ECW
    h2 = h * h
    return np.asarray(ki * h2 / r + kw * w + kx * h2 / xc + k0, dtype=float)
