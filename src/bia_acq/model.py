"""Plain data shared by every layer: segments, impedances, readings.

Units are in the names. Reactance is signed as in Z = R + jX: negative means
capacitive, which is what tissue shows.
"""

from __future__ import annotations

import datetime as dt
import operator
from dataclasses import dataclass, field
from enum import StrEnum


class Segment(StrEnum):
    """Body segments and measurement paths.

    The five segments are the usual segmental-BIA model (Organ et al. 1994).
    The paths are what hand-to-foot and foot-to-foot analyzers measure; Tanita
    codes them ``H`` and ``M`` (hand to foot, one per side; which side is which
    is of medium confidence in the public material) and ``F`` (leg to leg).
    ``whole_body`` is the segment results are reported for when a whole-body
    value is computed.
    """

    RIGHT_ARM = "right_arm"
    LEFT_ARM = "left_arm"
    TRUNK = "trunk"
    RIGHT_LEG = "right_leg"
    LEFT_LEG = "left_leg"
    WHOLE_BODY = "whole_body"
    WHOLE_BODY_RIGHT = "whole_body_right"
    WHOLE_BODY_LEFT = "whole_body_left"
    LEG_TO_LEG = "leg_to_leg"


LIMBS_AND_TRUNK = (
    Segment.RIGHT_ARM,
    Segment.LEFT_ARM,
    Segment.TRUNK,
    Segment.RIGHT_LEG,
    Segment.LEFT_LEG,
)


@dataclass(frozen=True)
class Impedance:
    """One impedance point: segment, frequency, resistance and (signed) reactance.

    ``magnitude_only``: the device measured only the magnitude |Z| (open-hardware
    sweeps such as OpenEIT; InBody's impedance at frequencies without a
    reactance column). Then ``r_ohm`` holds |Z| and ``x_ohm`` is None: the
    point is not a resistance, and methods that need R and X skip it with a
    note instead of using it as one.
    """

    segment: str
    freq_khz: float
    r_ohm: float
    x_ohm: float | None = None
    magnitude_only: bool = False

    def __post_init__(self) -> None:
        if self.magnitude_only and self.x_ohm is not None:
            raise ValueError("a magnitude-only impedance point has no reactance")


_new = object.__new__


def measured_point(segment: str, freq_khz: float, r_ohm: float, x_ohm: float | None) -> Impedance:
    """``Impedance(segment, freq_khz, r_ohm, x_ohm)`` (not magnitude-only, so there is
    nothing to validate), built without the frozen dataclass's ``__init__``: a
    decoder builds tens of these per frame and this takes half the time."""
    z = _new(Impedance)
    d = z.__dict__
    d["segment"], d["freq_khz"], d["r_ohm"], d["x_ohm"] = segment, freq_khz, r_ohm, x_ohm
    d["magnitude_only"] = False
    return z


@dataclass(frozen=True)
class Reading:
    """What a device reported for one measurement, before any computation.

    ``measured_at`` is the device clock as sent, without a time zone.
    ``device_values`` holds what the device computed itself and every field
    this codec does not map, keyed by the device's own header, so nothing the
    device said is thrown away. ``control`` keeps protocol framing values
    (e.g. Tanita's ``{0,16,~0,1,...`` prefix) so a frame can be re-encoded.
    """

    model: str | None = None
    serial_number: str | None = None
    subject_id: str | None = None
    measured_at: dt.datetime | None = None
    sex: str | None = None  # "male" | "female"
    age_years: int | None = None
    height_cm: float | None = None
    weight_kg: float | None = None
    impedance: tuple[Impedance, ...] = ()
    device_values: dict[str, float | int | str] = field(default_factory=dict)
    control: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        # one canonical order, so equal readings compare equal
        object.__setattr__(self, "impedance", tuple(sorted(self.impedance, key=_IMPEDANCE_KEY)))

    def to_json(self) -> dict[str, object]:
        """The reading as the JSON object ``bia-acq decode`` prints."""
        return {
            "model": self.model,
            "serial_number": self.serial_number,
            "measured_at": self.measured_at.isoformat() if self.measured_at else None,
            "subject_id": self.subject_id,
            "sex": self.sex,
            "age_years": self.age_years,
            "height_cm": self.height_cm,
            "weight_kg": self.weight_kg,
            "device_values": dict(self.device_values),
            "impedance": [_impedance_json(z) for z in self.impedance],
        }


_IMPEDANCE_KEY = operator.attrgetter("segment", "freq_khz")


def _impedance_json(z: Impedance) -> dict[str, object]:
    out: dict[str, object] = {
        "segment": z.segment,
        "freq_khz": z.freq_khz,
        "r_ohm": z.r_ohm,
        "x_ohm": z.x_ohm,
    }
    if z.magnitude_only:  # r_ohm is |Z|; the key appears only then
        out["magnitude_only"] = True
    return out
