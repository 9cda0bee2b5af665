"""InBody results through LookinBody's CSV export.

InBody analyzers publish no serial format; clinics get their results out of the
LookinBody software as a CSV export. What is known of it (the project's
PROTOCOLS notes; no public copy of a real export header was found, so column
names are matched loosely and can be changed in the profile):

* one header line of numbered column names (``1.DATE&TIMES``, ``2.ID``, ...),
  then one line per test;
* ``ICW``, ``ECW``, ``TBW`` (litres), ``ECW/TBW(Total)`` and
  ``ECW/TBW(RA|LA|TR|RL|LL)``;
* ``<f>-<seg> Impedance`` for f in 1, 5, 50, 250, 500 kHz and 1 MHz, seg in RA
  (right arm), LA (left arm), TR (trunk), RL (right leg), LL (left leg);
  reactance (``<f>-<seg> Reactance``) and phase angle (``<f>-<seg> Phase Angle``)
  at 5, 50 and 250 kHz.

Mapping: the numbering (``12.``) is ignored, names compare case-insensitively.
The impedance column is taken as the magnitude |Z| and the reactance as the
positive capacitive reactance Xc (InBody prints both positive), so where both
exist R = sqrt(|Z|² − Xc²) and X = −Xc; where only |Z| exists (1, 500 kHz,
1 MHz) the point is magnitude-only (see :class:`bia_acq.model.Impedance`).
Phase angles and every other column are kept in ``device_values`` under the
column's name without its number. Empty cells mean "not measured".

Framing: the first line (or any later line that names an ``ID`` column) is the
header; each following line becomes one frame made of the header line and the
row, so a row can be decoded again on its own from the journal. Text is UTF-8
(a byte-order mark is skipped), else Latin-1.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from typing import Any

from bia_acq.errors import FrameError
from bia_acq.model import Impedance, Reading
from bia_acq.protocols.base import Chunk, Framer, Protocol

SEGMENTS = {"RA": "right_arm", "LA": "left_arm", "TR": "trunk", "RL": "right_leg", "LL": "left_leg"}
_SEG_CODE = {v: k for k, v in SEGMENTS.items()}
_IMP = re.compile(
    r"^(\d+(?:\.\d+)?)\s*(k|m)?(?:hz)?\s*-\s*(RA|LA|TR|RL|LL)\s+(impedance|reactance|phase angle)$",
    re.IGNORECASE,
)
_NUMBERED = re.compile(r"^\s*\d+\s*\.\s*")
DEFAULT_COLUMNS: dict[str, list[str]] = {
    "measured_at": ["DATE&TIMES", "Test Date / Time", "Test Date/Time"],
    "subject_id": ["ID"],
    "sex": ["Gender", "Sex"],
    "age_years": ["Age"],
    "height_cm": ["Height"],
    "weight_kg": ["Weight"],
}
DEFAULT_TIME_FORMATS = (
    "%Y.%m.%d %H:%M:%S",
    "%Y%m%d%H%M%S",
    "%Y.%m.%d %H:%M",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
)
_SEX = {"m": "male", "male": "male", "f": "female", "female": "female"}


def column_name(cell: str) -> str:
    """A header cell without its number: ``'12. ICW '`` -> ``'ICW'``."""
    return _NUMBERED.sub("", cell).strip()


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def split_cells(line: str) -> list[tuple[str, int]]:
    """CSV cells of one line with their character offsets ("" doubles a quote)."""
    cells: list[tuple[str, int]] = []
    i, n = 0, len(line)
    while True:
        start = i
        if i < n and line[i] == '"':
            out = []
            i += 1
            while True:
                j = line.find('"', i)
                if j < 0:
                    raise FrameError("unterminated quoted cell", start)
                out.append(line[i:j])
                if j + 1 < n and line[j + 1] == '"':
                    out.append('"')
                    i = j + 2
                    continue
                i = j + 1
                break
            if i < n and line[i] != ",":
                raise FrameError("text after a closing quote", i)
            cells.append(("".join(out), start))
        else:
            j = line.find(",", i)
            j = n if j < 0 else j
            cells.append((line[i:j], start))
            i = j
        if i >= n:
            return cells
        i += 1  # the comma


def _number(cell: str) -> float | None:
    try:
        v = float(cell)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def _freq_khz(num: str, unit: str | None) -> float:
    f = float(num)
    return f * 1000.0 if unit and unit.lower() == "m" else f


def _freq_label(f: float) -> str:
    return f"{f / 1000:g}MHz" if f >= 1000 else f"{f:g}kHz"


class CsvFramer(Framer):
    """Header line, then one frame per row: header + row."""

    def __init__(self, is_header: Any, *, max_len: int = 65536) -> None:
        super().__init__(start=b"", end=b"\n", max_len=max_len)
        self._is_header = is_header
        self.header: bytes | None = None

    def _line(self, line: bytes, out: list[Chunk]) -> None:
        if not line.strip(b"\r\n\x00 \t\xef\xbb\xbf"):
            out.append(Chunk("junk", line, "empty line"))
        elif self._is_header(line):
            self.header = line
        elif self.header is None:
            out.append(Chunk("junk", line, "CSV row before any header line"))
        else:
            out.append(Chunk("frame", self.header + line))

    def _step(self, out: list[Chunk]) -> bool:
        j = self._buf.find(b"\n")
        if j < 0:
            if len(self._buf) > self.max_len:
                out.append(
                    Chunk("junk", bytes(self._buf), f"line longer than {self.max_len} bytes")
                )
                self._buf.clear()
            return False
        line = bytes(self._buf[: j + 1])
        del self._buf[: j + 1]
        self._line(line, out)
        return True

    def flush(self, reason: str = "end of file") -> list[Chunk]:
        """A last row without a line end is complete at the end of a file."""
        out: list[Chunk] = []
        if self._buf:
            line = bytes(self._buf)
            self._buf.clear()
            if self.header is not None and not self._is_header(line):
                self._line(line, out)
            else:
                out.append(Chunk("junk", line, f"an unfinished line ({reason})"))
        return out


class LookinBodyProtocol(Protocol):
    """LookinBody CSV export rows (InBody analyzers).

    Options: ``columns`` (Reading attribute -> list of accepted column names),
    ``time_formats`` (strptime formats tried in order; the first is written by
    the encoder), ``model`` (stored as the device model, e.g. ``InBody S10``).
    """

    name = "lookinbody-csv"
    description = "InBody results from LookinBody CSV exports (header + one row per test)"

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        o = self.options
        cols = {**DEFAULT_COLUMNS, **{k: list(v) for k, v in dict(o.get("columns", {})).items()}}
        self._attr_of = {name.casefold(): attr for attr, names in cols.items() for name in names}
        self._names = {attr: names[0] for attr, names in cols.items()}
        self.time_formats = [str(f) for f in o.get("time_formats", DEFAULT_TIME_FORMATS)]
        self.model: str | None = o.get("model")

    def _is_header(self, line: bytes) -> bool:
        text = _text(line).lstrip("\ufeff").rstrip("\r\n")
        try:
            names = {column_name(c).casefold() for c, _ in split_cells(text)}
        except FrameError:
            return False
        return self._names["subject_id"].casefold() in names

    def framer(self) -> Framer:
        return CsvFramer(self._is_header)

    # -- decoding -----------------------------------------------------------
    def decode(self, frame: bytes) -> Reading:
        cut = frame.find(b"\n")
        if cut < 0 or not frame[cut + 1 :].strip(b"\r\n"):
            raise FrameError("expected a header line and a row", len(frame))
        head, row = frame[: cut + 1], frame[cut + 1 :]
        head_text = _text(head)
        bom = 1 if head_text.startswith("\ufeff") else 0
        header = split_cells(head_text[bom:].rstrip("\r\n"))
        row_text = _text(row)
        base = len(head)

        def at(char_offset: int) -> int:
            return base + len(row_text[:char_offset].encode("utf-8", "replace"))

        cells = split_cells(row_text.rstrip("\r\n"))
        if len(cells) != len(header):
            raise FrameError(
                f"the row has {len(cells)} cells, the header {len(header)}",
                at(cells[-1][1]) if len(cells) < len(header) else at(cells[len(header)][1]),
            )
        fields: dict[str, Any] = {}
        values: dict[str, float | int | str] = {}
        z: dict[tuple[str, float], tuple[float, int]] = {}
        xc: dict[tuple[str, float], tuple[float, int]] = {}
        seen: set[str] = set()
        for (hcell, hoff), (cell, off) in zip(header, cells, strict=True):
            name = column_name(hcell)
            if name in seen:
                raise FrameError(f"column {name!r} appears twice in the header", hoff + bom)
            seen.add(name)
            cell = cell.strip()
            if not cell:
                continue  # not measured
            attr = self._attr_of.get(name.casefold())
            if attr is not None:
                fields[attr] = self._field(attr, name, cell, at(off))
                continue
            m = _IMP.match(name)
            if m and m.group(4).lower() != "phase angle":
                v = _number(cell)
                if v is None or v < 0:
                    raise FrameError(f"{name}: {cell!r} is not a non-negative number", at(off))
                key = (SEGMENTS[m.group(3).upper()], _freq_khz(m.group(1), m.group(2)))
                (z if m.group(4).lower() == "impedance" else xc)[key] = (v, at(off))
                continue
            num = _number(cell)
            values[name] = (
                cell if num is None else (int(num) if cell.lstrip("+-").isdigit() else num)
            )
        points: list[Impedance] = []
        for key, (mag, _) in z.items():
            if key in xc:
                x, off = xc.pop(key)
                if x > mag:
                    raise FrameError(f"reactance {x:g} ohm exceeds impedance {mag:g} ohm", off)
                points.append(Impedance(key[0], key[1], math.sqrt(mag * mag - x * x), -x))
            else:
                points.append(Impedance(key[0], key[1], mag, None, magnitude_only=True))
        for (seg, f), (x, _) in xc.items():  # a reactance without its impedance: keep it
            values[f"{_freq_label(f)}-{_SEG_CODE[seg]} Reactance"] = x
        if self.model is not None:
            fields.setdefault("model", self.model)
        return Reading(impedance=tuple(points), device_values=values, **fields)

    def _field(self, attr: str, name: str, cell: str, off: int) -> Any:
        if attr == "subject_id":
            return cell
        if attr == "sex":
            if cell.casefold() not in _SEX:
                raise FrameError(f"{name}: unknown sex {cell!r} (expected M or F)", off)
            return _SEX[cell.casefold()]
        if attr == "measured_at":
            for fmt in self.time_formats:
                try:
                    return dt.datetime.strptime(cell, fmt)
                except ValueError:
                    pass
            raise FrameError(f"{name}: {cell!r} is not a date and time this profile knows", off)
        v = _number(cell)
        if v is None or v <= 0:
            raise FrameError(f"{name}: {cell!r} is not a positive number", off)
        if attr == "age_years":
            if v != int(v):
                raise FrameError(f"{name}: {cell!r} is not whole years", off)
            return int(v)
        return v

    # -- encoding -----------------------------------------------------------
    def encode(self, reading: Reading) -> bytes:
        cols: list[tuple[str, str]] = []
        r = reading
        if r.measured_at is not None:
            cols.append((self._names["measured_at"], r.measured_at.strftime(self.time_formats[0])))
        if r.subject_id is not None:
            cols.append((self._names["subject_id"], r.subject_id))
        if r.sex is not None:
            cols.append((self._names["sex"], "M" if r.sex == "male" else "F"))
        for attr in ("age_years", "height_cm", "weight_kg"):
            v = getattr(r, attr)
            if v is not None:
                cols.append((self._names[attr], repr(v)))
        for k, v in r.device_values.items():
            cols.append((k, repr(v) if isinstance(v, float) else str(v)))
        for p in r.impedance:
            label = f"{_freq_label(p.freq_khz)}-{_SEG_CODE[p.segment]}"
            if p.x_ohm is None:
                cols.append((f"{label} Impedance", repr(p.r_ohm)))
            else:
                cols.append((f"{label} Impedance", repr(math.hypot(p.r_ohm, p.x_ohm))))
                cols.append((f"{label} Reactance", repr(-p.x_ohm)))
        head = ",".join(_quote(f"{i}.{name}") for i, (name, _) in enumerate(cols, 1))
        row = ",".join(_quote(v) for _, v in cols)
        return f"{head}\r\n{row}\r\n".encode()


def _quote(cell: str) -> str:
    if any(c in cell for c in ',"\r\n') or cell != cell.strip():
        return '"' + cell.replace('"', '""') + '"'
    return cell
