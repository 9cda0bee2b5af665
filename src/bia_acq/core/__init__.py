"""Vectorised physiology: Cole fits, Hanai mixture theory, methods and results."""

from bia_acq.core.cole import CircleFit, circle_fit, cole_impedance
from bia_acq.core.compare import asymmetry, baseline_change, limb_asymmetry
from bia_acq.core.estimate import METHODS, RESULT_SEGMENTS, Bands, Method, Results, estimate
from bia_acq.core.fit import ColeFit, fit_cole
from bia_acq.core.hanai import ecw_de_lorenzo, hanai_volumes, icw_ecw_ratio_matthie

__all__ = [
    "METHODS",
    "RESULT_SEGMENTS",
    "Bands",
    "CircleFit",
    "ColeFit",
    "Method",
    "Results",
    "asymmetry",
    "baseline_change",
    "circle_fit",
    "cole_impedance",
    "ecw_de_lorenzo",
    "estimate",
    "fit_cole",
    "hanai_volumes",
    "icw_ecw_ratio_matthie",
    "limb_asymmetry",
]
