"""Plain data shared by every layer: segments, impedances, readings.

Units are in the names. Reactance is signed as in Z = R + jX: negative means
capacitive, which is what tissue shows.
"""

from __future__ import annotations

import datetime as dt
import itertools
import operator
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import overload

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


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


_IMPEDANCE_KEY = operator.attrgetter("segment", "freq_khz")


class Impedances(Sequence[Impedance]):
    """A reading's impedance points as arrays, in one canonical order (segment, then
    frequency), so equal readings compare equal.

    A sequence of :class:`Impedance` to whoever iterates it (each point is built
    when read); the arrays are what the core, the plausibility check and the store
    read: ``segment`` (a tuple of names), ``freq_khz``, ``r_ohm``, ``x_ohm`` (NaN:
    no reactance) and ``magnitude_only``, all read-only. Why arrays: a reading
    kept in memory is then two objects for Python's garbage collector instead of
    twenty (18 points and their dicts), and its full passes over a batch of
    thousands of readings were half the time of decoding it.
    """

    __slots__ = ("freq_khz", "magnitude_only", "r_ohm", "segment", "x_ohm")

    segment: tuple[str, ...]
    freq_khz: FloatArray
    r_ohm: FloatArray
    x_ohm: FloatArray
    magnitude_only: BoolArray

    def __init__(
        self,
        segment: tuple[str, ...],
        freq_khz: FloatArray,
        r_ohm: FloatArray,
        x_ohm: FloatArray,
        magnitude_only: BoolArray,
    ) -> None:
        """Points already in canonical order (see :meth:`of` for any points)."""
        for a in (freq_khz, r_ohm, x_ohm, magnitude_only):
            a.flags.writeable = False
        self.segment = segment
        self.freq_khz = freq_khz
        self.r_ohm = r_ohm
        self.x_ohm = x_ohm
        self.magnitude_only = magnitude_only

    @classmethod
    def of(cls, points: Iterable[Impedance]) -> Impedances:
        """Points in any order, sorted into the canonical one."""
        pts = sorted(points, key=_IMPEDANCE_KEY)
        return cls(
            tuple(z.segment for z in pts),
            np.array([z.freq_khz for z in pts], dtype=float),
            np.array([z.r_ohm for z in pts], dtype=float),
            np.array([_NAN if z.x_ohm is None else z.x_ohm for z in pts], dtype=float),
            np.array([z.magnitude_only for z in pts], dtype=bool),
        )

    def __len__(self) -> int:
        return len(self.segment)

    @overload
    def __getitem__(self, i: int) -> Impedance: ...
    @overload
    def __getitem__(self, i: slice) -> tuple[Impedance, ...]: ...
    def __getitem__(self, i: int | slice) -> Impedance | tuple[Impedance, ...]:
        if isinstance(i, slice):
            return tuple(self)[i]
        x = float(self.x_ohm[i])
        return _point(
            self.segment[i],
            float(self.freq_khz[i]),
            float(self.r_ohm[i]),
            None if x != x else x,
            bool(self.magnitude_only[i]),
        )

    def __iter__(self) -> Iterator[Impedance]:
        return itertools.starmap(_point, self.records())

    def records(self) -> list[tuple[str, float, float, float | None, bool]]:
        """Every point as (segment, freq_khz, r_ohm, x_ohm or None, magnitude_only)."""
        xs = [None if x != x else x for x in self.x_ohm.tolist()]
        return list(
            zip(
                self.segment,
                self.freq_khz.tolist(),
                self.r_ohm.tolist(),
                xs,
                self.magnitude_only.tolist(),
                strict=True,
            )
        )

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Impedances):
            return (
                self.segment == other.segment
                and np.array_equal(self.freq_khz, other.freq_khz)
                and np.array_equal(self.r_ohm, other.r_ohm)
                and np.array_equal(self.x_ohm, other.x_ohm, equal_nan=True)
                and np.array_equal(self.magnitude_only, other.magnitude_only)
            )
        if isinstance(other, tuple | list):
            return tuple(self) == tuple(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Impedances({list(self)!r})"


_NAN = float("nan")
_new = object.__new__


def _point(
    segment: str, freq_khz: float, r_ohm: float, x_ohm: float | None, mag: bool
) -> Impedance:
    """An Impedance from stored, already validated values, without the frozen
    dataclass's ``__init__`` (half the time; iterating a batch builds many)."""
    z = _new(Impedance)
    d = z.__dict__
    d["segment"], d["freq_khz"], d["r_ohm"], d["x_ohm"], d["magnitude_only"] = (
        segment, freq_khz, r_ohm, x_ohm, mag
    )  # fmt: skip
    return z


NO_IMPEDANCE = Impedances.of(())


@dataclass(frozen=True, init=False)
class Reading:
    """What a device reported for one measurement, before any computation.

    ``measured_at`` is the device clock as sent, without a time zone.
    ``device_values`` holds what the device computed itself and every field
    this codec does not map, keyed by the device's own header, so nothing the
    device said is thrown away. ``control`` keeps protocol framing values
    (e.g. Tanita's ``{0,16,~0,1,...`` prefix) so a frame can be re-encoded.
    """

    model: str | None
    serial_number: str | None
    subject_id: str | None
    measured_at: dt.datetime | None
    sex: str | None  # "male" | "female"
    age_years: int | None
    height_cm: float | None
    weight_kg: float | None
    impedance: Impedances
    device_values: dict[str, float | int | str]
    control: tuple[tuple[str, str], ...]

    def __init__(
        self,
        model: str | None = None,
        serial_number: str | None = None,
        subject_id: str | None = None,
        measured_at: dt.datetime | None = None,
        sex: str | None = None,
        age_years: int | None = None,
        height_cm: float | None = None,
        weight_kg: float | None = None,
        impedance: Iterable[Impedance] = (),
        device_values: dict[str, float | int | str] | None = None,
        control: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """``impedance``: the points in any order (any iterable of :class:`Impedance`);
        kept as :class:`Impedances`, in canonical order."""
        put = object.__setattr__  # frozen
        put(self, "model", model)
        put(self, "serial_number", serial_number)
        put(self, "subject_id", subject_id)
        put(self, "measured_at", measured_at)
        put(self, "sex", sex)
        put(self, "age_years", age_years)
        put(self, "height_cm", height_cm)
        put(self, "weight_kg", weight_kg)
        if not isinstance(impedance, Impedances):
            impedance = Impedances.of(impedance) if impedance else NO_IMPEDANCE
        put(self, "impedance", impedance)
        put(self, "device_values", {} if device_values is None else device_values)
        put(self, "control", control)

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
