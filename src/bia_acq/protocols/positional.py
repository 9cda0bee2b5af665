"""Positional CSV lines: no headers, the meaning of each field is its position.

Older Tanita analyzers (BC-418 in PC mode, TBF-310) send one comma-separated
line per measurement, ended by CR LF, without headers or checksum. The column
map lives in the device profile (``options.columns``), so a new positional
device needs only a YAML file. Column names:

* ``date``, ``time``: the device clock, read with ``date_format`` and
  ``time_format`` (``strptime`` codes; defaults ``%d/%m/%Y`` and ``%H:%M``).
  A clock that does not parse is kept as sent in ``device_values``.
* ``sex`` (1 male, 2 female), ``age_years``, ``height_cm``, ``weight_kg``,
  ``subject_id``, ``model``, ``serial_number``.
* ``z:<segment>@<kHz>``: impedance magnitude |Z| (stored as ``r_ohm`` with no
  reactance and ``magnitude_only``); ``r:<segment>@<kHz>`` and ``x:<segment>@<kHz>``: resistance and
  signed reactance.
* ``-``: a field that is ignored.
* any other name: kept in ``device_values`` under that name (a number when
  it reads as one).

An empty field, or ``0`` in a numeric field, means "not measured". Fields may
be wrapped in double quotes. A line with the wrong number of fields, a
non-number in a numeric field or a byte that is not printable ASCII is a
:class:`~bia_acq.errors.FrameError` with the byte offset.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bia_acq.errors import FrameError
from bia_acq.model import Impedance, Reading, Segment
from bia_acq.protocols.base import Framer, Protocol

_TEXT_FIELDS = ("subject_id", "model", "serial_number")
_SEGMENTS = {s.value for s in Segment}


@dataclass(frozen=True)
class Column:
    kind: str  # "date", "time", "sex", "age_years", "height_cm", "weight_kg", text, "z"/"r"/"x", "value", "skip"
    name: str
    segment: str = ""
    freq_khz: float = 0.0


def parse_column(spec: object, index: int) -> Column:
    """One entry of ``options.columns``; ValueError with the reason if malformed."""
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"columns[{index}]: expected a column name, got {spec!r}")
    if spec == "-":
        return Column("skip", spec)
    if spec in ("date", "time", "sex", "age_years", "height_cm", "weight_kg", *_TEXT_FIELDS):
        return Column(spec, spec)
    qty, colon, rest = spec.partition(":")
    if colon and qty in ("z", "r", "x"):
        seg, at, freq = rest.partition("@")
        if seg not in _SEGMENTS or not at:
            raise ValueError(
                f"columns[{index}]: {spec!r} should be {qty}:<segment>@<kHz> with a segment "
                f"among {', '.join(sorted(_SEGMENTS))}"
            )
        try:
            f = float(freq)
        except ValueError:
            raise ValueError(f"columns[{index}]: frequency {freq!r} is not a number") from None
        if not f > 0:
            raise ValueError(f"columns[{index}]: frequency must be above 0 kHz")
        return Column(qty, spec, seg, f)
    return Column("value", spec)


def _number(text: str) -> int | float | None:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        v = float(text)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def _fmt_number(v: float | int) -> str:
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, int):
        return str(v)
    text = repr(float(v))
    return f"{v:.6f}" if "e" in text else text


class PositionalProtocol(Protocol):
    """One CSV line per measurement; the profile's ``columns`` say what each field is.

    Options: ``columns`` (required, see the module docs), ``separator``
    (default ``,``), ``date_format``, ``time_format``, ``max_frame_bytes``
    (default 4096), ``silence_s`` (default 2).
    """

    name = "positional"
    description = "Positional CSV lines without headers (Tanita BC-418 PC mode, TBF-310)"
    expects = "CSV lines of the profile's fields, one per measurement"

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        o = self.options
        cols = o.get("columns")
        if not isinstance(cols, list) or not cols:
            raise ValueError("positional protocol needs options.columns: a list of column names")
        self.columns = [parse_column(c, i) for i, c in enumerate(cols)]
        self.separator = str(o.get("separator", ","))
        if len(self.separator) != 1 or self.separator in '"\r\n':
            raise ValueError(f"separator must be one character, not {self.separator!r}")
        self.date_format = str(o.get("date_format", "%d/%m/%Y"))
        self.time_format = str(o.get("time_format", "%H:%M"))
        self.max_frame_bytes = int(o.get("max_frame_bytes", 4096))
        self.silence_s = float(o.get("silence_s", 2.0))

    def framer(self) -> Framer:
        return Framer(max_len=self.max_frame_bytes, silence_s=self.silence_s)

    # -- decoding ------------------------------------------------------------
    def decode(self, frame: bytes) -> Reading:
        body = frame[:-2] if frame.endswith(b"\r\n") else frame
        for i, b in enumerate(body):
            if b >= 0x80 or (b < 0x20 and b != 0x09):
                raise FrameError(f"byte 0x{b:02X} is not printable ASCII", i)
        text = body.decode("ascii")
        fields: list[tuple[str, int]] = []
        start = 0
        for part in text.split(self.separator):
            fields.append((part, start))
            start += len(part) + 1
        if len(fields) != len(self.columns):
            where = fields[len(self.columns)][1] if len(fields) > len(self.columns) else len(body)
            raise FrameError(f"expected {len(self.columns)} fields, got {len(fields)}", where)
        out: dict[str, Any] = {}
        values: dict[str, float | int | str] = {}
        r_pts: dict[tuple[str, float], float] = {}
        x_pts: dict[tuple[str, float], float] = {}
        z_pts: dict[tuple[str, float], float] = {}
        date_text = time_text = None
        for col, (raw, off) in zip(self.columns, fields, strict=True):
            t = raw.strip(" \t")
            if len(t) >= 2 and t[0] == t[-1] == '"':
                t = t[1:-1]
            elif '"' in t:
                raise FrameError("stray double quote", off + raw.index('"'))
            if t == "" or col.kind == "skip":
                continue
            if col.kind == "date":
                date_text = t
            elif col.kind == "time":
                time_text = t
            elif col.kind in _TEXT_FIELDS:
                out[col.kind] = t
            elif col.kind == "value":
                n = _number(t)
                values[col.name] = t if n is None else n
            else:
                n = _number(t)
                if n is None:
                    raise FrameError(f"field {col.name} = {t!r} is not a number", off)
                if col.kind == "sex":
                    if n not in (1, 2):
                        raise FrameError(f"sex {t!r} is neither 1 (male) nor 2 (female)", off)
                    out["sex"] = "male" if n == 1 else "female"
                elif col.kind == "age_years":
                    if not isinstance(n, int) or n < 0:
                        raise FrameError(f"age {t!r} is not a whole number of years", off)
                    out["age_years"] = n
                elif n == 0:
                    continue  # not measured
                elif col.kind in ("height_cm", "weight_kg"):
                    if n < 0:
                        raise FrameError(f"{col.name} {t!r} is negative", off)
                    out[col.kind] = float(n)
                elif col.kind == "x":
                    x_pts[(col.segment, col.freq_khz)] = float(n)
                else:  # "z" (a magnitude) or "r"
                    if n < 0:
                        raise FrameError(f"{col.name} {t!r} is negative", off)
                    (z_pts if col.kind == "z" else r_pts)[(col.segment, col.freq_khz)] = float(n)
        measured_at = None
        if date_text is not None:
            try:
                day = dt.datetime.strptime(date_text, self.date_format).date()
                clock = (
                    dt.datetime.strptime(time_text, self.time_format).time()
                    if time_text is not None
                    else dt.time(0, 0)
                )
                measured_at = dt.datetime.combine(day, clock)
            except ValueError:  # an odd device clock is kept, not a rejection
                values["date"] = date_text
                if time_text is not None:
                    values["time"] = time_text
        elif time_text is not None:
            values["time"] = time_text
        points = [Impedance(s, f, r, x_pts.pop((s, f), None)) for (s, f), r in r_pts.items()]
        for (s, f), z in z_pts.items():
            if (s, f) in r_pts:  # R (and X) win; |Z| is kept as sent
                values[f"z:{s}@{f:g}"] = z
            else:
                points.append(Impedance(s, f, z, None, magnitude_only=True))
        for (s, f), x in x_pts.items():
            values[f"x:{s}@{f:g}"] = x
        return Reading(
            impedance=tuple(points), device_values=values, measured_at=measured_at, **out
        )

    # -- encoding ------------------------------------------------------------
    def encode(self, reading: Reading) -> bytes:
        z_at = {(z.segment, z.freq_khz): z for z in reading.impedance}
        parts: list[str] = []
        for col in self.columns:
            v: object = None
            if col.kind == "date" and reading.measured_at is not None:
                v = reading.measured_at.strftime(self.date_format)
            elif col.kind == "time" and reading.measured_at is not None:
                v = reading.measured_at.strftime(self.time_format)
            elif col.kind == "sex" and reading.sex is not None:
                v = 1 if reading.sex == "male" else 2
            elif col.kind in ("age_years", "height_cm", "weight_kg", *_TEXT_FIELDS):
                v = getattr(reading, col.kind)
            elif col.kind in ("z", "r", "x"):
                z = z_at.get((col.segment, col.freq_khz))
                if z is not None:
                    if col.kind == "x":
                        v = None if z.magnitude_only else z.x_ohm
                    elif col.kind == "z" and not z.magnitude_only:  # the simulator's R, X
                        v = round(math.hypot(z.r_ohm, z.x_ohm or 0.0), 1)
                    elif col.kind == "z" or not z.magnitude_only:
                        v = z.r_ohm
            elif col.kind == "value":
                v = reading.device_values.get(col.name)
            if v is None:
                parts.append("")
            elif isinstance(v, str):
                if any(ch in v for ch in (self.separator, '"', "\r", "\n")) or not v.isascii():
                    raise ValueError(f"cannot encode text {v!r} in a positional field")
                parts.append(v)
            else:
                assert isinstance(v, int | float)
                parts.append(_fmt_number(v))
        return self.separator.join(parts).encode("ascii") + b"\r\n"
