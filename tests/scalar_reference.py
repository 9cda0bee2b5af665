"""Plain-Python reference implementation of every method, used only by tests.

One measurement at a time, the ``math`` module only, constants typed again
from the sources (PHYSIOLOGY.md and the docstrings' citations) rather than
imported, so a slip in the vectorised core cannot hide in both.
"""

from __future__ import annotations

import math

SEGMENTS = ("right_arm", "left_arm", "trunk", "right_leg", "left_leg", "whole_body")
KIND = {
    "right_arm": "arm",
    "left_arm": "arm",
    "trunk": "trunk",
    "right_leg": "leg",
    "left_leg": "leg",
}
LENGTH = {"arm": 0.186 + 0.146, "leg": 0.245 + 0.246, "trunk": 0.818 - 0.530}  # × height
VOLUME = {  # L per kg: Σ mass fraction / density (Dempster via Winter)
    "arm": 0.028 / 1.07 + 0.016 / 1.13,
    "leg": 0.100 / 1.05 + 0.0465 / 1.09,
    "trunk": 0.497 / 1.03,
}

Row = dict[str, float | None]


def _hanai_x(s: float, k_rho: float) -> float:
    return (k_rho * s - (k_rho - 1.0) * s ** (1.0 / 3.0)) ** (2.0 / 3.0) - 1.0


def hanai_bis(
    r0: dict[str, float], rinf: dict[str, float], height: float, weight: float, male: bool
) -> dict[str, Row]:
    rho_e = 40.5 if male else 39.0
    rho_i = 273.9 if male else 264.9
    out: dict[str, Row] = {}
    for seg in SEGMENTS:
        x = _hanai_x(r0[seg] / rinf[seg], rho_i / rho_e)
        if seg == "whole_body":
            k = 1e-2 * (4.3**2 * rho_e**2 / 1.05) ** (1.0 / 3.0)
            ecw = k * (height**2 * math.sqrt(weight) / r0[seg]) ** (2.0 / 3.0)
        else:
            length = LENGTH[KIND[seg]] * height
            vol = VOLUME[KIND[seg]] * weight
            ecw = 1e-2 * (rho_e * length**2 / r0[seg]) ** (2.0 / 3.0) * vol ** (1.0 / 3.0)
        out[seg] = {"ecw": ecw, "icw": ecw * x, "tbw": ecw * (1 + x), "ratio": 1.0 / (1.0 + x)}
    return out


def moissl_2006(r0: float, rinf: float, height: float, weight: float) -> Row:
    bmi = weight / (height / 100.0) ** 2
    ri = r0 * rinf / (r0 - rinf)
    size = height**2 * math.sqrt(weight)
    ecw = (0.188 / bmi + 0.2883) * (size / r0) ** (2.0 / 3.0)
    icw = (5.8758 / bmi + 0.4194) * (size / ri) ** (2.0 / 3.0)
    return {"ecw": ecw, "icw": icw, "tbw": ecw + icw, "ratio": ecw / (ecw + icw)}


def sun_2003(r50: float, height: float, weight: float, male: bool) -> Row:
    hi = height**2 / r50
    tbw = 1.203 + 0.449 * hi + 0.176 * weight if male else 3.747 + 0.450 * hi + 0.113 * weight
    return {"ecw": None, "icw": None, "tbw": tbw, "ratio": None}


def kushner_1992(r50: float, height: float, weight: float) -> Row:
    return {
        "ecw": None,
        "icw": None,
        "tbw": 0.59 * height**2 / r50 + 0.065 * weight + 0.04,
        "ratio": None,
    }


def lukaski_bolonchuk(
    r50: float, xc50: float, height: float, weight: float, age: float, male: bool
) -> Row:
    h2 = height**2
    tbw = 0.377 * h2 / r50 + 0.14 * weight - 0.08 * age + 2.9 * (1 if male else 0) + 4.65
    ecw = 0.189 * h2 / r50 + 0.052 * weight - 0.0002 * h2 / abs(xc50) + 1.03
    return {"ecw": ecw, "icw": tbw - ecw, "tbw": tbw, "ratio": ecw / tbw}


def phase_deg(r: float, x: float) -> float:
    return math.degrees(math.atan2(-x, r))
