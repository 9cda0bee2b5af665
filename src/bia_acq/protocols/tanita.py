"""Tanita key/value frames (MC-780, MC-980, SC-330, BC-601, ...).

Format, from the Tanita user manuals (MC-780 "Communication specifications",
MC-980 PC mode, SC-330) and public parsers of real output, summarised in
PROTOCOLS.md of the project's shared notes:

* ASCII, comma-separated ``header,value`` pairs, ended by CR LF; strings in
  double quotes, numbers unquoted (may be negative); ``0.0`` means "not measured".
* Starts with ``{`` and reserved control pairs (``0,16,~0,1,~1,1,~2,1,``).
* Ends with ``CS,hh``: the sum of every byte from ``{`` up to and including the
  comma before ``CS``, modulo 256, as two uppercase hex digits. Some devices put
  a ``}`` after the checksum.
* Headers are case-sensitive. Unknown headers are kept in ``device_values``.
* Impedance headers are two letters, quantity-at-frequency then segment
  (``R`` = R at 50 kHz, ``X`` = X at 50 kHz, ``r`` = right arm, ...); reactance
  and phase are negative.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from bia_acq.errors import FrameError
from bia_acq.model import Impedance, Reading, Segment
from bia_acq.protocols.base import Framer, Protocol

#: Impedance quantity letters: letter -> (quantity, frequency in kHz).
IMPEDANCE_PREFIX: dict[str, tuple[str, float]] = {
    "a": ("r", 1.0),
    "c": ("x", 1.0),
    "G": ("r", 5.0),
    "H": ("x", 5.0),
    "R": ("r", 50.0),
    "X": ("x", 50.0),
    "J": ("r", 250.0),
    "K": ("x", 250.0),
    "L": ("r", 500.0),
    "Q": ("x", 500.0),
    "i": ("r", 1000.0),
    "j": ("x", 1000.0),
}
#: Segment letters of impedance headers.
SEGMENT_SUFFIX: dict[str, Segment] = {
    "R": Segment.RIGHT_LEG,
    "L": Segment.LEFT_LEG,
    "r": Segment.RIGHT_ARM,
    "l": Segment.LEFT_ARM,
    "F": Segment.LEG_TO_LEG,
    "H": Segment.WHOLE_BODY_RIGHT,
    "M": Segment.WHOLE_BODY_LEFT,
}
_PREFIX_OF = {v: k for k, v in IMPEDANCE_PREFIX.items()}
_SUFFIX_OF = {v.value: k for k, v in SEGMENT_SUFFIX.items()}

DATE_KEYS = ("Da", "DT", "DA")
TIME_KEYS = ("TI", "Ti")
_SEX = {1: "male", 2: "female"}
_SEX_CODE = {v: k for k, v in _SEX.items()}
DEFAULT_CONTROL = (("0", "16"), ("~0", "1"), ("~1", "1"), ("~2", "1"))


def checksum(data: bytes) -> str:
    """Tanita checksum of ``data`` (from ``{`` through the comma before ``CS``)."""
    return f"{sum(data) % 256:02X}"


def _tokens(text: str, base: int) -> list[tuple[str, int, bool]]:
    """Split on commas outside double quotes: (token, offset, was_quoted)."""
    out: list[tuple[str, int, bool]] = []
    i, n = 0, len(text)
    while i <= n:
        start = i
        if i < n and text[i] == '"':
            j = text.find('"', i + 1)
            if j < 0:
                raise FrameError("unterminated quoted string", base + i)
            tok, quoted, i = text[i + 1 : j], True, j + 1
            if i < n and text[i] != ",":
                raise FrameError("text after a closing quote", base + i)
        else:
            j = text.find(",", i)
            j = n if j < 0 else j
            tok, quoted, i = text[i:j], False, j
            if '"' in tok:
                raise FrameError("stray double quote", base + start + tok.index('"'))
        out.append((tok, base + start, quoted))
        i += 1
    return out


def _number(tok: str) -> int | float | None:
    try:
        return int(tok)
    except ValueError:
        pass
    try:
        v = float(tok)
    except ValueError:
        return None
    if v != v or v in (float("inf"), float("-inf")):
        return None
    return v


def _fmt(v: object) -> str:
    if isinstance(v, str):
        if '"' in v or "{" in v or not v.isascii() or not v.isprintable():
            raise ValueError(f"cannot encode text {v!r} in a Tanita frame")
        return f'"{v}"'
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, int):
        return str(v)
    assert isinstance(v, float)
    text = repr(v)
    return f"{v:.6f}" if "e" in text else text


def _parse_date(key: str, text: str) -> dt.date:
    parts = text.split("/")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(text)
    a, b, c = (int(p) for p in parts)
    if key == "DA":  # yy/mm/dd (DC-320)
        return dt.date(2000 + a, b, c)
    if len(parts[0]) == 4:  # yyyy/mm/dd (MC-780A "DT")
        return dt.date(a, b, c)
    return dt.date(c, b, a)  # dd/mm/yyyy (MC-780, SC-330, MC-980 "Da"; BC-601 "DT")


def _parse_time(text: str) -> dt.time:
    parts = text.split(":")
    if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts):
        raise ValueError(text)
    hour, minute, *rest = (int(p) for p in parts)
    return dt.time(hour, minute, rest[0] if rest else 0)


class TanitaProtocol(Protocol):
    """Tanita key/value frames with checksum.

    Options (from the device profile):

    ``frequencies_khz``: frequencies the model measures (encoder writes these).
    ``unmeasured_khz``: frequencies the model sends as ``0.0`` (MC-780: 1, 500,
    1000 kHz). ``segments``: segment names the encoder writes.
    ``date_key``/``time_key``: which clock keys the encoder writes.
    ``checksum_brace``: write a ``}`` after the checksum.
    """

    name = "tanita"
    description = "Tanita key/value frames with CS checksum (MC-780, MC-980, SC-330, BC-601...)"

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        o = self.options
        self.max_frame_bytes = int(o.get("max_frame_bytes", 8192))
        self.silence_s = float(o.get("silence_s", 2.0))

    def framer(self) -> Framer:
        return Framer(
            start=b"{", end=b"\r\n", max_len=self.max_frame_bytes, silence_s=self.silence_s
        )

    # -- decoding -----------------------------------------------------------
    def decode(self, frame: bytes) -> Reading:
        body = frame.rstrip(b"\r\n")
        if not body.startswith(b"{"):
            raise FrameError("frame does not start with '{'", 0)
        for i, b in enumerate(body):
            if b >= 0x80 or (b < 0x20 and b != 0x09):
                raise FrameError(f"byte 0x{b:02X} is not printable ASCII", i)
        if body.endswith(b"}"):
            body = body[:-1]
        cs_at = body.rfind(b",CS,")
        if cs_at < 0:
            raise FrameError("no checksum field 'CS' at the end of the frame", len(body))
        given = body[cs_at + 4 :].decode("ascii")
        if len(given) != 2 or any(ch not in "0123456789ABCDEF" for ch in given):
            raise FrameError(f"checksum {given!r} is not two uppercase hex digits", cs_at + 4)
        expected = checksum(body[: cs_at + 1])
        if given != expected:
            raise FrameError(
                f"checksum mismatch: frame says {given}, bytes sum to {expected}", cs_at + 4
            )
        text = body[1:cs_at].decode("ascii")
        toks = _tokens(text, 1)
        if len(toks) % 2:
            raise FrameError("a header has no value", toks[-1][1])
        return self._fields(toks)

    def _fields(self, toks: list[tuple[str, int, bool]]) -> Reading:
        control: list[tuple[str, str]] = []
        values: dict[str, float | int | str] = {}
        seen: set[str] = set()
        r_pts: dict[tuple[str, float], float] = {}
        x_pts: dict[tuple[str, float], float] = {}
        fields: dict[str, Any] = {}
        date: tuple[str, str, int] | None = None
        time: tuple[str, int] | None = None
        for idx in range(0, len(toks), 2):
            key, koff, kquoted = toks[idx]
            raw, voff, quoted = toks[idx + 1]
            if kquoted or not key:
                raise FrameError("header is empty or quoted", koff)
            if key in seen:
                raise FrameError(f"header {key!r} appears twice", koff)
            seen.add(key)
            if key == "0" or key.startswith("~"):
                control.append((key, raw))
                continue
            value: int | float | str = raw
            if not quoted:
                number = _number(raw)
                if number is None:
                    raise FrameError(f"value {raw!r} of {key} is not a number", voff)
                value = number
                if isinstance(value, float) and value == 0.0:
                    continue  # 0.0 means "not measured"
            if key in DATE_KEYS:
                date = (key, str(raw), voff)
            elif key in TIME_KEYS:
                time = (str(raw), voff)
            elif key in ("MO", "SN", "ID"):
                fields[{"MO": "model", "SN": "serial_number", "ID": "subject_id"}[key]] = str(raw)
            elif key == "GE" and isinstance(value, int) and value in _SEX:
                fields["sex"] = _SEX[value]
            elif key == "AG" and isinstance(value, int):
                fields["age_years"] = value
            elif key in ("Hm", "Wk") and isinstance(value, int | float) and value > 0:
                fields["height_cm" if key == "Hm" else "weight_kg"] = float(value)
            elif (
                len(key) == 2
                and key[0] in IMPEDANCE_PREFIX
                and key[1] in SEGMENT_SUFFIX
                and isinstance(value, int | float)
            ):
                if value == 0:
                    continue  # not measured
                qty, freq = IMPEDANCE_PREFIX[key[0]]
                (r_pts if qty == "r" else x_pts)[(SEGMENT_SUFFIX[key[1]].value, freq)] = float(
                    value
                )
            else:
                values[key] = value
        measured_at = None
        if date is not None:
            try:
                day = _parse_date(date[0], date[1])
                clock = _parse_time(time[0]) if time else dt.time(0, 0)
                measured_at = dt.datetime.combine(day, clock)
            except ValueError:
                # an unset or odd device clock is kept as sent, not a rejection
                values[date[0]] = date[1]
                if time:
                    values["TI"] = time[0]
        elif time is not None:
            values["TI"] = time[0]
        points = []
        for seg_freq, r in r_pts.items():
            points.append(Impedance(seg_freq[0], seg_freq[1], r, x_pts.pop(seg_freq, None)))
        for (seg, freq), x in x_pts.items():  # a reactance without its resistance
            values[_PREFIX_OF[("x", freq)] + _SUFFIX_OF[seg]] = x
        return Reading(
            impedance=tuple(points),
            device_values=values,
            control=tuple(control),
            measured_at=measured_at,
            **fields,
        )

    # -- encoding -----------------------------------------------------------
    def encode(self, reading: Reading) -> bytes:
        o = self.options
        pairs: list[tuple[str, object]] = []
        if reading.model is not None:
            pairs.append(("MO", reading.model))
        if reading.serial_number is not None:
            pairs.append(("SN", reading.serial_number))
        if reading.subject_id is not None:
            pairs.append(("ID", reading.subject_id))
        if reading.measured_at is not None:
            date_key = str(o.get("date_key", "Da"))
            t = reading.measured_at
            date = {
                "Da": f"{t.day:02d}/{t.month:02d}/{t.year:04d}",
                "DT": f"{t.year:04d}/{t.month:02d}/{t.day:02d}",
                "DA": f"{t.year % 100:02d}/{t.month:02d}/{t.day:02d}",
            }[date_key]
            pairs.append((date_key, date))
            if o.get("time_key", "TI") == "Ti":
                pairs.append(("Ti", f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}"))
            else:
                pairs.append(("TI", f"{t.hour:02d}:{t.minute:02d}"))
        if reading.sex is not None:
            pairs.append(("GE", _SEX_CODE[reading.sex]))
        if reading.age_years is not None:
            pairs.append(("AG", reading.age_years))
        if reading.height_cm is not None:
            pairs.append(("Hm", float(reading.height_cm)))
        if reading.weight_kg is not None:
            pairs.append(("Wk", float(reading.weight_kg)))
        pairs.extend(reading.device_values.items())
        unmeasured = [float(f) for f in o.get("unmeasured_khz", ())]
        by_seg: dict[str, list[Impedance]] = {}
        for z in reading.impedance:
            by_seg.setdefault(z.segment, []).append(z)
        for seg, pts in by_seg.items():
            suffix = _SUFFIX_OF[seg]
            rows = [(z.freq_khz, z.r_ohm, z.x_ohm) for z in pts]
            rows += [(f, 0.0, 0.0) for f in unmeasured]
            for freq, r, x in sorted(rows, key=lambda row: row[0]):
                pairs.append((_PREFIX_OF[("r", freq)] + suffix, float(r)))
                if x is not None:
                    pairs.append((_PREFIX_OF[("x", freq)] + suffix, float(x)))
        control = "".join(f"{k},{v}," for k, v in reading.control or DEFAULT_CONTROL)
        head = "{" + control + "".join(f"{k},{_fmt(v)}," for k, v in pairs)
        data = head.encode("ascii")
        brace = b"}" if o.get("checksum_brace") else b""
        return data + b"CS," + checksum(data).encode() + brace + b"\r\n"
