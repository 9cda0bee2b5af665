"""InBody results through LookinBody's CSV export.

InBody analyzers publish no serial format; clinics get their results out of the
LookinBody software as a CSV (or Excel) export. What is known of it: the project's
PROTOCOLS notes and real exports' headers (tests/data/real/: an InBody 120 export's
87 columns, an InBody 270 site export); names are matched loosely and a site maps
its own under ``columns:``:

* one header line of numbered column names (``14. Test Date / Time``, ``2. ID``,
  ...), then one line per test;
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
Phase angles and the other numeric result columns LookinBody numbers are kept in
``device_values`` under the column's name without its number ("Level 6" as 6);
columns about the person (name, birth date, phone, address, e-mail, memo, medical
history: ``PERSONAL_COLUMNS``), normal-range limits and a site's own unnumbered
columns stay in the journaled row only, so a measurement never spreads a patient's
name, and the database does not keep the row twice. ``-`` and empty cells mean "not
measured".

Framing: a line naming at least two known columns is a header, journaled once as its
own chunk; each row after it is a frame whose ``context`` is that header (decode
header + row). Text is UTF-8 (a byte-order mark is skipped), Latin-1 or UTF-16 LE;
cells are separated by commas, semicolons or tabs. Column sets per model family, the
``required`` fields, ``.xlsx`` workbooks: see :class:`LookinBodyProtocol` and
docs/protocols.md.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bia_acq.errors import BiaError, FrameError
from bia_acq.model import Impedance, Reading
from bia_acq.protocols.base import IN_CM, LB_KG, Chunk, Framer, Protocol

SEGMENTS = {"RA": "right_arm", "LA": "left_arm", "TR": "trunk", "RL": "right_leg", "LL": "left_leg"}
_SEG_CODE = {v: k for k, v in SEGMENTS.items()}
_IMP = re.compile(
    r"^(\d+(?:\.\d+)?)\s*(k|m)?(?:hz)?\s*-\s*(RA|LA|TR|RL|LL)\s+(impedance|reactance|phase angle)$",
    re.IGNORECASE,
)
_NUMBERED = re.compile(r"^\s*(\d+)\s*\.\s*")
DEFAULT_COLUMNS: dict[str, list[str]] = {
    "measured_at": ["DATE&TIMES", "Test Date / Time", "Test Date/Time"],
    "subject_id": ["ID"],
    "sex": ["Gender", "Sex"],
    "age_years": ["Age"],
    "height_cm": ["Height"],
    "weight_kg": ["Weight"],
}
#: what a row needs to become a measurement (a profile's ``required`` may relax it)
DEFAULT_REQUIRED = ("subject_id", "measured_at", "weight_kg")
_WHAT = {
    "subject_id": "the subject",
    "measured_at": "the test time",
    "weight_kg": "the weight",
    "sex": "the sex",
    "age_years": "the age",
    "height_cm": "the height",
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
#: cells that mean "not measured": empty, or LookinBody's dash
_UNMEASURED = frozenset({"", "-"})
_BOM8 = b"\xef\xbb\xbf"
_BOM16 = b"\xff\xfe"  # UTF-16 LE: Excel's "Unicode text" (tab-separated)


@dataclass(frozen=True)
class ColumnSet:
    """A LookinBody model family's export: which frequencies its |Z| columns hold.

    ``first_impedance``: the number LookinBody gives the 20 kHz (or lowest) right-arm
    impedance column, which tells families with the same frequencies apart;
    ``columns``: the whole real header, where one is known (the encoder writes it).
    """

    family: str
    frequencies_khz: tuple[float, ...]
    first_impedance: int | None
    source: str
    columns: tuple[str, ...] = ()


#: The real InBody 120 header (tests/data/real/inbody120-lookinbody-header.txt: a real
#: LookinBody120 Excel export's 87 columns, transcribed in a public test file).
INBODY120_COLUMNS: tuple[str, ...] = (
    "Name",
    "ID",
    "Height",
    "Date of Birth",
    "Gender",
    "Age",
    "Mobile Number",
    "Phone Number",
    "Zip Code",
    "Address",
    "E-mail",
    "Date of Registration",
    "Memo",
    "Test Date / Time",
    "Weight",
    "Lower Limit (Weight Normal Range)",
    "Upper Limit (Weight Normal Range)",
    "TBW (Total Body Water)",
    "Lower Limit (TBW Normal Range)",
    "Upper Limit (TBW Normal Range)",
    "Protein",
    "Lower Limit (Protein Normal Range)",
    "Upper Limit (Protein Normal Range)",
    "Minerals",
    "Lower Limit (Minerals Normal Range)",
    "Upper Limit (Minerals Normal Range)",
    "BFM (Body Fat Mass)",
    "Lower Limit (BFM Normal Range)",
    "Upper Limit (BFM Normal Range)",
    "SMM (Skeletal Muscle Mass)",
    "Lower Limit (SMM Normal Range)",
    "Upper Limit (SMM Normal Range)",
    "BMI (Body Mass Index)",
    "Lower Limit (BMI Normal Range)",
    "Upper Limit (BMI Normal Range)",
    "PBF (Percent Body Fat)",
    "Lower Limit (PBF Normal Range)",
    "Upper Limit (PBF Normal Range)",
    "FFM of Right Arm",
    "FFM% of Right Arm",
    "FFM of Left Arm",
    "FFM% of Left Arm",
    "FFM of Trunk",
    "FFM% of Trunk",
    "FFM of Right Leg",
    "FFM% of Right Leg",
    "FFM of Left Leg",
    "FFM% of Left Leg",
    "BFM of Right Arm",
    "BFM% of Right Arm",
    "BFM of Left Arm",
    "BFM% of Left Arm",
    "BFM of Trunk",
    "BFM% of Trunk",
    "BFM of Right Leg",
    "BFM% of Right Leg",
    "BFM of Left Leg",
    "BFM% of Left Leg",
    "InBody Score",
    "Target Weight",
    "Weight Control",
    "BFM Control",
    "FFM Control",
    "BMR (Basal Metabolic Rate)",
    "WHR (Waist-Hip Ratio)",
    "Lower Limit (WHR Normal Range)",
    "Upper Limit (WHR Normal Range)",
    "VFL (Visceral Fat Level)",
    "Obesity Degree",
    "Lower Limit (Obesity Degree Normal Range)",
    "Upper Limit (Obesity Degree Normal Range)",
    "20kHz-RA Impedance",
    "20kHz-LA Impedance",
    "20kHz-TR Impedance",
    "20kHz-RL Impedance",
    "20kHz-LL Impedance",
    "100kHz-RA Impedance",
    "100kHz-LA Impedance",
    "100kHz-TR Impedance",
    "100kHz-RL Impedance",
    "100kHz-LL Impedance",
    "InBody Type",
    "Local ID",
    "Medical History",
    "Group",
    "Lower Limit (BMR Normal Range)",
    "Upper Limit (BMR Normal Range)",
)
#: Model families. 120 and 270: from real exports' headers (tests/data/real/); 570,
#: 770/970 and S10: from InBody's published frequency lists (5/50/500 kHz; 1, 5, 50,
#: 250, 500 kHz and 1 MHz) and the project's PROTOCOLS notes, no real export seen.
COLUMN_SETS: tuple[ColumnSet, ...] = (
    ColumnSet("120", (20.0, 100.0), 72, "real LookinBody120 export header", INBODY120_COLUMNS),
    ColumnSet("270", (20.0, 100.0), 75, "real site export of an InBody 270 (InBody Type 270)"),
    ColumnSet("570", (5.0, 50.0, 500.0), None, "InBody 570 frequencies (specification)"),
    ColumnSet(
        "770/970/S10",
        (1.0, 5.0, 50.0, 250.0, 500.0, 1000.0),
        None,
        "InBody 770, 970 and S10 frequencies (specification; PROTOCOLS notes)",
    ),
)


#: LookinBody columns about the person, not the test: never copied out of the journal
PERSONAL_COLUMNS = frozenset(
    c.casefold()
    for c in (
        "Name", "Date of Birth", "Mobile Number", "Phone Number", "Zip Code", "Address",
        "E-mail", "Memo", "Date of Registration", "Medical History", "Group", "Local ID",
    )
)  # fmt: skip
_LIMIT = re.compile(r"^(lower|upper) limit \(", re.IGNORECASE)
#: a height as LookinBody writes it under US units: ``5ft. 10.0in.``
_FT_IN = re.compile(r"(\d+)\s*ft\.?\s*(\d+(?:\.\d+)?)\s*in\.?", re.IGNORECASE)
#: result columns that are masses: kg in a metric export, lb in a US one (never a
#: percentage like ``LBM% of Right Arm``, a ratio like ``ECW/TBW`` or an index like FFMI)
_MASS = re.compile(
    r"^(?:weight|tbw|icw|ecw|dlm|bfm|lbm|slm|ffm|smm|protein|minerals?|bmc|bcm)\b(?![%/])"
    r"|^(?:target weight|bone mineral content|body cell mass)\b|\bcontrol$",
    re.IGNORECASE,
)
_LEVEL = re.compile(r"level\s*(\d+)", re.IGNORECASE)


def _is_result(header_cell: str, name: str) -> bool:
    """A result column worth a device value: one LookinBody numbers (a site's own columns
    are not numbered), not about the person, not a normal range's limit."""
    return (
        _NUMBERED.match(header_cell) is not None
        and name.casefold() not in PERSONAL_COLUMNS
        and not _LIMIT.match(name)
    )


def column_name(cell: str) -> str:
    """A header cell without its number: ``'12. ICW '`` -> ``'ICW'``."""
    return _NUMBERED.sub("", cell).strip()


def _column_number(cell: str) -> int | None:
    m = _NUMBERED.match(cell)
    return int(m.group(1)) if m else None


def column_set_of(cells: list[str]) -> ColumnSet | None:
    """The model family whose export these header cells are, if one fits."""
    freqs: set[float] = set()
    first: int | None = None
    for cell in cells:
        m = _IMP.match(column_name(cell))
        if m and m.group(4).lower() == "impedance":
            freqs.add(_freq_khz(m.group(1), m.group(2)))
            if first is None:
                first = _column_number(cell)
    fits = [c for c in COLUMN_SETS if set(c.frequencies_khz) == freqs]
    exact = [c for c in fits if c.first_impedance is not None and c.first_impedance == first]
    best = exact or fits
    return best[0] if best else None


def _text(data: bytes) -> str:
    if data.startswith(_BOM16):
        return data.decode("utf-16-le", "replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def sniff_separator(header: str) -> str:
    """The cell separator of a header line: comma, semicolon (European Excel) or tab."""
    return max((",", ";", "\t"), key=header.count)


def split_cells(line: str, sep: str = ",") -> list[tuple[str, int]]:
    """CSV cells of one line with their character offsets ("" doubles a quote)."""
    cells: list[tuple[str, int]] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] == " ":  # '"1. Name", "2. ID"': blanks before a cell
            i += 1
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
            while i < n and line[i] == " ":
                i += 1
            if i < n and line[i] != sep:
                raise FrameError("text after a closing quote", i)
            cells.append(("".join(out), start))
        else:
            j = line.find(sep, i)
            j = n if j < 0 else j
            cells.append((line[i:j], start))
            i = j
        if i >= n:
            return cells
        i += 1  # the separator


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


#: the reason a header line is journaled with (once per file)
HEADER_REASON = "header: the columns of the rows after it"


class CsvFramer(Framer):
    """Header line, then one frame per row. The header is journaled once, as its own
    chunk; each row's frame carries it as ``context`` (decode header + row).

    Any line end (CR LF, LF, CR); a UTF-16 LE export (it starts with FF FE, as
    Excel's "Unicode text" does) is split on its UTF-16 line ends, bytes as
    they came.
    """

    def __init__(self, is_header: Any, *, max_len: int = 65536) -> None:
        super().__init__(max_len=max_len)
        self._is_header = is_header
        self.header: bytes | None = None
        self._ref = ""
        self._utf16: bool | None = None  # decided by the stream's first two bytes

    def _line_end(self, buf: bytearray, pos: int) -> int:
        if self._utf16 is None:
            if len(buf) < 2:
                return -1
            self._utf16 = buf.startswith(_BOM16)
        if not self._utf16:
            return super()._line_end(buf, pos)
        j = buf.find(b"\n\x00", pos)
        while j >= 0 and j % 2:
            j = buf.find(b"\n\x00", j + 1)
        return -1 if j < 0 else j + 2

    def _line(self, line: bytes, out: list[Chunk]) -> None:
        if not _text(line).strip("\r\n\x00 \t\ufeff"):
            out.append(Chunk("junk", line, "empty line"))
        elif self._is_header(line):
            self.header = line
            self._ref = f"context sha256 {hashlib.sha256(line).hexdigest()}"
            out.append(Chunk("junk", line, HEADER_REASON))
        elif self.header is None:
            out.append(Chunk("junk", line, "CSV row before any header line"))
        else:  # journaled: the row; decoded: the header and the row
            out.append(Chunk("frame", line, self._ref, context=self.header))

    def _step(self, out: list[Chunk]) -> bool:
        end = self._line_end(self._buf, 0)
        if end < 0:
            if len(self._buf) > self.max_len:
                out.append(
                    Chunk("junk", bytes(self._buf), f"line longer than {self.max_len} bytes")
                )
                self._buf.clear()
            return False
        self._emit_line(out, end)
        return True

    def _emit_line(self, out: list[Chunk], end: int) -> None:
        line = bytes(self._buf[:end])
        del self._buf[:end]
        self._line(line, out)

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

    Options: ``columns`` (Reading attribute -> list of accepted column names, a
    site's own included), ``required`` (attributes a row must have to be a
    measurement; default subject, test time and weight), ``time_formats``
    (strptime formats tried in order; the first is written by the encoder),
    ``model`` (stored as the device model when the export does not name one;
    an ``InBody Type`` cell such as ``270`` names it ``InBody 270``),
    ``column_set`` (the family whose real header the encoder writes, e.g. ``120``).
    """

    name = "lookinbody-csv"
    description = "InBody results from LookinBody CSV exports (header + one row per test)"
    expects = "a LookinBody export: a header line naming its columns (ID, Test Date / Time, Weight, ...), then one row per test"

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        o = self.options
        cols = {**DEFAULT_COLUMNS, **{k: list(v) for k, v in dict(o.get("columns", {})).items()}}
        self._attr_of = {name.casefold(): attr for attr, names in cols.items() for name in names}
        self._names = {attr: names[0] for attr, names in cols.items()}
        self._aliases = cols
        self.required = tuple(str(a) for a in o.get("required", DEFAULT_REQUIRED))
        self.time_formats = [str(f) for f in o.get("time_formats", DEFAULT_TIME_FORMATS)]
        self.model: str | None = o.get("model")
        self.units = str(o.get("units", "auto"))
        if self.units not in ("auto", "metric", "us"):
            raise ValueError(f"units: {self.units!r} is not auto, metric or us")
        family = o.get("column_set")
        self.column_set = next((c for c in COLUMN_SETS if c.family == str(family)), None)
        if family is not None and (self.column_set is None or not self.column_set.columns):
            known = ", ".join(c.family for c in COLUMN_SETS if c.columns)
            raise ValueError(f"column_set: no known header for {family!r} (known: {known})")
        if self.column_set is not None:  # write each field under the name the family uses
            have = {c.casefold(): c for c in self.column_set.columns}
            for attr, names in cols.items():
                self._names[attr] = next(
                    (have[n.casefold()] for n in names if n.casefold() in have), names[0]
                )

    def _header_names(self, line: bytes) -> list[str] | None:
        text = _text(line).lstrip("\ufeff").rstrip("\r\n\x00")
        try:
            return [c for c, _ in split_cells(text, sniff_separator(text))]
        except FrameError:
            return None

    def _is_header(self, line: bytes) -> bool:
        """A line naming at least two columns this profile or LookinBody knows."""
        cells = self._header_names(line)
        if cells is None:
            return False
        known = 0
        for cell in cells:
            name = column_name(cell)
            if name.casefold() in self._attr_of or _IMP.match(name):
                known += 1
                if known >= 2:
                    return True
        return False

    def missing_columns(self, header: list[str]) -> list[str]:
        """What a measurement needs that no column of this header holds, one phrase each."""
        have = {self._attr_of.get(column_name(c).casefold()) for c in header}
        return [
            f"{_WHAT.get(a, a)} ({' / '.join(self._aliases.get(a, [a]))})"
            for a in self.required
            if a not in have
        ]

    def preflight(self, head: bytes) -> str | None:
        """Why a file starting with ``head`` cannot be imported, or None."""
        framer = CsvFramer(self._is_header)
        framer.feed(head)
        if framer.header is None:
            return None
        cells = self._header_names(framer.header) or []
        missing = self.missing_columns(cells)
        if not missing:
            return None
        return (
            f"the export has no column for {', '.join(missing)}: map this site's column "
            "names under `columns:` in a site copy of the profile (drivers_dir), e.g. "
            "columns: {subject_id: [cedula]}"
        )

    def framer(self) -> Framer:
        return CsvFramer(self._is_header)

    # -- decoding -----------------------------------------------------------
    def decode(self, frame: bytes) -> Reading:
        wide = frame.startswith(_BOM16)
        if wide:  # UTF-16 LE: decode it whole; byte offsets are 2 per character
            text = _text(frame)
            cut_c = text.find("\n")
            if cut_c < 0 or not text[cut_c + 1 :].strip("\r\n"):
                raise FrameError("expected a header line and a row", len(frame))
            head_text, row_text = text[: cut_c + 1], text[cut_c + 1 :]
            base = 2 * len(head_text)

            def at(char_offset: int) -> int:
                return base + 2 * char_offset

        else:
            cut = frame.find(b"\n")
            if cut < 0:
                cut = frame.find(b"\r")
            if cut < 0 or not frame[cut + 1 :].strip(b"\r\n"):
                raise FrameError("expected a header line and a row", len(frame))
            head, row = frame[: cut + 1], frame[cut + 1 :]
            head_text, row_text = _text(head), _text(row)
            base = len(head)

            def at(char_offset: int) -> int:
                return base + len(row_text[:char_offset].encode("utf-8", "replace"))

        bom = 1 if head_text.startswith("\ufeff") else 0
        head_text = head_text[bom:].rstrip("\r\n")
        sep = sniff_separator(head_text)
        header = split_cells(head_text, sep)
        cells = split_cells(row_text.rstrip("\r\n\x00"), sep)
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
        us = self.units == "us"
        for (hcell, hoff), (cell, off) in zip(header, cells, strict=True):
            name = column_name(hcell)
            if name in seen:  # a site's export may repeat a column: keep its numbered name
                name = hcell.strip()
                if name in seen:
                    raise FrameError(f"column {name!r} appears twice in the header", hoff + bom)
            seen.add(name)
            cell = cell.strip()
            if cell in _UNMEASURED:
                continue  # not measured
            attr = self._attr_of.get(name.casefold())
            if attr is not None:
                if attr not in fields:
                    feet = _FT_IN.fullmatch(cell) if attr == "height_cm" else None
                    if feet and self.units != "metric":  # US units: masses are pounds
                        us = True
                        inches = int(feet.group(1)) * 12 + float(feet.group(2))
                        values["Height [in]"] = inches
                        fields[attr] = round(inches * IN_CM, 1)
                    else:
                        fields[attr] = self._field(attr, name, cell, at(off))
                continue
            m = _IMP.match(name)
            if m and m.group(4).lower() != "phase angle":
                v = _number(cell)
                is_z = m.group(4).lower() == "impedance"
                # |Z| is never negative; Xc may be, a little (an inductive trunk reading)
                if v is None or not math.isfinite(v) or (is_z and v < 0):
                    what = "a non-negative number" if is_z else "a number"
                    raise FrameError(f"{name}: {cell!r} is not {what}", at(off))
                key = (SEGMENTS[m.group(3).upper()], _freq_khz(m.group(1), m.group(2)))
                (z if is_z else xc)[key] = (v, at(off))
                continue
            if not _is_result(hcell, name):
                continue  # who the person is, normal ranges, a site's own columns: journal only
            level = _LEVEL.fullmatch(cell)  # "Level 6": the visceral fat level
            num = _number(level.group(1) if level else cell)
            if num is not None:
                values[name] = int(num) if (level or cell.lstrip("+-").isdigit()) else num
        if us:
            _to_kg(fields, values)
        missing = [a for a in self.required if a not in fields]
        if missing:
            have = self.missing_columns([c for c, _ in header])
            why = (
                f"the export has no column for {', '.join(have)}"
                if have
                else "empty cell(s) for " + ", ".join(_WHAT.get(a, a) for a in missing)
            )
            raise FrameError(
                f"not a measurement: {why} (map columns under `columns:` in a site copy of the "
                "profile)",
                base,
            )
        points: list[Impedance] = []
        for key, (mag, _) in z.items():
            if key in xc:
                x, off = xc.pop(key)
                if abs(x) > mag:
                    raise FrameError(f"reactance {x:g} ohm exceeds impedance {mag:g} ohm", off)
                points.append(Impedance(key[0], key[1], math.sqrt(mag * mag - x * x), -x))
            else:
                points.append(Impedance(key[0], key[1], mag, None, magnitude_only=True))
        for (seg, f), (x, _) in xc.items():  # a reactance without its impedance: keep it
            values[f"{_freq_label(f)}-{_SEG_CODE[seg]} Reactance"] = x
        kind = values.get("InBody Type")
        if isinstance(kind, int | float) and not isinstance(kind, bool):
            fields.setdefault("model", f"InBody {kind:g}")
        elif self.model is not None:
            fields.setdefault("model", self.model)
        return Reading(impedance=tuple(points), device_values=values, **fields)

    def check(self, reading: Reading) -> list[str]:
        """A warning where the device's BMI disagrees with weight / height² (a misread
        unit system: ``units:`` in the profile)."""
        bmi = reading.device_values.get("BMI (Body Mass Index)")
        if not isinstance(bmi, int | float) or not reading.weight_kg or not reading.height_cm:
            return []
        calc = reading.weight_kg / (reading.height_cm / 100) ** 2
        if abs(calc - bmi) <= 0.2 + 0.01 * bmi:  # the export rounds to 0.1
            return []
        return [
            f"device BMI {bmi:g} but weight / height² = {calc:.1f}: are the export's units "
            f"read right? (units: {self.units}; set units: metric or us in the profile)"
        ]

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
    def _cells(self, r: Reading) -> list[tuple[str, str]]:
        """(column name, cell) of a reading: the profile's column set, else what it holds."""
        known: dict[str, str] = {}
        if r.measured_at is not None:
            known[self._names["measured_at"]] = r.measured_at.strftime(self.time_formats[0])
        if r.subject_id is not None:
            known[self._names["subject_id"]] = r.subject_id
        if r.sex is not None:
            known[self._names["sex"]] = "M" if r.sex == "male" else "F"
        for attr in ("age_years", "height_cm", "weight_kg"):
            v = getattr(r, attr)
            if v is not None:
                known[self._names[attr]] = repr(v)
        for k, v in r.device_values.items():
            known[k] = repr(v) if isinstance(v, float) else str(v)
        for p in r.impedance:
            label = f"{_freq_label(p.freq_khz)}-{_SEG_CODE[p.segment]}"
            if p.x_ohm is None:
                known[f"{label} Impedance"] = repr(p.r_ohm)
            elif self.column_set is not None:  # the family prints |Z| only
                known[f"{label} Impedance"] = f"{math.hypot(p.r_ohm, p.x_ohm):.1f}"
            else:
                known[f"{label} Impedance"] = repr(math.hypot(p.r_ohm, p.x_ohm))
                known[f"{label} Reactance"] = repr(-p.x_ohm)
        if self.column_set is None:
            return list(known.items())
        return [(name, known.get(name, "")) for name in self.column_set.columns]

    def _head(self, cols: list[tuple[str, str]]) -> str:
        sep = ". " if self.column_set is not None else "."  # LookinBody 120: "14. Test Date / Time"
        return ",".join(_quote(f"{i}{sep}{name}") for i, (name, _) in enumerate(cols, 1))

    def encode(self, reading: Reading) -> bytes:
        cols = self._cells(reading)
        row = ",".join(_quote(v) for _, v in cols)
        return f"{self._head(cols)}\r\n{row}\r\n".encode()

    def encode_stream(self, readings: Iterable[Reading]) -> bytes:
        """An export: the header once, then a row per reading (column set of the first)."""
        out: list[str] = []
        for r in readings:
            cols = self._cells(r)
            if not out:
                out.append(self._head(cols) + "\r\n")
            out.append(",".join(_quote(v) for _, v in cols) + "\r\n")
        return "".join(out).encode()

    def write_workbook(self, readings: Iterable[Reading], path: Path) -> None:
        """An Excel export (LookinBody 120 saves .xlsx): the same header and rows.

        Needs openpyxl (``pip install 'bia-acq[xlsx]'``)."""
        openpyxl = _openpyxl()
        wb = openpyxl.Workbook(write_only=True)
        ws = wb.create_sheet()
        head = False
        for r in readings:
            cols = self._cells(r)
            if not head:
                ws.append(next(csv.reader([self._head(cols)])))
                head = True
            ws.append([v for _, v in cols])
        wb.save(path)

    def transcode(self, data: bytes) -> bytes | None:
        """An .xlsx export (a zip file) -> its first sheet as CSV text, header first."""
        if not data.startswith(b"PK\x03\x04"):
            return None
        openpyxl = _openpyxl()
        try:
            wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many kinds for a damaged workbook
            raise FrameError(f"not a readable Excel workbook: {exc}", 0) from None
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\r\n")
        for row in wb.worksheets[0].iter_rows(values_only=True):
            w.writerow([_cell_text(v) for v in row])
        wb.close()
        return buf.getvalue().encode("utf-8")


def _to_kg(fields: dict[str, Any], values: dict[str, float | int | str]) -> None:
    """A US-unit export (height ``5ft. 10.0in.``): the weight and every mass column from
    pounds to kg. The export's own numbers stay in ``values`` as ``<name> [lb]``."""
    for name in [k for k in values if _MASS.search(k) and not k.endswith("]")]:
        v = values[name]
        if isinstance(v, float | int) and not isinstance(v, bool):
            values[f"{name} [lb]"] = v
            values[name] = round(v * LB_KG, 2)
    if isinstance(fields.get("weight_kg"), float | int):
        values["Weight [lb]"] = fields["weight_kg"]
        fields["weight_kg"] = round(fields["weight_kg"] * LB_KG, 2)


def _cell_text(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, dt.datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _openpyxl() -> Any:
    try:
        import openpyxl
    except ImportError:
        raise BiaError(
            "reading or writing .xlsx exports needs openpyxl: pip install 'bia-acq[xlsx]'"
        ) from None
    return openpyxl


def _quote(cell: str) -> str:
    if any(c in cell for c in ',"\r\n') or cell != cell.strip():
        return '"' + cell.replace('"', '""') + '"'
    return cell
