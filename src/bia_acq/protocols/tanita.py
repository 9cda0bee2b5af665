"""Tanita key/value frames (MC-780, MC-980, SC-330, BC-601, ...).

Format, from the Tanita user manuals (MC-780 "Communication specifications",
MC-980 PC mode, SC-330) and public parsers of real output, summarised in
PROTOCOLS.md of the project's shared notes:

* ASCII, comma-separated ``header,value`` pairs, ended by CR LF; strings in
  double quotes, numbers unquoted (may be negative); ``0.0`` means "not measured".
* Starts with ``{`` and reserved control pairs (``0,16,~0,1,~1,1,~2,1,``).
* Ends with ``CS,hh``: the sum of every byte from ``{`` up to and including the
  comma before ``CS``, modulo 256, as two uppercase hex digits. Some devices put
  a ``}`` or a ``"`` (an MC-780A's weight-only frame, tests/data/real/) after it.
* Headers are case-sensitive. Unknown headers are kept in ``device_values``.
* Impedance headers are two letters, quantity-at-frequency then segment
  (``R`` = R at 50 kHz, ``X`` = X at 50 kHz, ``r`` = right arm, ...); reactance
  and phase are negative.

Carried over from the manuals (facts only; the full table is in
``docs/protocols.md``):

* MC-980MA "Instructions for PC mode", output data format version 20101019:
  the same control prefix, ``MO`` 8 bytes, ``ID`` 16 digits (all zeros when not
  used), ``St`` status, ``Da``/``TI``, ``Bt``, ``GE``, ``AG``, ``Hm``, ``Pt``,
  ``Wk``, ``FW``, ``fW``, ``MW``, ``mW``, ``sW`` (muscle score -4..4), ``bW``,
  ``wW``, ``ww``, ``wI``...
* SC-240 / SC-330 instruction manuals, "Connection with a personal computer":
  a foot-to-foot analyzer sends ``ZF`` (impedance at 50 kHz, ohm, one decimal)
  besides ``Sw`` (ideal weight), ``OV`` (degree of obesity %), ``IF``, ``rb``
  (BMR kJ), ``rB`` (BMR kcal), ``rJ`` (BMR score), ``rA`` (metabolic age); the
  sample output has ``Hm,170`` without decimals.
* HD-351BT and WB-3000 manuals: in pound mode weight comes as ``Wp`` (lb) or
  ``Ws`` (``st.lb``, e.g. ``11.05.2`` = 11 st 5.2 lb) and height as ``Hf``
  (feet and inches); some scales send an irrelevant signal about 0.1 s after
  the data, to be ignored.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import operator
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from bia_acq.errors import FrameError
from bia_acq.model import Impedance, Impedances, Reading, Segment
from bia_acq.protocols.base import IN_CM, LB_KG, Framer, Protocol

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
#: Impedance-magnitude letters of single-frequency analyzers: letter -> kHz.
#: The SC-240/SC-330 send ``ZF``, |Z| at 50 kHz foot to foot. Decoded as an
#: Impedance with ``r_ohm`` = |Z|, no reactance and ``magnitude_only``.
MAGNITUDE_PREFIX: dict[str, float] = {"Z": 50.0}
#: Phase-angle letters: letter -> kHz. Device-computed, kept in device_values.
PHASE_PREFIX: dict[str, float] = {"p": 50.0}

#: General codes: header -> meaning (unit). Mapped ones become Reading fields;
#: the rest are kept in ``device_values`` under the same header.
GENERAL_CODES: dict[str, str] = {
    "MO": "model",
    "SN": "serial number",
    "ID": "subject ID (all zeros when not used)",
    "St": "measurement status (0 normal end, 1 segmental measurement error)",
    "Da": "date dd/mm/yyyy",
    "DT": "date yyyy/mm/dd (MC-780A) or dd/mm/yyyy (BC-601)",
    "DA": "date yy/mm/dd (DC-320)",
    "TI": "time hh:mm",
    "Ti": "time hh:mm:ss (BC-601)",
    "Bt": "body type (0 standard, 2 athletic)",
    "GE": "sex (1 male, 2 female)",
    "AG": "age (years)",
    "Hm": "height (cm)",
    "Hf": "height (feet and inches, pound mode)",
    "Pt": "preset tare, clothes (kg)",
    "Wk": "weight (kg)",
    "Wp": "weight (lb)",
    "Ws": "weight (stone and pounds)",
    "FW": "fat (%)",
    "fW": "fat mass (kg)",
    "MW": "fat-free mass (kg)",
    "mW": "muscle mass (kg)",
    "sW": "muscle score",
    "bW": "bone mass (kg)",
    "wW": "total body water (kg)",
    "ww": "total body water (%)",
    "wI": "intracellular water (kg)",
    "wO": "extracellular water (kg)",
    "wo": "ECW/TBW (%)",
    "MI": "BMI",
    "Sw": "ideal body weight (kg)",
    "OV": "degree of obesity (%)",
    "IF": "visceral fat rating",
    "rB": "BMR (kcal)",
    "rb": "BMR (kJ)",
    "rJ": "BMR score",
    "rA": "metabolic age (years)",
    "AL": "activity level (BC-601)",
    "CS": "checksum",
}
#: Segmental composition: quantity letter + segment letter (e.g. ``FR`` fat % right leg).
COMPOSITION_QUANTITY: dict[str, str] = {
    "F": "fat (%)",
    "f": "fat mass (kg)",
    "M": "fat-free mass (kg)",
    "m": "muscle mass (kg)",
    "S": "fat score",
    "s": "muscle score",
}
COMPOSITION_SEGMENT: dict[str, str] = {
    "R": "right leg",
    "L": "left leg",
    "r": "right arm",
    "l": "left arm",
    "T": "trunk",
}

#: Masses a BC-601 in pound mode sends in pounds (everything in kg in GENERAL_CODES
#: and COMPOSITION_QUANTITY): converted to kg, the device's number kept as ``<key>_lb``.
MASS_KEYS = frozenset(
    {"Pt", "fW", "MW", "mW", "bW", "wW", "wI", "wO", "Sw"} | {q + s for q in "fMm" for s in "RLrlT"}
)
ST_LB = 14
_PREFIX_OF = {v: k for k, v in IMPEDANCE_PREFIX.items()}
_MAG_OF = {v: k for k, v in MAGNITUDE_PREFIX.items()}
_SUFFIX_OF = {v.value: k for k, v in SEGMENT_SUFFIX.items()}

DATE_KEYS = ("Da", "DT", "DA")
TIME_KEYS = ("TI", "Ti")
_SEX = {1: "male", 2: "female"}
_SEX_CODE = {v: k for k, v in _SEX.items()}
DEFAULT_CONTROL = (("0", "16"), ("~0", "1"), ("~1", "1"), ("~2", "1"))


_BAD_BYTE = re.compile(rb"[^\t\x20-\x7e]")
_PRINTABLE = bytes([0x09, *range(0x20, 0x7F)])  # what _BAD_BYTE does not match
_INFINITIES = (math.inf, -math.inf)
#: every impedance header -> (is resistance, (segment, kHz))
_IMP_KEY: dict[str, tuple[bool, tuple[str, float]]] = {
    p + s: (qty == "r", (seg.value, freq))
    for p, (qty, freq) in IMPEDANCE_PREFIX.items()
    for s, seg in SEGMENT_SUFFIX.items()
}

_IMP_KEYSET = frozenset(_IMP_KEY)
#: (phase header, segment, kHz) pairs the consistency check compares with atan(X/R)
_PHASE_CHECKS = [
    (p + s, seg.value, freq)
    for p, freq in PHASE_PREFIX.items()
    for s, seg in SEGMENT_SUFFIX.items()
]
#: headers the per-pair loop treats specially; any other is a plain device value
_SPECIAL = frozenset(
    {"", "0", "Ws", "Hf", "MO", "SN", "ID", "GE", "AG", "Hm", "Wk", "Wp", *DATE_KEYS, *TIME_KEYS}
    | set(_IMP_KEY)
    | {m + s for m in MAGNITUDE_PREFIX for s in SEGMENT_SUFFIX}
)
_R_KEY = {k: sf for k, (is_r, sf) in _IMP_KEY.items() if is_r}
_X_KEY = {k: sf for k, (is_r, sf) in _IMP_KEY.items() if not is_r}
_R_KEYSET = frozenset(_R_KEY)
_X_KEYSET = frozenset(_X_KEY)


class _FieldError(Exception):
    """A field problem, located by token index (turned into a byte offset by decode)."""

    def __init__(self, reason: str, index: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.index = index


def _split_simple(text: str) -> tuple[list[str], set[int]] | None:
    """Split on commas when every quoted string is a whole token without commas.

    Returns (tokens with quotes removed, indices of quoted tokens), or None when
    the careful tokenizer is needed (it also gives the byte offset of an error).
    """
    parts = text.split(",")
    quoted: set[int] = set()
    i = text.find('"')
    while i >= 0:
        j = text.find('"', i + 1)
        if j < 0 or (i > 0 and text[i - 1] != ",") or (j + 1 < len(text) and text[j + 1] != ","):
            return None
        if "," in text[i:j]:
            return None
        k = text.count(",", 0, i)
        parts[k] = text[i + 1 : j]
        quoted.add(k)
        i = text.find('"', j + 1)
    return parts, quoted


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
    if "." not in tok:  # int() never takes a decimal point: skip its exception
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


#: headers whose value identifies a person: a reason never quotes it (it is logged)
IDENTIFIER_KEYS = frozenset({"ID"})


def _value_of(key: str, raw: str) -> str:
    """``value '12x' of Hm`` for a rejection reason; never the value of an identifier."""
    return f"value of {key}" if key in IDENTIFIER_KEYS else f"value {raw!r} of {key}"


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


DATE_ORDERS = ("dmy", "mdy", "ymd", "auto")


class AmbiguousDate(ValueError):
    """A date that reads as a valid day both as dd/mm and as mm/dd."""


def parse_date(key: str, text: str, order: str = "dmy") -> tuple[dt.date, str | None]:
    """A Tanita date -> (date, warning or None); ValueError if it is no date at all.

    ``DA`` is yy/mm/dd (DC-320); a four-digit first part is yyyy/mm/dd (MC-780A
    ``DT``); otherwise ``order`` says which of day and month comes first: ``dmy``
    (the manuals: MC-780, SC-330, MC-980 ``Da``, most BC-601 units), ``mdy``
    (BC-601 units set to US format), or ``auto``: inferred where one reading is
    impossible (a first part above 12 is a day, a second part above 12 is a
    day), AmbiguousDate where both are valid days. With ``dmy`` or ``mdy`` a date
    impossible in that order but valid in the other is read in the other, with
    a warning.
    """
    parts = text.split("/")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(text)
    a, b, c = (int(p) for p in parts)
    if key == "DA":  # yy/mm/dd (DC-320)
        return dt.date(2000 + a, b, c), None
    if len(parts[0]) == 4 or order == "ymd":  # yyyy/mm/dd (MC-780A "DT")
        return dt.date(a, b, c), None
    dmy = _date_or_none(c, b, a)
    mdy = _date_or_none(c, a, b)
    if order == "auto":
        if dmy and mdy and dmy != mdy:
            raise AmbiguousDate(text)
        found = dmy or mdy
        if found is None:
            raise ValueError(text)
        return found, None
    first, other, name = (dmy, mdy, "mm/dd/yyyy") if order == "dmy" else (mdy, dmy, "dd/mm/yyyy")
    if first is not None:
        return first, None
    if other is not None:
        want = "dd/mm/yyyy" if order == "dmy" else "mm/dd/yyyy"
        return (
            other,
            f"date {key} {text!r} is not {want} (the profile's date_order); read as {name}",
        )
    raise ValueError(text)


def _date_or_none(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def describe(key: str) -> str | None:
    """What a Tanita header means, from the code table; None if unknown."""
    if key in GENERAL_CODES:
        return GENERAL_CODES[key]
    if len(key) == 2:
        q, s = key[0], key[1]
        if q in IMPEDANCE_PREFIX and s in SEGMENT_SUFFIX:
            qty, freq = IMPEDANCE_PREFIX[q]
            name = "resistance" if qty == "r" else "reactance"
            return f"{name} at {freq:g} kHz, {SEGMENT_SUFFIX[s].value} (ohm)"
        if q in MAGNITUDE_PREFIX and s in SEGMENT_SUFFIX:
            return f"impedance |Z| at {MAGNITUDE_PREFIX[q]:g} kHz, {SEGMENT_SUFFIX[s].value} (ohm)"
        if q in PHASE_PREFIX and s in SEGMENT_SUFFIX:
            return f"phase angle at {PHASE_PREFIX[q]:g} kHz, {SEGMENT_SUFFIX[s].value} (degrees)"
        if q in COMPOSITION_QUANTITY and s in COMPOSITION_SEGMENT:
            return f"{COMPOSITION_QUANTITY[q]}, {COMPOSITION_SEGMENT[s]}"
    return None


_FT_IN = re.compile(r"(\d{1,2})['.](\d{1,2}(?:\.\d+)?)")
_ST_LB = re.compile(r"(\d{1,3})\.(\d{1,2}(?:\.\d+)?)")


def parse_feet_inches(text: str) -> float:
    """``5'07.5`` or ``5.07.5`` (feet, inches) -> centimetres. ValueError if not."""
    m = _FT_IN.fullmatch(text)
    if m is None or float(m[2]) >= 12:
        raise ValueError(text)
    return (int(m[1]) * 12 + float(m[2])) * IN_CM


def parse_stone_pounds(text: str) -> float:
    """``11.05.2`` (stone, pounds) -> kilograms. ValueError if not."""
    m = _ST_LB.fullmatch(text)
    if m is None or float(m[2]) >= ST_LB:
        raise ValueError(text)
    return (int(m[1]) * ST_LB + float(m[2])) * LB_KG


def _parse_time(text: str) -> dt.time:
    parts = text.split(":")
    if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts):
        raise ValueError(text)
    hour, minute, *rest = (int(p) for p in parts)
    return dt.time(hour, minute, rest[0] if rest else 0)


@functools.lru_cache(maxsize=1024)
def _device_clock(
    date_key: str, date: str, order: str, time: str | None
) -> tuple[dt.datetime, str | None]:
    """The device clock of a frame and a note when read in the other order (ValueError,
    AmbiguousDate if unset, odd or ambiguous); cached, since a device sends the same
    date all day and the same minute for every frame in it."""
    day, note = parse_date(date_key, date, order)
    return dt.datetime.combine(day, _parse_time(time) if time else dt.time(0, 0)), note


def _is_plain(key: str, j: int, quoted: set[int]) -> bool:
    """A plain device value (fat %, water, phase, ...): a number under an ordinary header."""
    return (
        key not in _SPECIAL and key[:1] != "~" and not (quoted and (j in quoted or j + 1 in quoted))
    )


class _Plan:
    """What ``_fields`` does with each pair of one header sequence, worked out once.

    ``pairs``: per impedance point (segment, kHz, index of R, index of X or -1)
    into the values ``impedance`` returns, in the Reading's canonical order;
    ``rest``: (token index, plain) of the other pairs in frame order; ``every``:
    the same for all pairs.
    """

    __slots__ = ("_get", "_idx", "_patterns", "every", "pairs", "rest")

    def __init__(self, keys: list[str], quoted: set[int]) -> None:
        skip = {i // 2 for i in quoted}  # pairs with a quoted token: the per-pair loop
        imp = {k: i for i, k in enumerate(keys) if k in _IMP_KEYSET and i not in skip}
        order: list[int] = []  # value indices for the itemgetter
        pairs: list[tuple[str, float, int, int]] = []
        by_sf = {_IMP_KEY[k][1]: k for k in imp if _IMP_KEY[k][0]}  # R headers
        x_of = {_IMP_KEY[k][1]: k for k in imp if not _IMP_KEY[k][0]}
        for sf in sorted({**by_sf, **x_of}):  # the Reading's order: its sort finds them sorted
            r_key, x_key = by_sf.get(sf), x_of.get(sf)
            ri = xi = -1
            if r_key is not None:
                ri = len(order)
                order.append(imp[r_key])
            if x_key is not None:
                xi = len(order)
                order.append(imp[x_key])
            if ri < 0:  # a reactance header without its resistance header
                ri = len(order)
                order.append(-1)  # reads as "0": not measured
            pairs.append((sf[0], sf[1], ri, xi))
        idx = [2 * i + 1 for i in order]
        self._idx = idx
        self._get = operator.itemgetter(*idx) if len(idx) > 1 and -1 not in order else None
        self.pairs = tuple(pairs)
        #: per pattern of values that are 0 (not measured): the indices to take
        self._patterns: dict[bytes, _Pattern] = {}
        self.every = tuple((2 * i, _is_plain(k, 2 * i, quoted)) for i, k in enumerate(keys))
        done = set(imp)
        self.rest = tuple(p for p in self.every if keys[p[0] // 2] not in done)

    def points(self, vals: list[float]) -> tuple[Impedances, list[tuple[str, float, float]]]:
        """The measured points of a frame's impedance values (R not 0; an X of 0: no
        reactance) and the reactances sent without their resistance (segment, kHz, X).

        Which values are 0 follows a pattern a device repeats in every frame (it
        leaves out the same frequencies): the indices for each pattern are worked
        out once, so a frame costs one array and two takes."""
        v = np.array(vals)
        key = (v != 0).tobytes()
        pattern = self._patterns.get(key)
        if pattern is None:
            if len(self._patterns) >= 64:
                self._patterns.clear()
            pattern = self._patterns[key] = _Pattern(self.pairs, v != 0)
        r, x = v[pattern.r_at], v[pattern.x_at]
        if pattern.no_x:
            x[pattern.no_x] = np.nan
        lone = [(seg, freq, vals[i]) for seg, freq, i in pattern.lone]
        return Impedances(pattern.segments, pattern.freq_khz, r, x, pattern.magnitude_only), lone

    def impedance(self, parts: list[str]) -> list[float] | None:
        """The impedance values of a frame as floats; None if one is not a finite number."""
        try:
            if self._get is not None:
                vals = list(map(float, self._get(parts)))
            else:  # one value, or a reactance without its resistance header (R reads 0)
                vals = [float(parts[i]) if i > 0 else 0.0 for i in self._idx]
        except ValueError:
            return None
        if not math.isfinite(sum(vals)) and not all(map(math.isfinite, vals)):
            return None
        return vals


class _Pattern:
    """For one plan and one pattern of zero values: the indices of the measured points'
    R and X in the values (R not 0), the points whose X is 0 or has no header (no
    reactance: NaN), the reactances without a resistance, and the measured points'
    segments, kHz and magnitude-only flags (all False), shared read-only."""

    __slots__ = ("freq_khz", "lone", "magnitude_only", "no_x", "r_at", "segments", "x_at")

    def __init__(self, pairs: tuple[tuple[str, float, int, int], ...], nonzero: Any) -> None:
        nz = nonzero.tolist()
        kept = [p for p in pairs if nz[p[2]]]
        self.r_at = np.array([ri for _, _, ri, _ in kept], dtype=np.intp)
        self.x_at = np.array([max(xi, 0) for *_, xi in kept], dtype=np.intp)
        self.no_x = [k for k, (*_, xi) in enumerate(kept) if xi < 0 or not nz[xi]]
        self.lone = tuple((s, f, xi) for s, f, ri, xi in pairs if not nz[ri] and xi >= 0 and nz[xi])
        self.segments = tuple(s for s, *_ in kept)
        self.freq_khz = np.array([f for _, f, *_ in kept], dtype=float)
        self.magnitude_only = np.zeros(len(kept), dtype=bool)
        self.freq_khz.flags.writeable = self.magnitude_only.flags.writeable = False


_PLANS: dict[tuple[tuple[str, ...], frozenset[int]], _Plan] = {}


def _plan(keys: list[str], quoted: set[int]) -> _Plan | None:
    """The cached plan of a header sequence; None when a header repeats (an error)."""
    key = (tuple(keys), frozenset(quoted))
    plan = _PLANS.get(key)
    if plan is None:
        if len(set(keys)) != len(keys):
            return None
        if len(_PLANS) >= 256:  # many different sequences: not one device's frames
            _PLANS.clear()
        plan = _PLANS[key] = _Plan(keys, quoted)
    return plan


def _points(
    plan: _Plan | None,
    imp_vals: list[float] | None,
    r_pts: dict[tuple[str, float], float],
    x_pts: dict[tuple[str, float], float],
    z_pts: dict[tuple[str, float], tuple[str, float]],
    values: dict[str, float | int | str],
) -> Impedances | list[Impedance]:
    """The impedance points of a frame from its R, X and |Z| values (planned or per pair);
    a reactance without its resistance, and a |Z| where R and X exist, go to ``values``.

    Planned (the common case): :meth:`_Plan.points`, straight into
    :class:`Impedances` in canonical order."""
    if imp_vals is not None:
        assert plan is not None
        points, lone = plan.points(imp_vals)
        for seg, freq, x in lone:
            x_pts[(seg, freq)] = x
        if not (x_pts or z_pts):
            return points
        r_pts = {(z.segment, z.freq_khz): z.r_ohm for z in points}
        out = list(points)
    else:
        out = [Impedance(sf[0], sf[1], r, x_pts.pop(sf, None)) for sf, r in r_pts.items()]
    for (seg, freq), x_only in x_pts.items():  # a reactance without its resistance (or R 0)
        values[_PREFIX_OF[("x", freq)] + _SUFFIX_OF[seg]] = x_only
    for seg_freq, (key, z) in z_pts.items():
        if seg_freq in r_pts:  # R and X win; |Z| is kept as sent
            values[key] = z
        else:
            out.append(Impedance(seg_freq[0], seg_freq[1], z, None, magnitude_only=True))
    return out


def _to_metric(values: dict[str, float | int | str], fields: dict[str, Any]) -> None:
    """A pound-mode frame (``~0,3`` under unit_control): every mass to kg, height to cm.

    The device's own numbers stay in ``values`` with their unit in the key
    (``Wk_lb``, ``Hm_in``, ``mW_lb``, ...); the keys themselves then hold kg, as in
    metric frames, so a muscle mass is never read as kilograms by mistake.
    """
    if "weight_kg" in fields and "Wp" not in values and "Ws" not in values:
        values["Wk_lb"] = fields["weight_kg"]
        fields["weight_kg"] = round(fields["weight_kg"] * LB_KG, 2)
    if "height_cm" in fields and "Hf" not in values:
        values["Hm_in"] = fields["height_cm"]
        fields["height_cm"] = round(fields["height_cm"] * IN_CM, 1)
    for key in MASS_KEYS & values.keys():
        v = values[key]
        if isinstance(v, int | float):
            values[f"{key}_lb"] = v
            values[key] = round(v * LB_KG, 2)


#: the end of a whole frame: the checksum, maybe a brace and a closing quote, line ends
_COMPLETE = re.compile(rb',CS,[0-9A-Fa-f]{2}\}?"?[\r\n]*\Z')


#: a profile line's date of birth (``DB,"31/08/1985"``): a date, in any of the orders
_BIRTH_DATE = re.compile(rb',DB,"\d{1,4}/\d{1,2}/\d{1,4}"')


def _profile_record(frame: bytes) -> str | None:
    """A BC-601 profile line (PROFn.CSV: a user slot's date of birth ``DB``, sex, height,
    activity level; no measurement date, no weight): kept, never a measurement."""
    if _BIRTH_DATE.search(frame) and b",Wk," not in frame and b",DT," not in frame:
        return "BC-601 profile record (PROF*.CSV: date of birth, sex, height, activity level)"
    return None


class TanitaFramer(Framer):
    """Frames from ``{`` (or ``"{``: a line a spreadsheet saved in quotes) to any line end.

    A frame glued to the next one without a line end still comes out whole when
    it ends with its checksum (``CS,hh``, maybe ``}``).
    """

    def __init__(self, *, max_len: int = 8192, silence_s: float = 2.0) -> None:
        super().__init__(
            start=b"{",
            max_len=max_len,
            silence_s=silence_s,
            complete=lambda data: _COMPLETE.search(data) is not None,
            record=_profile_record,
        )

    def _find_start(self, buf: bytearray, pos: int) -> tuple[int, int]:
        """A ``{`` followed by a control key (``0`` or ``~``): a JSON object is no frame."""
        i = buf.find(b"{", pos)
        while i >= 0:
            # nothing follows yet: a start (a cut frame ends here), with its quote if any
            if i + 1 == len(buf) or buf[i + 1] in _CONTROL_START:
                if i > pos and buf[i - 1] == 0x22:  # '"{'
                    return i - 1, 2
                return i, 1
            i = buf.find(b"{", i + 1)
        return -1, 1


_CONTROL_START = frozenset(b"0123456789~")
#: what the encoder ends a frame with (option ``line_end``)
LINE_ENDS = {"crlf": b"\r\n", "lf": b"\n", "cr": b"\r"}


class TanitaProtocol(Protocol):
    """Tanita key/value frames with checksum.

    Options (from the device profile):

    ``frequencies_khz``: frequencies the model measures (encoder writes these).
    ``unmeasured_khz``: frequencies the model sends as ``0.0`` (MC-780: 1, 500,
    1000 kHz). ``segments``: segment names the encoder writes.
    ``date_key``/``time_key``: which clock keys the encoder writes.
    ``date_order``: ``dmy`` (default), ``mdy``, ``ymd`` or ``auto``: how a
    dd/mm vs mm/dd date is read (see :func:`parse_date`; a four-digit first part is
    always yyyy/mm/dd) and written (``DT`` without a date_order: yyyy/mm/dd).
    ``checksum_brace``: write a ``}`` after the checksum; ``line_end``: ``crlf``
    (the serial line, default), ``lf`` or ``cr`` (how text files keep the lines).
    ``magnitude_only``: the encoder writes |Z| (``Z`` + segment, e.g. ``ZF``)
    instead of R and X, as single-frequency foot-to-foot scales do.
    ``unit_control``: the control prefix carries the unit system (BC-601): with
    ``~0,3`` every mass (``Wk``, muscle, bone, water, segment masses: MASS_KEYS) is
    in pounds and ``Hm`` in inches; they are converted to kg and cm and the device's
    own numbers kept in device_values as ``<key>_lb`` / ``Hm_in``.
    ``phase_tolerance_deg``, ``ecw_tbw_tolerance_pct``, ``water_tolerance_kg``:
    tolerances of the consistency checks (defaults 0.5 degrees, 0.5 percentage
    points, 0.3 kg: the device rounds every value to 0.1).
    """

    name = "tanita"
    description = "Tanita key/value frames with CS checksum (MC-780, MC-980, SC-330, BC-601...)"
    expects = "Tanita frames: '{0,16,~0,...' header,value pairs ending 'CS,hh' and a line end"

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        o = self.options
        self.max_frame_bytes = int(o.get("max_frame_bytes", 8192))
        self.silence_s = float(o.get("silence_s", 2.0))
        self.unit_control = bool(o.get("unit_control", False))
        self.date_order = str(o.get("date_order", "dmy"))
        if self.date_order not in DATE_ORDERS:
            raise ValueError(
                f"date_order must be one of {', '.join(DATE_ORDERS)}, not {self.date_order!r}"
            )
        self.magnitude_only = bool(o.get("magnitude_only", False))
        self.phase_tol = float(o.get("phase_tolerance_deg", 0.5))
        self.ratio_tol = float(o.get("ecw_tbw_tolerance_pct", 0.5))
        self.water_tol = float(o.get("water_tolerance_kg", 0.3))

    def framer(self) -> Framer:
        return TanitaFramer(max_len=self.max_frame_bytes, silence_s=self.silence_s)

    # -- decoding -----------------------------------------------------------
    def decode(self, frame: bytes) -> Reading:
        body = frame.rstrip(b"\r\n")
        if body.startswith(b'"{'):  # an SD-card line saved by a spreadsheet: "{...,""BC-601"",...}"
            body = body[1:-1] if body.endswith(b'"') else body[1:]
            body = body.replace(b'""', b'"')
        if not body.startswith(b"{"):
            raise FrameError("frame does not start with '{'", 0)
        if body.translate(None, _PRINTABLE):  # deletes the good bytes: anything left is bad
            bad = _BAD_BYTE.search(body)
            assert bad is not None
            i = bad.start()
            raise FrameError(f"byte 0x{body[i]:02X} is not printable ASCII", i)
        if body.endswith(b'"'):  # a stray quote after the checksum (a real MC-780A frame)
            body = body[:-1]
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
        split = _split_simple(text)
        planned = split is not None
        if split is None:  # quotes around commas or stray quotes: the careful tokenizer
            toks = _tokens(text, 1)
            if len(toks) % 2:
                raise FrameError("a header has no value", toks[-1][1])
            split = ([t for t, _, _ in toks], {i for i, (_, _, q) in enumerate(toks) if q})
        parts, quoted = split
        if len(parts) % 2:
            raise FrameError("a header has no value", 1 + text.rfind(",") + 1)
        try:
            return self._fields(parts, quoted, planned)
        except _FieldError as exc:  # error path only: find the byte offset of the token
            offsets = [off for _, off, _ in _tokens(text, 1)]
            raise FrameError(exc.reason, offsets[exc.index]) from None

    def _fields(self, parts: list[str], quoted: set[int], planned: bool = True) -> Reading:
        """Header/value tokens (quotes removed; ``quoted``: indices that were quoted) -> Reading.

        The hot path of every import and replay. A device sends the same headers
        in the same order frame after frame, so with ``planned`` what to do with
        each pair is worked out once per header sequence (``_plan``): the
        impedance pairs, most of a frame, then take one itemgetter and one
        map(float) for the lot. Without a plan (the careful tokenizer's path,
        and whenever a value is not a finite number) every pair goes through the
        per-pair loop, which reports the first bad token by position.
        """
        keys = parts[0::2]
        plan = _plan(keys, quoted) if planned else None
        if plan is None and len(set(keys)) != len(keys):
            seen: set[str] = set()
            for i, k in enumerate(keys):
                if k in seen:
                    raise _FieldError(f"header {k!r} appears twice", 2 * i)
                seen.add(k)
        control: list[tuple[str, str]] = []
        values: dict[str, float | int | str] = {}
        r_pts: dict[tuple[str, float], float] = {}
        x_pts: dict[tuple[str, float], float] = {}
        z_pts: dict[tuple[str, float], tuple[str, float]] = {}
        fields: dict[str, Any] = {}
        date: tuple[str, str] | None = None
        time: tuple[str, str] | None = None
        imperial = False
        imp_vals = plan.impedance(parts) if plan is not None else None
        if plan is None:
            rest: tuple[tuple[int, bool], ...] = tuple(
                (j, _is_plain(parts[j], j, quoted)) for j in range(0, len(parts), 2)
            )
        else:  # without the impedance pairs when map(float) took them all
            rest = plan.every if imp_vals is None else plan.rest
        imp_get = _IMP_KEY.get
        for j, plain in rest:
            key = parts[j]
            raw = parts[j + 1]
            if plain:
                # a plain device value (fat %, water, phase, ...): the common case
                number = _number(raw)
                if number is None:
                    raise _FieldError(f"{_value_of(key, raw)} is not a number", j + 1)
                if number != 0.0 or isinstance(number, int):  # 0.0: not measured
                    values[key] = number
                continue
            imp = imp_get(key)
            if imp is not None and not (quoted and (j in quoted or j + 1 in quoted)):
                try:
                    v = float(raw)
                except ValueError:
                    raise _FieldError(f"{_value_of(key, raw)} is not a number", j + 1) from None
                if v != v or v in _INFINITIES:
                    raise _FieldError(f"{_value_of(key, raw)} is not a number", j + 1)
                if v != 0:  # 0: not measured
                    (r_pts if imp[0] else x_pts)[imp[1]] = v
                continue
            if j in quoted or not key:
                raise _FieldError("header is empty or quoted", j)
            if key == "0" or key[0] == "~":
                control.append((key, raw))
                if key == "~0" and self.unit_control and raw == "3":
                    imperial = True
                continue
            if key in ("Ws", "Hf"):  # stone.pounds / feet'inches: text, not a number
                try:
                    if key == "Ws":
                        kg = parse_stone_pounds(raw)
                    else:
                        cm = parse_feet_inches(raw)
                except ValueError:
                    what = (
                        "stone.pounds such as 11.05.2"
                        if key == "Ws"
                        else "feet'inches such as 5'07.5"
                    )
                    raise _FieldError(f"{_value_of(key, raw)} is not {what}", j + 1) from None
                if (kg if key == "Ws" else cm) > 0:
                    values[key] = raw
                    if key == "Ws":
                        fields["weight_kg"] = round(kg, 2)
                    else:
                        fields["height_cm"] = round(cm, 1)
                continue
            value: int | float | str = raw
            if j + 1 not in quoted:
                number = _number(raw)
                if number is None:
                    raise _FieldError(f"{_value_of(key, raw)} is not a number", j + 1)
                value = number
                if isinstance(value, float) and value == 0.0:
                    continue  # 0.0 means "not measured"
            if key in DATE_KEYS:
                date = (key, str(raw))
            elif key in TIME_KEYS:
                time = (key, str(raw))
            elif key in ("MO", "SN", "ID"):
                fields[{"MO": "model", "SN": "serial_number", "ID": "subject_id"}[key]] = str(raw)
            elif key == "GE" and isinstance(value, int) and value in _SEX:
                fields["sex"] = _SEX[value]
            elif key == "AG" and isinstance(value, int):
                fields["age_years"] = value
            elif key in ("Hm", "Wk", "Wp") and isinstance(value, int | float) and value > 0:
                if key == "Wp":
                    values[key] = value  # the device's own number, in pounds
                    fields["weight_kg"] = round(value * LB_KG, 2)
                else:  # in pound mode pounds and inches: _to_metric converts them
                    fields["height_cm" if key == "Hm" else "weight_kg"] = float(value)
            elif (
                len(key) == 2
                and key[0] in MAGNITUDE_PREFIX
                and key[1] in SEGMENT_SUFFIX
                and isinstance(value, int | float)
                and value > 0
            ):
                seg = SEGMENT_SUFFIX[key[1]].value
                z_pts[(seg, MAGNITUDE_PREFIX[key[0]])] = (key, float(value))
            else:
                values[key] = value
        measured_at = self._measured_at(date, time, values)
        points = _points(plan, imp_vals, r_pts, x_pts, z_pts, values)
        if imperial:
            _to_metric(values, fields)
        return Reading(
            impedance=points,
            device_values=values,
            control=tuple(control),
            measured_at=measured_at,
            **fields,
        )

    def _measured_at(
        self,
        date: tuple[str, str] | None,
        time: tuple[str, str] | None,
        values: dict[str, float | int | str],
    ) -> dt.datetime | None:
        """The device clock as a datetime; a date that is odd, unset or ambiguous is kept as
        sent in ``values`` (``check`` says why), never a rejection."""
        if date is None:
            if time is not None:
                values[time[0]] = time[1]
            return None
        try:
            when, note = _device_clock(date[0], date[1], self.date_order, time and time[1])
        except ValueError:
            values[date[0]] = date[1]
            if time:
                values[time[0]] = time[1]
            return None
        if note is not None:  # read in the other order: keep what the device said
            values[date[0]] = date[1]
        return when

    def _clock(self, t: dt.datetime, own: Mapping[str, object]) -> list[tuple[str, object]]:
        """Date and time pairs for ``t``; a date kept as the device sent it is written as sent."""
        o = self.options
        date_key = str(o.get("date_key", "Da"))
        time_key = str(o.get("time_key", "TI"))
        out: list[tuple[str, object]] = []
        if not set(DATE_KEYS) & own.keys():
            out.append((date_key, _date_text(date_key, o.get("date_order"), t)))
        if time_key == "Ti":
            out.append(("Ti", f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}"))
        else:
            out.append(("TI", f"{t.hour:02d}:{t.minute:02d}"))
        return out

    # -- consistency -------------------------------------------------------
    def _clock_warnings(self, reading: Reading) -> list[str]:
        """Why a date the device sent was kept as sent (or read in the other order)."""
        for key in DATE_KEYS:
            raw = reading.device_values.get(key)
            if not isinstance(raw, str):
                continue
            try:
                _, note = parse_date(key, raw, self.date_order)
            except AmbiguousDate:
                return [
                    f"date {key} {raw!r} is ambiguous (dd/mm or mm/dd, date_order auto): kept "
                    "as sent, no measurement time; set date_order: dmy or mdy in the profile"
                ]
            except ValueError:
                return [f"date {key} {raw!r} is not a date (device clock not set?): kept as sent"]
            return [note] if note else []
        return []

    def check(self, reading: Reading) -> list[str]:
        """Warnings where the device's own numbers disagree with each other.

        Phase ``p<seg>`` vs atan(X50/R50) of the same segment, ``wo`` (ECW/TBW %)
        vs 100·wO/wW, and ``wW`` vs ``wI`` + ``wO``: these hold on real output
        (PROTOCOLS notes); a disagreement means a misread frame or a device
        fault, and is stored with the measurement, not rejected.
        """
        out: list[str] = self._clock_warnings(reading)
        v = reading.device_values
        pts: dict[tuple[str, float], tuple[float, float | None]] | None = None
        for key, seg, freq in _PHASE_CHECKS:
            phase = v.get(key)
            if phase is None or isinstance(phase, str):
                continue
            if pts is None:  # (segment, kHz) -> (R, X)
                pts = {(s, f): (r, x) for s, f, r, x, _ in reading.impedance.records()}
            r, x = pts.get((seg, freq), (0.0, None))
            if x is None:
                continue
            calc = math.degrees(math.atan2(x, r))
            if abs(calc - phase) > self.phase_tol:
                out.append(
                    f"device phase {key} = {phase:g} deg but atan(X/R) at "
                    f"{freq:g} kHz = {calc:.1f} deg ({seg})"
                )
        num: dict[str, float] = {}
        for k in ("wW", "wI", "wO", "wo"):
            val = v.get(k)
            if isinstance(val, int | float):
                num[k] = float(val)
        if {"wW", "wO", "wo"} <= num.keys() and num["wW"] > 0:
            calc = 100 * num["wO"] / num["wW"]
            if abs(calc - num["wo"]) > self.ratio_tol:
                out.append(
                    f"device ECW/TBW wo = {num['wo']:g} % but 100*wO/wW = {calc:.1f} % "
                    f"(wO {num['wO']:g} kg, wW {num['wW']:g} kg)"
                )
        if {"wW", "wI", "wO"} <= num.keys():
            total = num["wI"] + num["wO"]
            if abs(total - num["wW"]) > self.water_tol:
                out.append(f"device TBW wW = {num['wW']:g} kg but wI + wO = {total:.1f} kg")
        if v.get("St") == 1:
            out.append("device status St = 1: segmental measurement error")
        return out

    # -- encoding -----------------------------------------------------------
    def encode(self, reading: Reading) -> bytes:
        o = self.options
        own = reading.device_values
        pairs: list[tuple[str, object]] = []
        if reading.model is not None:
            pairs.append(("MO", reading.model))
        if reading.serial_number is not None:
            pairs.append(("SN", reading.serial_number))
        if reading.subject_id is not None:
            pairs.append(("ID", reading.subject_id))
        if reading.measured_at is not None:
            pairs.extend(self._clock(reading.measured_at, own))
        if reading.sex is not None:
            pairs.append(("GE", _SEX_CODE[reading.sex]))
        if reading.age_years is not None:
            pairs.append(("AG", reading.age_years))
        # a value the device sent in its own units is written as it came
        if "Hm_in" in own:
            pairs.append(("Hm", own["Hm_in"]))
        elif reading.height_cm is not None and not {"Hm", "Hf"} & own.keys():
            pairs.append(("Hm", float(reading.height_cm)))
        if "Wk_lb" in own:
            pairs.append(("Wk", own["Wk_lb"]))
        elif reading.weight_kg is not None and not {"Wk", "Wp", "Ws"} & own.keys():
            pairs.append(("Wk", float(reading.weight_kg)))
        for key, v in own.items():
            if key in ("Wk_lb", "Hm_in") or (key.endswith("_lb") and key[:-3] in own):
                continue  # written above, or under its own key below
            pairs.append((key, own.get(f"{key}_lb", v)))
        unmeasured = [float(f) for f in o.get("unmeasured_khz", ())]
        by_seg: dict[str, list[Impedance]] = {}
        for z in reading.impedance:
            by_seg.setdefault(z.segment, []).append(z)
        for seg, pts in by_seg.items():
            suffix = _SUFFIX_OF[seg]
            mags = [z for z in pts if z.magnitude_only or self.magnitude_only]
            for z in mags:
                if z.freq_khz not in _MAG_OF:
                    raise ValueError(f"no Tanita header for |Z| at {z.freq_khz:g} kHz")
                mag = z.r_ohm if z.magnitude_only else round(math.hypot(z.r_ohm, z.x_ohm or 0.0), 1)
                pairs.append((_MAG_OF[z.freq_khz] + suffix, mag))
            if len(mags) == len(pts):
                continue
            rows = [(z.freq_khz, z.r_ohm, z.x_ohm) for z in pts if z not in mags]
            rows += [(f, 0.0, 0.0) for f in unmeasured]
            for freq, r, x in sorted(rows, key=lambda row: row[0]):
                pairs.append((_PREFIX_OF[("r", freq)] + suffix, float(r)))
                if x is not None:
                    pairs.append((_PREFIX_OF[("x", freq)] + suffix, float(x)))
        control = "".join(f"{k},{v}," for k, v in reading.control or DEFAULT_CONTROL)
        head = "{" + control + "".join(f"{k},{_raw_or_fmt(k, v)}," for k, v in pairs)
        data = head.encode("ascii")
        brace = b"}" if o.get("checksum_brace") else b""
        end = LINE_ENDS[str(o.get("line_end", "crlf"))]
        return data + b"CS," + checksum(data).encode() + brace + end


def _date_text(key: str, order: str | None, t: dt.datetime) -> str:
    if key == "DA":
        return f"{t.year % 100:02d}/{t.month:02d}/{t.day:02d}"
    if order == "mdy":
        return f"{t.month:02d}/{t.day:02d}/{t.year:04d}"
    if order == "ymd" or (key == "DT" and order is None):
        return f"{t.year:04d}/{t.month:02d}/{t.day:02d}"
    return f"{t.day:02d}/{t.month:02d}/{t.year:04d}"


def _raw_or_fmt(key: str, value: object) -> str:
    """Stone-pounds and feet-inches go out unquoted, as the scales send them."""
    if key in ("Ws", "Hf") and isinstance(value, str):
        return value
    return _fmt(value)
