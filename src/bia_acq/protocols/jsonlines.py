"""Configurable JSON lines: one JSON object per line, field map in the profile.

Bridges (a microcontroller, a vendor's PC software re-emitting results) and some
analyzers send each measurement as one JSON object per line. Which keys hold
what differs per device, so the map lives in the device profile's ``options``
and a new device needs only a YAML file:

.. code-block:: yaml

    options:
      fields:                      # Reading attribute -> key (or {key, scale})
        subject_id: ID
        sex: Gender
        age_years: Age
        height_cm: {key: Height, scale: 1.0}
        weight_kg: Weight
        measured_at: Time
      sex_values: {M: male, F: female}
      time_format: "%Y-%m-%d %H:%M:%S"   # default: ISO 8601
      values:                      # device-computed values: our name -> key (or {key, scale})
        ECW: {key: ecw_ml, scale: 0.001}
      impedance:
        form: polar                # polar: |Z| and phase; rect: R and X
        magnitude: "I{seg}{khz}"   # polar keys; rect uses resistance/reactance
        phase: "Ph{seg}{khz}"
        phase_unit: deg            # deg or rad
        capacitive_phase_positive: true   # device sends +6.1 for X < 0
        scale_to_ohm: 1.0          # e.g. 1000 for a device that sends kOhm
        decimals: 1                # resolution the encoder (simulator) rounds to
        segments: {RA: right_arm, LA: left_arm}
        frequencies_khz: [5, 50, 250]

``values`` names device-computed numbers and converts their unit; every key
not in the map is kept in ``device_values`` as it came (nested values as JSON text),
so nothing the device sent is thrown away. Impedance in polar form is turned
into Z = R + jX with R = |Z|·cos φ and X = |Z|·sin φ (X negative for tissue).

Framing: one object per line, ended by LF (CR LF accepted); every line is a
frame, blank lines are junk, a line that is not a JSON object is rejected (and
kept in the journal) with the byte offset JSON parsing stopped at.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from typing import Any

from bia_acq.errors import FrameError
from bia_acq.model import Impedance, Reading
from bia_acq.protocols.base import Framer, Protocol

SUBJECT_FIELDS = (
    "model",
    "serial_number",
    "subject_id",
    "measured_at",
    "sex",
    "age_years",
    "height_cm",
    "weight_kg",
)
_NUMERIC = {"age_years", "height_cm", "weight_kg"}


class _Dup(ValueError):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _Dup(k)
        out[k] = v
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _key_spec(spec: Any) -> tuple[str, float]:
    if isinstance(spec, Mapping):
        return str(spec["key"]), float(spec.get("scale", 1.0))
    return str(spec), 1.0


def _keys_spec(spec: Any) -> tuple[tuple[str, ...], float]:
    """A field's key, ``{key, scale}``, or a list of keys tried in order (first one written)."""
    if isinstance(spec, list | tuple):
        return tuple(str(k) for k in spec), 1.0
    key, scale = _key_spec(spec)
    return (key,), scale


class JsonLinesProtocol(Protocol):
    """One JSON object per line; the profile's options say which key holds what."""

    name = "jsonlines"
    description = "JSON object per line, field map in the profile (bridges, Charder MA801)"
    expects = "one JSON object per line"

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        o = self.options
        #: Reading attribute -> (keys tried in order, scale)
        self.fields: dict[str, tuple[tuple[str, ...], float]] = {
            attr: _keys_spec(spec) for attr, spec in dict(o.get("fields", {})).items()
        }
        #: device-computed values under a name of the profile's choosing: name -> (key, scale)
        self.values: dict[str, tuple[str, float]] = {
            name: _key_spec(spec) for name, spec in dict(o.get("values", {})).items()
        }
        unknown = set(self.fields) - set(SUBJECT_FIELDS)
        if unknown:
            raise ValueError(f"unknown Reading field(s) in fields: {', '.join(sorted(unknown))}")
        self.sex_values = {str(k): str(v) for k, v in dict(o.get("sex_values", {})).items()}
        for v in self.sex_values.values():
            if v not in ("male", "female"):
                raise ValueError(f"sex_values must map to male or female, not {v!r}")
        self.sex_codes: dict[str, str] = {}
        for code, sex in self.sex_values.items():
            self.sex_codes.setdefault(sex, code)
        self.time_format: str | None = o.get("time_format")
        imp = dict(o.get("impedance", {}))
        self.form = str(imp.get("form", "rect"))
        if self.form not in ("rect", "polar"):
            raise ValueError(f"impedance.form must be rect or polar, not {self.form!r}")
        if self.form == "polar":
            self.key_a = str(imp.get("magnitude", "Z{seg}{khz}"))
            self.key_b = str(imp.get("phase", "P{seg}{khz}"))
        else:
            self.key_a = str(imp.get("resistance", "R{seg}{khz}"))
            self.key_b = str(imp.get("reactance", "X{seg}{khz}"))
        self.phase_rad = str(imp.get("phase_unit", "deg")) == "rad"
        self.phase_sign = -1.0 if imp.get("capacitive_phase_positive", False) else 1.0
        self.scale = float(imp.get("scale_to_ohm", 1.0))
        dec = imp.get("decimals")  # the device's resolution, for the encoder (simulator)
        self.decimals: int | None = None if dec is None else int(dec)
        self.segments = {str(k): str(v) for k, v in dict(imp.get("segments", {})).items()}
        self.freqs = [float(f) for f in imp.get("frequencies_khz", ())]
        # every impedance key the map knows: key -> (segment, kHz, "a" | "b")
        self._imp_keys: dict[str, tuple[str, float, str]] = {}
        for code, seg in self.segments.items():
            for f in self.freqs:
                khz = f"{f:g}"
                self._imp_keys[self.key_a.format(seg=code, khz=khz)] = (seg, f, "a")
                self._imp_keys[self.key_b.format(seg=code, khz=khz)] = (seg, f, "b")
        self._seg_code = {v: k for k, v in self.segments.items()}
        self.max_frame_bytes = int(o.get("max_frame_bytes", 65536))

    def framer(self) -> Framer:
        return Framer(max_len=self.max_frame_bytes)

    # -- decoding -----------------------------------------------------------
    def decode(self, frame: bytes) -> Reading:
        body = frame.rstrip(b"\r\n")
        if body.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark (a file's first line)
            body = b"   " + body[3:]  # blanks keep every byte offset
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FrameError("line is not UTF-8 text", exc.start) from None
        try:
            obj = json.loads(text, object_pairs_hook=_pairs, parse_constant=_no_constant)
        except _Dup as exc:
            raise FrameError(
                f"key {exc.args[0]!r} appears twice", _offset(text, exc.args[0], last=True)
            ) from None
        except json.JSONDecodeError as exc:
            raise FrameError(f"not JSON: {exc.msg}", len(text[: exc.pos].encode())) from None
        except (ValueError, RecursionError) as exc:
            raise FrameError(f"not JSON: {exc}", 0) from None
        if not isinstance(obj, dict):
            raise FrameError(f"a JSON {type(obj).__name__} is not an object", 0)
        return self._reading(obj, text)

    def _reading(self, obj: dict[str, Any], text: str) -> Reading:
        fields: dict[str, Any] = {}
        used: set[str] = set()
        values: dict[str, float | int | str] = {}
        for attr, (keys, scale) in self.fields.items():
            key = next((k for k in keys if obj.get(k) is not None), None)
            if key is None:
                continue
            used.add(key)
            v = obj[key]
            fields[attr] = self._field(attr, v, scale, key, text)
            if attr == "age_years" and v != fields[attr]:
                values[key] = v  # a fractional age (Charder: 20.66): completed years, as sent kept
        a_pts: dict[tuple[str, float], float] = {}
        b_pts: dict[tuple[str, float], float] = {}
        for key, (seg, f, which) in self._imp_keys.items():
            if key not in obj or obj[key] is None:
                continue
            v = obj[key]
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise FrameError(f"{key} must be a number, got {v!r}", _offset(text, key))
            used.add(key)
            (a_pts if which == "a" else b_pts)[(seg, f)] = float(v)
        points: list[Impedance] = []
        for (seg, f), a in a_pts.items():
            b = b_pts.pop((seg, f), None)
            if self.form == "rect":
                points.append(
                    Impedance(seg, f, a * self.scale, None if b is None else b * self.scale)
                )
            elif b is None:
                points.append(Impedance(seg, f, a * self.scale, None, magnitude_only=True))
            else:
                phi = self.phase_sign * (b if self.phase_rad else math.radians(b))
                mag = a * self.scale
                points.append(Impedance(seg, f, mag * math.cos(phi), mag * math.sin(phi)))
        for name, (key, scale) in self.values.items():
            if key not in obj or obj[key] is None:
                continue
            v = obj[key]
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise FrameError(f"{key} must be a number, got {v!r}", _offset(text, key))
            used.add(key)
            values[name] = v * scale if scale != 1.0 else v
        for (seg, f), b in b_pts.items():  # a phase or reactance without its partner: keep it
            values[(self.key_b).format(seg=self._seg_code[seg], khz=f"{f:g}")] = b
        for k, v in obj.items():
            if k in used:
                continue
            if isinstance(v, bool):
                values[k] = int(v)
            elif isinstance(v, int | float | str):
                values[k] = v
            elif v is not None:
                values[k] = json.dumps(v, sort_keys=True)
        return Reading(impedance=tuple(points), device_values=values, **fields)

    def _field(self, attr: str, v: Any, scale: float, key: str, text: str) -> Any:
        where = _offset(text, key)
        if attr == "sex":
            code = str(v)
            if code in self.sex_values:
                return self.sex_values[code]
            if code.lower() in ("male", "female"):
                return code.lower()
            raise FrameError(f"{key}: unknown sex code {v!r}", where)
        if attr == "measured_at":
            if not isinstance(v, str):
                raise FrameError(f"{key}: a date and time must be text, got {v!r}", where)
            try:
                t = (
                    dt.datetime.strptime(v, self.time_format)
                    if self.time_format
                    else dt.datetime.fromisoformat(v)
                )
            except ValueError:
                raise FrameError(f"{key}: {v!r} is not a date and time", where) from None
            return t.replace(tzinfo=None)  # the device clock is kept as sent, without a zone
        if attr in _NUMERIC:
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise FrameError(f"{key} must be a number, got {v!r}", where)
            if attr == "age_years":
                if v < 0:
                    raise FrameError(f"{key} must not be negative, got {v!r}", where)
                return int(v)  # completed years
            return float(v) * scale
        if isinstance(v, dict | list):
            raise FrameError(f"{key} must be text or a number", where)
        return str(v)

    # -- encoding -----------------------------------------------------------
    def encode(self, reading: Reading) -> bytes:
        obj: dict[str, Any] = {}
        for attr, (keys, scale) in self.fields.items():
            key = keys[0]
            v = getattr(reading, attr)
            if v is None:
                continue
            own = reading.device_values.get(key)
            if attr == "age_years" and isinstance(own, float) and int(own) == v:
                v = own  # the fractional age the device sent
            elif attr == "sex":
                v = self.sex_codes.get(v, v)
            elif attr == "measured_at":
                v = v.strftime(self.time_format) if self.time_format else v.isoformat()
            elif attr in ("height_cm", "weight_kg"):
                v = v / scale
            obj[key] = v
        for z in reading.impedance:
            code = self._seg_code[z.segment]
            khz = f"{z.freq_khz:g}"
            if self.form == "rect" or z.magnitude_only:
                obj[self.key_a.format(seg=code, khz=khz)] = z.r_ohm / self.scale
                if z.x_ohm is not None:
                    obj[self.key_b.format(seg=code, khz=khz)] = z.x_ohm / self.scale
            else:
                x = z.x_ohm or 0.0
                phi = math.atan2(x, z.r_ohm) * self.phase_sign
                mag = math.hypot(z.r_ohm, x) / self.scale
                ph = phi if self.phase_rad else math.degrees(phi)
                if self.decimals is not None:
                    mag, ph = round(mag, self.decimals), round(ph, self.decimals)
                obj[self.key_a.format(seg=code, khz=khz)] = mag
                obj[self.key_b.format(seg=code, khz=khz)] = ph
        for k, v in reading.device_values.items():
            if k in self.values and isinstance(v, int | float):
                key, scale = self.values[k]
                obj.setdefault(key, v / scale if scale != 1.0 else v)
            else:
                obj.setdefault(k, v)
        return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode() + b"\n"


def _offset(text: str, key: str, *, last: bool = False) -> int:
    """Byte offset of ``"key"`` in the line (0 if not found)."""
    quoted = json.dumps(key)
    i = text.rfind(quoted) if last else text.find(quoted)
    return len(text[:i].encode()) if i >= 0 else 0
