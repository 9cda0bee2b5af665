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

from bia_acq.core.compare import limb_asymmetry_labels
from bia_acq.core.fit import ColeFit
from bia_acq.core.methods import (
    DEFAULT_UNCERTAINTY,
    EARNED,
    METHODS,
    RESULT_SEGMENTS,
    VENDOR_BANDS,
    Z95,
    Bands,
    Inputs,
    Method,
    Uncertainty,
    Volumes,
    fit_segments,
    label,
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


def _pub(sql_type: str, decimals: int | None = None) -> dict[str, ResultColumn]:
    return column(sql_type, decimals=decimals, published=True)


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
    # -- issue 12: 95 % intervals (docs/physiology.md, "Measurement uncertainty") --
    r0_low_ohm: Array | None = field(default=None, metadata=_pub("REAL", 1))
    r0_high_ohm: Array | None = field(default=None, metadata=_pub("REAL", 1))
    rinf_low_ohm: Array | None = field(default=None, metadata=_pub("REAL", 1))
    rinf_high_ohm: Array | None = field(default=None, metadata=_pub("REAL", 1))
    ecw_low_l: Array | None = field(default=None, metadata=_pub("REAL", 2))
    ecw_high_l: Array | None = field(default=None, metadata=_pub("REAL", 2))
    icw_low_l: Array | None = field(default=None, metadata=_pub("REAL", 2))
    icw_high_l: Array | None = field(default=None, metadata=_pub("REAL", 2))
    tbw_low_l: Array | None = field(default=None, metadata=_pub("REAL", 2))
    tbw_high_l: Array | None = field(default=None, metadata=_pub("REAL", 2))
    ecw_tbw_low: Array | None = field(default=None, metadata=_pub("REAL", 4))
    ecw_tbw_high: Array | None = field(default=None, metadata=_pub("REAL", 4))
    #: where the band the label was judged by comes from ('' without a band)
    band_source: list[list[str]] | None = field(default=None, metadata=_pub("TEXT"))
    #: limbs: R0 of the other side / R0 of this one, and its label (core.compare)
    asymmetry_r0_ratio: Array | None = field(default=None, metadata=_pub("REAL", 4))
    asymmetry: npt.NDArray[np.str_] | None = field(default=None, metadata=_pub("TEXT"))
    #: what the method computed, with the intervals (not a column by itself)
    volumes: Volumes | None = None
    #: per measurement, the method version to record (the device method: the model)
    versions: list[str] | None = None

    def _cells(self) -> list[tuple[ResultColumn, Any]]:
        """(column, array or None) for every result column, in column order."""
        return [(c, getattr(self, attr)) for attr, c in _RESULT_FIELDS]

    def _values(self) -> list[Array]:
        """The REAL arrays, in the order of :data:`VALUE_COLUMNS`."""
        return [a for c, a in self._cells() if c.sql_type == "REAL"]

    def rows(self, i: int) -> list[dict[str, object]]:
        """The results of measurement ``i`` as one dict per segment (NaN → None)."""
        return self._rows_of(self._columns(i, i + 1), 0, i)

    def all_rows(self) -> list[list[dict[str, object]]]:
        """``rows(i)`` for every measurement, converted from the arrays once."""
        cols = self._columns(0, self.r0_ohm.shape[0])
        return [self._rows_of(cols, i, i) for i in range(self.r0_ohm.shape[0])]

    def version(self, i: int) -> str:
        """The method version recorded for measurement ``i``."""
        return self.versions[i] if self.versions else self.method.version

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

    def _rows_of(self, cols: list[list[list[Any]]], k: int, i: int) -> list[dict[str, object]]:
        """Row ``k`` of ``cols`` (measurement ``i``) as one dict per segment."""
        head = (self.method.name, self.version(i))
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
                (
                    [v for v in self.versions for _ in range(s)]
                    if self.versions
                    else repeat(self.method.version, k)
                ),
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
    Segment.WHOLE_BODY_LEFT,
)


def impedance_arrays(
    readings: Sequence[Reading], paths: Sequence[str]
) -> tuple[Array, npt.NDArray[np.complex128]]:
    """(freq_khz (F,), Z (N, P, F) complex, NaN where not measured; imag NaN: no X).

    Magnitude-only points (|Z| without phase) are left out: |Z| is not a
    resistance, and a Cole fit on magnitudes alone (``fit_cole`` can do it) is not
    what the methods were validated on; :func:`estimate` notes them instead.
    """
    n = len(readings)
    pts = [rd.impedance for rd in readings]
    count = [len(p) for p in pts]
    if sum(count) == 0:
        return np.zeros(0), np.full((n, len(paths), 0), np.nan + 0j, dtype=np.complex128)
    # every point of the batch in one set of arrays: its reading, path and frequency
    owner = np.repeat(np.arange(n), count)
    p_index = {p: k for k, p in enumerate(paths)}
    path = np.array([p_index.get(s, -1) for p in pts for s in p.segment], dtype=np.intp)
    freq = np.concatenate([p.freq_khz for p in pts])
    mag = np.concatenate([p.magnitude_only for p in pts])
    freqs = np.unique(freq[~mag])
    keep = ~mag & (path >= 0)
    zk = np.empty(int(keep.sum()), dtype=np.complex128)
    zk.real = np.concatenate([p.r_ohm for p in pts])[keep]
    zk.imag = np.concatenate([p.x_ohm for p in pts])[keep]  # NaN: no reactance
    z = np.full((n, len(paths), len(freqs)), np.nan + 0j, dtype=np.complex128)
    z[owner[keep], path[keep], np.searchsorted(freqs, freq[keep])] = zk
    return freqs, z


def inputs_from_paths(
    freqs_khz: Array,
    zp: npt.NDArray[np.complex128],
    *,
    height_cm: Array,
    weight_kg: Array,
    age_years: Array,
    sex: Sequence[str | None] | npt.NDArray[np.object_],
    uncertainty: Uncertainty | Sequence[Uncertainty] = DEFAULT_UNCERTAINTY,
    device: Mapping[str, Array] | None = None,
    device_vendor: Sequence[str] = (),
    device_model: Sequence[str] = (),
) -> tuple[Inputs, list[list[str]]]:
    """Build :class:`Inputs` from path arrays (N, len(PATHS), F); also the notes.

    ``uncertainty`` (one, or one per measurement) gives each measured point's σ;
    a derived segment gets the root sum of squares of its paths' σ. Where both
    hand-to-foot paths are measured, the trunk is derived from each and the two
    averaged, with a note of how well they agree.
    """
    n = zp.shape[0]
    ra, la, tr, rl, ll, wbr = (zp[:, k, :] for k in range(6))
    wbl = zp[:, 6, :] if zp.shape[1] > 6 else np.full_like(wbr, np.nan)
    unc = [uncertainty] * n if isinstance(uncertainty, Uncertainty) else list(uncertainty)
    rel = np.array([u.relative for u in unc], dtype=float)[:, None, None]
    ab = np.array([u.absolute_ohm for u in unc], dtype=float)[:, None, None]
    sp = np.hypot(rel * np.abs(zp), ab)  # (N, P, F), NaN where not measured
    s_ra, s_la, s_tr, s_rl, s_ll, s_wbr = (sp[:, k, :] for k in range(6))
    s_wbl = sp[:, 6, :] if zp.shape[1] > 6 else np.full_like(s_wbr, np.nan)
    have_wbr = np.asarray(np.isfinite(wbr.real).any(-1), dtype=bool).reshape(n)
    have_wbl = np.asarray(np.isfinite(wbl.real).any(-1), dtype=bool).reshape(n)
    have_tr = np.asarray(np.isfinite(tr.real).any(-1), dtype=bool).reshape(n)
    derive = ~have_tr & have_wbr
    both = derive & have_wbl
    t_r, v_r = wbr - ra - rl, s_wbr**2 + s_ra**2 + s_rl**2
    t_l, v_l = wbl - la - ll, s_wbl**2 + s_la**2 + s_ll**2
    t_both, v_both = 0.5 * (t_r + t_l), 0.25 * (v_r + v_l)
    trunk = np.where(both[:, None], t_both, np.where(derive[:, None], t_r, tr))
    s_trunk = np.sqrt(np.where(both[:, None], v_both, np.where(derive[:, None], v_r, s_tr**2)))
    series = ra + rl + np.where(have_tr[:, None], tr, 0)
    s_series = np.sqrt(s_ra**2 + s_rl**2 + np.where(have_tr[:, None], s_tr**2, 0))
    whole = np.where(have_wbr[:, None], wbr, series)
    s_whole = np.where(have_wbr[:, None], s_wbr, s_series)
    notes: list[list[str]] = [[] for _ in range(n)]
    have_series = np.asarray(np.isfinite(series.real).any(-1), dtype=bool).reshape(n)
    only_series = ~have_wbr & ~have_tr & have_series
    for i in np.nonzero(derive & ~both)[0]:
        notes[i].append("trunk derived as hand-to-foot path minus right arm and right leg")
    if both.any():
        k50 = int(np.argmin(np.abs(np.asarray(freqs_khz, dtype=float) - 50.0)))
        diff = np.abs(t_r[:, k50] - t_l[:, k50])
        sd = np.sqrt(v_r[:, k50] + v_l[:, k50])
        for i in np.nonzero(both)[0]:
            agree = "consistent" if diff[i] <= 1.96 * sd[i] else "NOT consistent"
            notes[i].append(
                "trunk derived from both hand-to-foot paths (each minus its arm and leg) and "
                f"averaged: right and left differ by {diff[i]:.1f} Ω at "
                f"{float(freqs_khz[k50]):g} kHz, {agree} with the measurement uncertainty "
                f"(95 % limit {1.96 * sd[i]:.1f} Ω)"
            )
    for i in np.nonzero(only_series)[0]:
        notes[i].append("whole body from right arm + right leg in series; trunk not measured")
    z = np.stack([ra, la, trunk, rl, ll, whole], axis=1)
    sigma = np.stack([s_ra, s_la, s_trunk, s_rl, s_ll, s_whole], axis=1)
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
        sigma=np.where(np.isfinite(z.real), sigma, np.nan),
        device=device,
        device_vendor=tuple(device_vendor),
        device_model=tuple(device_model),
    )
    return inp, notes


def _num(v: float | int | None) -> float:
    return float(v) if v else np.nan


def estimate(
    readings: Sequence[Reading],
    method: str = "hanai-bis",
    bands: Mapping[str, Bands] | None = None,
    uncertainty: Uncertainty | Sequence[Uncertainty] | None = None,
    cole_fit: ColeFit | None = None,
) -> Results:
    """Compute results for a batch of readings with the named method.

    ``uncertainty``: the analyzer's stated measurement uncertainty (one, or one
    per reading); by default the profile's whose model the reading names
    (:func:`bia_acq.core.methods.uncertainty_for_model`). ``cole_fit``: the Cole fit of
    these readings with this uncertainty, when another method made it already
    (``results.volumes.fit``): not made again for the limb asymmetry.
    """
    from bia_acq.core.methods import device_inputs, uncertainty_for_model

    freqs, zp = impedance_arrays(readings, [p.value for p in PATHS])
    if uncertainty is None:
        uncertainty = [uncertainty_for_model(rd.model or "") for rd in readings]
    inp, notes = inputs_from_paths(
        freqs,
        zp,
        height_cm=np.array([_num(rd.height_cm) for rd in readings], dtype=float),
        weight_kg=np.array([_num(rd.weight_kg) for rd in readings], dtype=float),
        age_years=np.array(
            [float(rd.age_years) if rd.age_years is not None else np.nan for rd in readings]
        ),
        sex=[rd.sex for rd in readings],
        uncertainty=uncertainty,
        **device_inputs([rd.device_values for rd in readings], [rd.model for rd in readings]),
    )
    name = get_method(method).name
    for i, rd in enumerate(readings):
        mags = int(rd.impedance.magnitude_only.sum())
        if mags:
            notes[i].append(
                f"{mags} impedance point(s) are magnitudes |Z| without reactance: "
                f"{name} needs resistance and reactance and did not use them"
            )
    return estimate_inputs(inp, method, bands, notes, cole_fit)


def estimate_inputs(
    inp: Inputs,
    method: str,
    bands: Mapping[str, Bands] | None = None,
    notes: list[list[str]] | None = None,
    cole_fit: ColeFit | None = None,
) -> Results:
    """Compute results for a batch already in arrays (used by `recompute`); ``cole_fit``:
    see :func:`estimate`."""
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
    if v.not_applicable.size:
        status = np.where(
            (v.not_applicable != "") & np.isin(status, ("ok", "")), v.not_applicable, status
        )
    if z50 is None:
        for i in range(n):
            all_notes[i].append("no 50 kHz point: no phase angle")
    labels = label(v, band)
    # the band each label was judged by: the site's, the method's, or the vendor's
    judged = np.isin(labels, (*EARNED, "indeterminate"))
    src = np.where(judged, band.source if band is not None else "", "").astype(object)
    if band is None and m.name == "device":
        for vendor, vb in VENDOR_BANDS.items():
            rows = np.array([x == vendor for x in inp.device_vendor], dtype=bool)
            if rows.size:
                src[rows] = np.where(judged[rows], vb.source, "")
    # limbs: inter-limb R0 ratio against the published limits (core.compare)
    afit = v.fit or cole_fit or fit_segments(inp)
    sex = np.where(inp.known_sex, np.where(inp.male, "male", "female"), "")
    asym_ratio, asym = limb_asymmetry_labels(afit.r0, afit.sd(0), RESULT_SEGMENTS, sex)
    ivs = {k: v.interval(k) for k in ("ecw", "icw", "tbw", "ratio")}
    if v.fit is not None:
        r0_iv = (fit.r0 - Z95 * fit.sd(0), fit.r0 + Z95 * fit.sd(0))
        rinf_iv = (fit.rinf - Z95 * fit.sd(1), fit.rinf + Z95 * fit.sd(1))
    else:
        r0_iv = rinf_iv = (nan, nan)
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
        classification=labels,
        fit_status=status.tolist(),
        notes=all_notes,
        fit_grade=grade,
        fit_flags=flags,
        r0_low_ohm=r0_iv[0],
        r0_high_ohm=r0_iv[1],
        rinf_low_ohm=rinf_iv[0],
        rinf_high_ohm=rinf_iv[1],
        ecw_low_l=ivs["ecw"][0],
        ecw_high_l=ivs["ecw"][1],
        icw_low_l=ivs["icw"][0],
        icw_high_l=ivs["icw"][1],
        tbw_low_l=ivs["tbw"][0],
        tbw_high_l=ivs["tbw"][1],
        ecw_tbw_low=ivs["ratio"][0],
        ecw_tbw_high=ivs["ratio"][1],
        band_source=src.tolist(),
        asymmetry_r0_ratio=asym_ratio,
        asymmetry=asym,
        volumes=v,
        versions=v.versions,
    )
