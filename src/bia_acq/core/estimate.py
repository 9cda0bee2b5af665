"""From readings to results: ECW, ICW, TBW and ECW/TBW per segment and whole body.

One batch of readings becomes arrays of shape (measurements, segments,
frequencies) and goes through the method's vectorised computation at once;
one measurement or a million take the same path. The methods themselves are
data, in :mod:`bia_acq.core.methods`.

Where the device gives no trunk impedance (MC-780) but gives a hand-to-foot
path, the trunk is derived as Z(hand-to-foot, right) − Z(right arm) − Z(right
leg), a series model (segments in series along the current path; Organ et
al. 1994). Without that path the trunk is missing: it is never invented. The
whole body is the hand-to-foot path where measured; otherwise arm + trunk +
leg in series, or arm + leg with a warning when the trunk is missing too
(regression methods then skip: that is not the path they were derived on).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from itertools import repeat
from typing import Any

import numpy as np
import numpy.typing as npt

from bia_acq.core.methods import (
    METHODS,
    RESULT_SEGMENTS,
    Bands,
    Inputs,
    Method,
    Volumes,
)
from bia_acq.errors import ConfigError
from bia_acq.model import Reading, Segment

Array = npt.NDArray[np.float64]

__all__ = [
    "METHODS",
    "PATHS",
    "PUBLISHED_COLUMNS",
    "RESULT_COLUMNS",
    "RESULT_SEGMENTS",
    "ROW_KEYS",
    "VALUE_COLUMNS",
    "Bands",
    "Method",
    "ResultColumn",
    "Results",
    "column",
    "estimate",
    "estimate_inputs",
    "get_method",
    "inputs_from_paths",
]


def get_method(name: str) -> Method:
    """The method called ``name``, built in or from a plugin; a one-line ConfigError if
    there is none or its plugin is broken."""
    try:
        return METHODS[name]
    except KeyError:
        problem = METHODS.problem(name)
        if problem is not None:
            raise ConfigError(problem) from None
        raise ConfigError(
            f"unknown estimation method {name!r}",
            fix=f"use one of: {', '.join(sorted(METHODS))} (see `bia-acq methods`)",
        ) from None


@dataclass(frozen=True)
class ResultColumn:
    """One column of ``segment_result``: a value the core computes per segment.

    ``name`` is the column and the key of a result row; ``sql_type`` its SQLite
    type (``REAL`` arrays hold NaN where not computed, stored as NULL);
    ``decimals`` its rounding in the CSV export. ``published`` columns (every
    column added after schema m005) are appended, in declaration order, to the
    reader views (``store/sql/views.sql``) and the CSV export; the columns
    before them have hand-placed positions there that readers rely on.
    """

    name: str
    sql_type: str
    decimals: int | None = None
    published: bool = False


def column(
    sql_type: str, *, name: str = "", decimals: int | None = None, published: bool = False
) -> dict[str, ResultColumn]:
    """Field metadata marking a :class:`Results` array as a result column (see
    docs/extending.md, "A result column"); ``name`` defaults to the field's."""
    return {"column": ResultColumn(name, sql_type, decimals, published)}


@dataclass
class Results:
    """The result record: arrays of shape (measurements, len(segments)); NaN where
    not computed.

    Every field made with :func:`column` is a column of ``segment_result``, in
    declaration order after ``segment``, ``method`` and ``method_version``: the core
    fills it, and the store (:data:`RESULT_COLUMNS`), the reader views and the
    exports read the column list from here. A column is a REAL array, a TEXT
    array or list of lists, or an INTEGER array; ``None`` (optional fields)
    stores NULL.
    """

    method: Method
    segments: tuple[Segment, ...]
    r0_ohm: Array = field(metadata=column("REAL"))
    rinf_ohm: Array = field(metadata=column("REAL"))
    alpha: Array = field(metadata=column("REAL"))
    fc_khz: Array = field(metadata=column("REAL"))
    fit_rms_ohm: Array = field(metadata=column("REAL"))
    ecw_l: Array = field(metadata=column("REAL"))
    icw_l: Array = field(metadata=column("REAL"))
    tbw_l: Array = field(metadata=column("REAL"))
    ecw_tbw_ratio: Array = field(metadata=column("REAL"))
    phase_50khz_deg: Array = field(metadata=column("REAL", name="phase_angle_50khz_deg"))
    classification: npt.NDArray[np.str_] = field(metadata=column("TEXT"))
    fit_status: list[list[str]] = field(metadata=column("TEXT"))
    notes: list[list[str]] = field(default_factory=list)
    fit_grade: npt.NDArray[np.str_] | None = field(default=None, metadata=column("TEXT"))
    fit_flags: npt.NDArray[np.int64] | None = field(default=None, metadata=column("INTEGER"))

    def _cells(self) -> list[tuple[ResultColumn, Any]]:
        """(column, array or None) for every result column, in column order."""
        return [(c, getattr(self, attr)) for attr, c in _RESULT_FIELDS]

    def _values(self) -> list[Array]:
        """The REAL arrays, in the order of :data:`VALUE_COLUMNS`."""
        return [a for c, a in self._cells() if c.sql_type == "REAL"]

    def rows(self, i: int) -> list[dict[str, object]]:
        """The results of measurement ``i`` as one dict per segment (NaN → None)."""
        return self._rows_of(self._columns(i, i + 1), 0)

    def all_rows(self) -> list[list[dict[str, object]]]:
        """``rows(i)`` for every measurement, converted from the arrays once."""
        cols = self._columns(0, self.r0_ohm.shape[0])
        return [self._rows_of(cols, i) for i in range(self.r0_ohm.shape[0])]

    def _columns(self, start: int, stop: int) -> list[list[list[Any]]]:
        """Measurements ``start:stop`` as nested Python lists, one per result column
        (NaN and inf → None; an absent optional column → None)."""
        out: list[list[list[Any]]] = []
        n, s = stop - start, len(self.segments)
        for c, a in self._cells():
            if a is None:
                out.append([[None] * s for _ in range(n)])
            elif isinstance(a, list):
                out.append(a[start:stop])
            elif c.sql_type == "REAL":
                part = a[start:stop]
                obj = part.astype(object)
                obj[~np.isfinite(part)] = None
                out.append(obj.tolist())
            else:
                out.append(a[start:stop].tolist())
        return out

    def _rows_of(self, cols: list[list[list[Any]]], k: int) -> list[dict[str, object]]:
        """Row ``k`` of ``cols`` as one dict per segment."""
        head = (self.method.name, self.method.version)
        return [
            dict(zip(ROW_KEYS, (seg.value, *head, *cells), strict=True))
            for seg, *cells in zip(self.segments, *(c[k] for c in cols), strict=True)
        ]

    def tuples(self, measurement_ids: Sequence[int], computed_at: str) -> list[tuple[object, ...]]:
        """All rows at once, in Store.RESULT_COLUMNS order with measurement_id first
        and computed_at_utc last: the fast path for executemany.

        Values stay floats: non-finite ones become NaN, which SQLite binds as NULL
        (``sqlite3VdbeMemSetDouble`` stores NaN as NULL), so the rows equal those of
        :meth:`rows` (NaN and ±inf → None) without a per-value Python test.
        """
        n, s = self.r0_ohm.shape
        k = n * s
        cols: list[Iterable[Any]] = []
        for c, a in self._cells():
            if a is None:
                cols.append(repeat(None, k))
            elif isinstance(a, list):
                cols.append([x for row in a for x in row])
            elif c.sql_type == "REAL":
                with np.errstate(invalid="ignore"):
                    cols.append(np.where(np.isfinite(a), a, np.nan).ravel().tolist())
            else:
                cols.append(a.ravel().tolist())
        mids = np.repeat(np.asarray(measurement_ids, dtype=np.int64), s).tolist()
        segs = [seg.value for seg in self.segments] * n
        return list(
            zip(
                mids,
                segs,
                repeat(self.method.name, k),
                repeat(self.method.version, k),
                *cols,
                repeat(computed_at, k),
                strict=False,
            )
        )


def _result_fields() -> tuple[tuple[str, ResultColumn], ...]:
    out = []
    for f in fields(Results):
        c = f.metadata.get("column")
        if c is not None:
            out.append((f.name, dataclasses.replace(c, name=c.name or f.name)))
    return tuple(out)


#: (Results attribute, column) of every result column, in column order
_RESULT_FIELDS = _result_fields()
#: the result columns of ``segment_result`` after segment, method and method_version
RESULT_COLUMNS: tuple[ResultColumn, ...] = tuple(c for _, c in _RESULT_FIELDS)
#: names of the REAL result columns (the numbers), in column order
VALUE_COLUMNS = tuple(c.name for c in RESULT_COLUMNS if c.sql_type == "REAL")
#: keys of a result row (Store.RESULT_COLUMNS), in the order the rows are filled
ROW_KEYS = ("segment", "method", "method_version", *(c.name for c in RESULT_COLUMNS))
#: result columns added since m005: appended to the reader views and the CSV export
PUBLISHED_COLUMNS = tuple(c for c in RESULT_COLUMNS if c.published)


#: measurement paths read from a reading, in this order
PATHS = (
    Segment.RIGHT_ARM,
    Segment.LEFT_ARM,
    Segment.TRUNK,
    Segment.RIGHT_LEG,
    Segment.LEFT_LEG,
    Segment.WHOLE_BODY_RIGHT,
)


def impedance_arrays(
    readings: Sequence[Reading], paths: Sequence[str]
) -> tuple[Array, npt.NDArray[np.complex128]]:
    """(freq_khz (F,), Z (N, P, F) complex, NaN where not measured; imag NaN: no X).

    Magnitude-only points (|Z| without phase) are left out: |Z| is not a
    resistance, and a Cole fit on magnitudes alone (``fit_cole`` can do it) is not
    what the methods were validated on; :func:`estimate` notes them instead.
    """
    freqs = sorted({z.freq_khz for rd in readings for z in rd.impedance if not z.magnitude_only})
    f_index = {f: k for k, f in enumerate(freqs)}
    p_index = {p: k for k, p in enumerate(paths)}
    z = np.full((len(readings), len(paths), len(freqs)), np.nan + 0j, dtype=np.complex128)
    for i, rd in enumerate(readings):
        for pt in rd.impedance:
            j = p_index.get(pt.segment)
            if j is not None and not pt.magnitude_only:
                x = pt.x_ohm if pt.x_ohm is not None else np.nan
                z[i, j, f_index[pt.freq_khz]] = complex(pt.r_ohm, x)
    return np.asarray(freqs, dtype=float), z


def inputs_from_paths(
    freqs_khz: Array,
    zp: npt.NDArray[np.complex128],
    *,
    height_cm: Array,
    weight_kg: Array,
    age_years: Array,
    sex: Sequence[str | None] | npt.NDArray[np.object_],
) -> tuple[Inputs, list[list[str]]]:
    """Build :class:`Inputs` from path arrays (N, len(PATHS), F); also the notes."""
    n = zp.shape[0]
    ra, la, tr, rl, ll, wbr = (zp[:, k, :] for k in range(len(PATHS)))
    have_wbr = np.asarray(np.isfinite(wbr.real).any(-1), dtype=bool).reshape(n)
    have_tr = np.asarray(np.isfinite(tr.real).any(-1), dtype=bool).reshape(n)
    derive = ~have_tr & have_wbr
    trunk = np.where(derive[:, None], wbr - ra - rl, tr)
    series = ra + rl + np.where(have_tr[:, None], tr, 0)
    whole = np.where(have_wbr[:, None], wbr, series)
    notes: list[list[str]] = [[] for _ in range(n)]
    have_series = np.asarray(np.isfinite(series.real).any(-1), dtype=bool).reshape(n)
    only_series = ~have_wbr & ~have_tr & have_series
    for i in np.nonzero(derive)[0]:
        notes[i].append("trunk derived as hand-to-foot path minus right arm and right leg")
    for i in np.nonzero(only_series)[0]:
        notes[i].append("whole body from right arm + right leg in series; trunk not measured")
    z = np.stack([ra, la, trunk, rl, ll, whole], axis=1)
    sex_arr = np.asarray(sex, dtype=object)
    inp = Inputs(
        freqs_khz=np.asarray(freqs_khz, dtype=float),
        z=z,
        height_cm=np.asarray(height_cm, dtype=float),
        weight_kg=np.asarray(weight_kg, dtype=float),
        age_years=np.asarray(age_years, dtype=float),
        male=sex_arr == "male",
        known_sex=(sex_arr == "male") | (sex_arr == "female"),
        whole_body_path=np.asarray(have_wbr | have_tr, dtype=bool),
    )
    return inp, notes


def _num(v: float | int | None) -> float:
    return float(v) if v else np.nan


def estimate(
    readings: Sequence[Reading],
    method: str = "hanai-bis",
    bands: Mapping[str, Bands] | None = None,
) -> Results:
    """Compute results for a batch of readings with the named method."""
    freqs, zp = impedance_arrays(readings, [p.value for p in PATHS])
    inp, notes = inputs_from_paths(
        freqs,
        zp,
        height_cm=np.array([_num(rd.height_cm) for rd in readings], dtype=float),
        weight_kg=np.array([_num(rd.weight_kg) for rd in readings], dtype=float),
        age_years=np.array(
            [float(rd.age_years) if rd.age_years is not None else np.nan for rd in readings]
        ),
        sex=[rd.sex for rd in readings],
    )
    name = get_method(method).name
    for i, rd in enumerate(readings):
        mags = sum(1 for pt in rd.impedance if pt.magnitude_only)
        if mags:
            notes[i].append(
                f"{mags} impedance point(s) are magnitudes |Z| without reactance: "
                f"{name} needs resistance and reactance and did not use them"
            )
    return estimate_inputs(inp, method, bands, notes)


def estimate_inputs(
    inp: Inputs,
    method: str,
    bands: Mapping[str, Bands] | None = None,
    notes: list[list[str]] | None = None,
) -> Results:
    """Compute results for a batch already in arrays (used by `recompute`)."""
    m = get_method(method)
    band = (bands or {}).get(m.name, m.bands)
    assert m.compute is not None
    v: Volumes = m.compute(inp)
    n, s = inp.n, len(RESULT_SEGMENTS)
    all_notes = notes if notes is not None else [[] for _ in range(n)]
    for i in range(n):
        all_notes[i].extend(v.notes[i])
    z50 = inp.at_khz(50.0)
    if z50 is not None:
        with np.errstate(invalid="ignore"):
            phase = np.degrees(np.arctan2(-z50.imag, z50.real))
    else:
        phase = np.full((n, s), np.nan)
    nan = np.full((n, s), np.nan)
    if v.fit is not None:
        fit = v.fit
        status = fit.status_text().astype(object)
        grade: npt.NDArray[np.str_] | None = fit.grade
        flags: npt.NDArray[np.int64] | None = fit.flags
        params = (fit.r0, fit.rinf, fit.alpha, fit.fc_hz / 1e3, fit.rms_ohm)
    else:
        status = np.full((n, s), "ok", dtype=object)
        grade, flags = None, None
        params = (nan, nan, nan, nan, nan)
    if v.skipped.size:
        status = np.where(v.skipped != "", v.skipped, status)
    if z50 is None:
        for i in range(n):
            all_notes[i].append("no 50 kHz point: no phase angle")
    return Results(
        method=m,
        segments=RESULT_SEGMENTS,
        r0_ohm=params[0],
        rinf_ohm=params[1],
        alpha=params[2],
        fc_khz=params[3],
        fit_rms_ohm=params[4],
        ecw_l=v.ecw,
        icw_l=v.icw,
        tbw_l=v.tbw,
        ecw_tbw_ratio=v.ratio,
        phase_50khz_deg=phase,
        classification=band.classify(v.ratio),
        fit_status=status.tolist(),
        notes=all_notes,
        fit_grade=grade,
        fit_flags=flags,
    )
