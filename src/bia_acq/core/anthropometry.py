"""Segment lengths and volumes from height and weight, for segmental Hanai volumes.

Segment lengths as fractions of standing height H are those of Drillis &
Contini 1966 (Body segment parameters, Report 1166-03, Office of Vocational
Rehabilitation, New York University), as redrawn in Winter, Biomechanics and
Motor Control of Human Movement (4th ed. 2009, fig. 4.1): upper arm 0.186 H,
forearm 0.146 H, thigh 0.245 H, leg (shank) 0.246 H, shoulder height 0.818 H,
hip (greater trochanter) height 0.530 H. The electrodes of a segmental
analyzer sit at wrist, ankle and the voltage points at the root of each limb,
so

* arm (wrist to shoulder) = 0.186 + 0.146 = 0.332 H,
* leg (ankle to hip) = 0.245 + 0.246 = 0.491 H (= 0.530 − 0.039 H ankle height),
* trunk (hip to shoulder) = 0.818 − 0.530 = 0.288 H.

Segment masses as fractions of body mass and their densities are Dempster's
(1955) as tabulated by Winter (table 4.1): upper arm 0.028 (1.07 kg/L), forearm
0.016 (1.13), thigh 0.100 (1.05), leg 0.0465 (1.09), trunk 0.497 (1.03).

Verification: the proportions were carried over from Winter's tables as quoted
in teaching material found by this project's search (Winter's mass fractions
and densities in a University of Rhode Island BME 207 handout that cites
Winter 2005; Drillis & Contini's figure is referenced there but its numbers
were not retrieved) [S]. They describe an average adult; a limb with edema
is heavier than its fraction of body weight, which the cube root in the
volume equation damps (a 10 % volume error moves ECW by about 3 %).
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]

#: segment length between the electrodes, fraction of height
LENGTH_FRACTION = MappingProxyType({"arm": 0.332, "leg": 0.491, "trunk": 0.288})

#: tissue volume in litres per kg of body mass: Σ mass fraction / density
VOLUME_PER_KG = MappingProxyType(
    {
        "arm": 0.028 / 1.07 + 0.016 / 1.13,
        "leg": 0.100 / 1.05 + 0.0465 / 1.09,
        "trunk": 0.497 / 1.03,
    }
)


def segment_length_cm(kind: str, height_cm: npt.ArrayLike) -> Array:
    """Electrode-to-electrode length of an ``arm``, ``leg`` or ``trunk`` in cm."""
    return np.asarray(LENGTH_FRACTION[kind] * np.asarray(height_cm, dtype=float), dtype=float)


def segment_volume_l(kind: str, weight_kg: npt.ArrayLike) -> Array:
    """Tissue volume of an ``arm``, ``leg`` or ``trunk`` in litres."""
    return np.asarray(VOLUME_PER_KG[kind] * np.asarray(weight_kg, dtype=float), dtype=float)
