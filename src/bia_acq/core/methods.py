"""Estimation methods as data: a registry of named, versioned methods.

Each :class:`Method` carries its citation, the inputs it needs, the outputs
it gives, what of its constants was verified, where it applies, how its
uncertainty is propagated, and **its own edema bands, only where a source
publishes them** (``bands=None``: "no published band"). An ECW/TBW ratio means
nothing without the method that produced it (Hanai-BIS gives about 0.43 in
healthy adults, InBody's own algorithm about 0.38). What was searched and
found for every constant and band is in the project's ``docs/physiology.md``.

**Labels are earned** (:func:`label`): ``normal``, ``slightly over`` or
``edema`` only where the 95 % interval of the ratio lies inside one band;
``indeterminate`` where it crosses a band limit; ``not applicable`` where the
method cannot be used on this spectrum, segment or subject (too few
frequencies, outside its population, arm + leg without trunk, implausible
volumes; the reason goes to the record); ``no published band`` where the
method has none and the site configured none.

A method's ``compute`` takes :class:`Inputs` (arrays of shape (N, segments,
frequencies) and per-measurement anthropometry) and returns :class:`Volumes`.
What a method cannot compute from what the device sent (no 50 kHz point, no
reactance, no sex or height) is skipped with a reason, never guessed.

Bumping a method's version is how a change of its numbers is recorded: stored
results keep the version that computed them, and `bia-acq recompute` adds the
new version next to the old.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from bia_acq.core.anthropometry import segment_length_cm, segment_volume_l
from bia_acq.core.fit import FLAG_HOOK, ColeFit, fit_cole
from bia_acq.core.hanai import (
    ecw_de_lorenzo,
    icw_ecw_ratio_matthie,
    moissl_volumes,
    rho,
    segment_ecw,
)
from bia_acq.core.regression import (
    ecw_lukaski_bolonchuk,
    tbw_kushner_1992,
    tbw_lukaski_bolonchuk,
    tbw_sun_2003,
)
from bia_acq.model import Segment
from bia_acq.registry import Registry

if TYPE_CHECKING:
    from bia_acq.drivers import Profile

Array = npt.NDArray[np.float64]

RESULT_SEGMENTS: tuple[Segment, ...] = (
    Segment.RIGHT_ARM,
    Segment.LEFT_ARM,
    Segment.TRUNK,
    Segment.RIGHT_LEG,
    Segment.LEFT_LEG,
    Segment.WHOLE_BODY,
)
WB = len(RESULT_SEGMENTS) - 1
#: which anthropometric segment each result segment is (whole body: None)
_KIND = ("arm", "arm", "trunk", "leg", "leg", None)


#: 95 % coverage factor of a normal distribution (intervals are estimate ± Z95·SD)
Z95 = 1.959964

LABELS = (
    "normal",
    "slightly over",
    "edema",
    "below normal",
    "indeterminate",
    "not applicable",
    "no published band",
)
#: the labels that make a clinical statement (HL7/FHIR carry an interpretation only for these)
EARNED = ("normal", "slightly over", "edema", "below normal")


@dataclass(frozen=True)
class Bands:
    """Edema bands of one method on its own ECW/TBW scale, with their source.

    ratio < ``normal_min`` "below normal" (when set), ≤ ``normal_max``
    "normal", ≤ ``slight_max`` "slightly over" (when a source publishes such a
    sub-band), above that "edema". ``site`` marks bands a site configured.
    """

    normal_max: float
    source: str
    slight_max: float | None = None
    normal_min: float | None = None
    site: bool = False

    def band(self, ratio: npt.ArrayLike) -> npt.NDArray[np.str_]:
        """The band each (point) ratio falls in; '' where it is not finite."""
        r = np.asarray(ratio, dtype=float)
        top = self.slight_max if self.slight_max is not None else self.normal_max
        with np.errstate(invalid="ignore"):
            out = np.where(
                r <= self.normal_max, "normal", np.where(r <= top, "slightly over", "edema")
            )
            if self.normal_min is not None:
                out = np.where(r < self.normal_min, "below normal", out)
        return np.where(np.isfinite(r), out, "")

    def classify(self, ratio: npt.ArrayLike) -> npt.NDArray[np.str_]:
        """Point classification (no interval): for the simulator's true ratios only."""
        b = self.band(ratio)
        return np.where(b == "", "not applicable", b)

    def label(self, low: npt.ArrayLike, high: npt.ArrayLike) -> npt.NDArray[np.str_]:
        """The band where the interval [low, high] lies inside one; else 'indeterminate'."""
        a, b = self.band(low), self.band(high)
        return np.where((a == b) & (a != ""), a, "indeterminate")

    def describe(self) -> str:
        low = f"{self.normal_min:.3f}–" if self.normal_min is not None else "≤ "
        text = f"normal {low}{self.normal_max:.3f}"
        if self.slight_max is not None:
            text += f", slightly over ≤ {self.slight_max:.3f}, edema above"
        else:
            text += ", edema above"
        return text + (" (site-configured)" if self.site else "")

    def override(self, **values: float | None) -> Bands:
        return replace(self, source="configured by this site", site=True, **values)  # type: ignore[arg-type]


def site_bands(
    normal_max: float, slight_max: float | None = None, normal_min: float | None = None
) -> Bands:
    """Bands a site configured for a method (reports say they are the site's)."""
    return Bands(
        normal_max=normal_max,
        slight_max=slight_max,
        normal_min=normal_min,
        source="configured by this site",
        site=True,
    )


@dataclass(frozen=True)
class Uncertainty:
    """An analyzer's stated measurement uncertainty of R and X per point (one SD).

    σ = √((relative·|Z|)² + absolute_ohm²), independent between points and
    between R and X. ``source`` says where the figures come from.
    """

    relative: float
    absolute_ohm: float
    source: str

    def sigma(self, z: npt.ArrayLike) -> Array:
        zz = np.asarray(z)
        return np.asarray(np.hypot(self.relative * np.abs(zz), self.absolute_ohm), dtype=float)


#: used where a profile states none (docs/physiology.md, "Measurement uncertainty")
DEFAULT_UNCERTAINTY = Uncertainty(
    relative=0.005,
    absolute_ohm=0.1,
    source=(
        "assumed: no manufacturer states a per-point accuracy in the material searched "
        "(docs/physiology.md); 0.5 % of |Z| per point, independent between frequencies, "
        "and 0.1 Ω (the display resolution)"
    ),
)


@dataclass(frozen=True)
class Inputs:
    """One batch of measurements as arrays (N measurements, S = 6 result segments)."""

    freqs_khz: Array  # (F,), sorted
    #: (N, S, F) R + jX; NaN where not measured, imag NaN where only R was sent;
    #: magnitude-only points (|Z|, no phase) are not in here: they are not resistances
    z: npt.NDArray[np.complex128]
    height_cm: Array  # (N,)
    weight_kg: Array
    age_years: Array
    male: npt.NDArray[np.bool_]
    known_sex: npt.NDArray[np.bool_]
    #: whole body is a hand-to-foot path (measured, or arm + trunk + leg);
    #: False where it is arm + leg only (trunk missing)
    whole_body_path: npt.NDArray[np.bool_]
    #: (N, S, F) standard uncertainty of R and of X per point (Ω); derived
    #: segments carry the root sum of squares of the paths they come from.
    #: None: no intervals (every label then 'indeterminate')
    sigma: Array | None = None
    #: the analyzer's own whole-body figures, (N,) arrays: ecw_l, icw_l, tbw_l,
    #: ecw_tbw_ratio (NaN where not sent), and per measurement its vendor
    device: Mapping[str, Array] | None = None
    device_vendor: tuple[str, ...] = ()
    #: per measurement, the analyzer's model and firmware (the device method's version)
    device_model: tuple[str, ...] = ()

    @property
    def n(self) -> int:
        return int(self.z.shape[0])

    def at_khz(self, khz: float) -> npt.NDArray[np.complex128] | None:
        """Z at one frequency, (N, S), or None if the batch has no such point."""
        k = np.searchsorted(self.freqs_khz, khz)
        if k < len(self.freqs_khz) and self.freqs_khz[k] == khz:
            return self.z[:, :, int(k)]
        return None

    def sigma_at_khz(self, khz: float) -> Array:
        """σ at one frequency, (N, S); NaN without it."""
        k = np.searchsorted(self.freqs_khz, khz)
        if self.sigma is not None and k < len(self.freqs_khz) and self.freqs_khz[k] == khz:
            return self.sigma[:, :, int(k)]
        return np.full((self.n, len(RESULT_SEGMENTS)), np.nan)


def _nan(n: int) -> Array:
    return np.full((n, len(RESULT_SEGMENTS)), np.nan)


@dataclass
class Volumes:
    """What a method computed: (N, S) arrays, NaN where not computed."""

    ecw: Array
    icw: Array
    tbw: Array
    ratio: Array
    fit: ColeFit | None = None
    #: per cell, why it was not computed ('' where it was)
    skipped: npt.NDArray[np.str_] = field(default_factory=lambda: np.empty((0, 0), dtype=str))
    #: per measurement, notes for the record
    notes: list[list[str]] = field(default_factory=list)
    #: standard uncertainty of ecw, icw, tbw, ratio (N, S), propagated from the points
    ecw_sd: Array | None = None
    icw_sd: Array | None = None
    tbw_sd: Array | None = None
    ratio_sd: Array | None = None
    #: per cell, why the method does not apply ('' where it does): values may
    #: still be shown, but the cell is labelled 'not applicable'
    not_applicable: npt.NDArray[np.str_] = field(
        default_factory=lambda: np.empty((0, 0), dtype=str)
    )
    #: per measurement, the version to record (the device method: model and firmware)
    versions: list[str] | None = None
    #: labels the method assigns itself (the device method: per vendor's bands)
    labels: npt.NDArray[np.str_] | None = None

    @classmethod
    def empty(cls, n: int) -> Volumes:
        return cls(
            _nan(n),
            _nan(n),
            _nan(n),
            _nan(n),
            skipped=np.full((n, len(RESULT_SEGMENTS)), "", dtype=object),
            notes=[[] for _ in range(n)],
            ecw_sd=_nan(n),
            icw_sd=_nan(n),
            tbw_sd=_nan(n),
            ratio_sd=_nan(n),
            not_applicable=np.full((n, len(RESULT_SEGMENTS)), "", dtype=object),
        )

    def interval(self, name: str) -> tuple[Array, Array]:
        """95 % interval (low, high) of ``ecw``, ``icw``, ``tbw`` or ``ratio``."""
        value: Array = getattr(self, name)
        sd = getattr(self, name + "_sd")
        if sd is None:
            sd = np.full(value.shape, np.nan)
        return value - Z95 * sd, value + Z95 * sd

    def mark(self, where: npt.ArrayLike, reason: str) -> None:
        """Mark cells not applicable (the first reason stays)."""
        w = np.asarray(where, dtype=bool)
        self.not_applicable = np.where(w & (self.not_applicable == ""), reason, self.not_applicable)


@dataclass(frozen=True)
class Method:
    name: str
    version: str
    citation: str
    description: str
    #: the method's own bands, only where published (None: "no published band")
    bands: Bands | None
    kind: str = "bis"  # "bis": Cole fit per segment; "regression": whole body at 50 kHz
    inputs: str = ""
    outputs: str = ""
    verification: str = ""
    compute: Callable[[Inputs], Volumes] | None = None
    #: where the method applies (what makes a cell 'not applicable')
    applicability: str = ""
    #: how the interval is obtained
    uncertainty_model: str = ""
    #: why there is no band (or where the band comes from), for `bia-acq methods`
    bands_note: str = ""


def label(v: Volumes, bands: Bands | None) -> npt.NDArray[np.str_]:
    """The earned label of every cell (N, S); see the module docstring."""
    low, high = v.interval("ratio")
    if bands is None and v.labels is not None:
        return v.labels
    if bands is None:
        out = np.full(v.ratio.shape, "no published band", dtype=object)
    else:
        out = bands.label(low, high).astype(object)
    out = np.where(np.isfinite(v.ratio), out, "not applicable")
    na = v.not_applicable if v.not_applicable.size else np.full(v.ratio.shape, "")
    return np.asarray(np.where(na != "", "not applicable", out), dtype=str)


def propagate(fn: Callable[..., tuple[Array, ...]], xs: Sequence[Array], cov: Array) -> list[Array]:
    """Standard uncertainty of each output of ``fn(*xs)`` by the delta method.

    ``cov`` (..., k, k) is the covariance of the k inputs ``xs`` (each of shape
    (...)); gradients by central differences of ``fn`` (vectorised: 2k calls on
    whole arrays). Returns one SD array per output.
    """
    grads: list[list[Array]] = []
    for i, x in enumerate(xs):
        h = 1e-6 * np.abs(x) + 1e-12
        up = [xx + h if j == i else xx for j, xx in enumerate(xs)]
        dn = [xx - h if j == i else xx for j, xx in enumerate(xs)]
        with np.errstate(invalid="ignore", divide="ignore"):
            grads.append([(a - b) / (2 * h) for a, b in zip(fn(*up), fn(*dn), strict=True)])
    out = []
    for j in range(len(grads[0])):
        var = np.zeros_like(grads[0][j])
        for a in range(len(xs)):
            for b in range(len(xs)):
                var = var + grads[a][j] * grads[b][j] * cov[..., a, b]
        out.append(np.sqrt(np.maximum(var, 0.0)))
    return out


# -- shared steps -----------------------------------------------------------------


#: the high-frequency hook compensated as a time delay: Z·exp(−jωTd) (the "Td" of the
#: Cole fits of De Lorenzo et al. 1997 [S]; described as the established compensation by
#: Buendia, Seoane & Gil-Pita 2010, J Phys Conf Ser 224:012126 [V, abstract]), tried on
#: spectra of ≥ TD_MIN_POINTS points up to ≥ TD_MIN_TOP_KHZ whose plain fit is poor,
#: hooked or open (fc above the band), over this grid of delays (s), refined by a parabola through the best three
TD_GRID_S = np.arange(0.0, 100.1, 10.0) * 1e-9
TD_MIN_POINTS = 5
TD_MIN_TOP_KHZ = 500.0
#: the step (s) of the finite difference that carries the delay's uncertainty into cov
TD_STEP_S = 2e-9


def fit_segments(inp: Inputs) -> ColeFit:
    """Cole fit of every segment spectrum (points with R and X; see :func:`fit_cole`),
    with the high-frequency hook compensated where it spoils the fit
    (:func:`fit_with_delay`)."""
    return fit_with_delay(inp.freqs_khz * 1e3, inp.z, inp.sigma)[0]


def fit_with_delay(
    freq_hz: Array, z: npt.NDArray[np.complex128], sigma: Array | None
) -> tuple[ColeFit, Array]:
    """:func:`fit_cole`, then, for spectra with ≥ :data:`TD_MIN_POINTS` points up to
    ≥ :data:`TD_MIN_TOP_KHZ` whose fit is poor, hooked or has fc above the band (the arc
    does not close: what a delay makes of it), the Td compensation: the delay
    Td that minimises the Cole fit's residual of Z·exp(+jωTd) (grid :data:`TD_GRID_S`,
    parabola through the best three), kept where it makes the fit good or fair. Its
    uncertainty (the residual's curvature: Δχ² = 1) enters the covariance through the
    parameters' sensitivity to Td. Returns the fit and Td per spectrum (s; 0 where not
    compensated). The delay is a model of the stray capacitances' effect; it corrects a
    pure delay exactly and other hooks only in part (Buendia et al. 2010)."""
    fit = fit_cole(freq_hz, z, sigma=sigma)
    td = np.zeros(fit.r0.shape)
    if z.shape[-1] < TD_MIN_POINTS:
        return fit, td
    ok = np.isfinite(z)
    top = np.max(np.where(ok, freq_hz, 0.0), axis=-1)
    need = (
        (ok.sum(-1) >= TD_MIN_POINTS)
        & (top >= TD_MIN_TOP_KHZ * 1e3)
        & ((fit.grade == "poor") | ((fit.flags & FLAG_HOOK) > 0) | ~(fit.fc_hz < top))
    )
    if not need.any():
        return fit, td
    idx = np.nonzero(need)
    zs = z[idx]
    sg = None if sigma is None else np.broadcast_to(sigma, z.shape)[idx]
    w = 2 * np.pi * np.asarray(freq_hz, dtype=float)

    def at(delay: Array) -> ColeFit:
        return fit_cole(freq_hz, zs * np.exp(1j * np.multiply.outer(delay, w)), sigma=sg)

    k = len(zs)
    ms = np.stack(
        [
            np.where(np.isfinite(f.rms_ohm), f.rms_ohm**2, np.inf)
            for f in (at(np.full(k, t)) for t in TD_GRID_S)
        ],
        axis=-1,
    )  # (K, G) mean squared residual per delay
    j = np.clip(np.argmin(ms, axis=-1), 1, len(TD_GRID_S) - 2)
    rows = np.arange(k)
    y0, y1, y2 = ms[rows, j - 1], ms[rows, j], ms[rows, j + 1]
    h = TD_GRID_S[1] - TD_GRID_S[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        curv = (y0 - 2 * y1 + y2) / (h * h)  # d²(ms)/dTd²
        shift = np.where(curv > 0, (y0 - y2) / (2 * curv * h * h) * h, 0.0)
    best = np.clip(TD_GRID_S[j] + np.nan_to_num(shift), TD_GRID_S[0], TD_GRID_S[-1])
    new = at(best)
    better = np.isin(new.grade, ("good", "fair")) & np.isfinite(new.r0)
    if new.cov is not None:
        lo, hi = at(best - TD_STEP_S), at(best + TD_STEP_S)
        sens = np.stack(
            [(getattr(hi, a) - getattr(lo, a)) / (2 * TD_STEP_S) for a in ("r0", "rinf", "alpha")]
            + [(np.log(hi.fc_hz) - np.log(lo.fc_hz)) / (2 * TD_STEP_S)],
            axis=-1,
        )
        # Δχ² = 1: ms rises by σ̄²/n, with ms ≈ ms_min + curv/2 · (Td − Td*)²
        n_pts = np.maximum(new.n_points, 1)
        s2 = np.nanmean(sg**2, axis=-1) if sg is not None else np.full(k, np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            var_td = np.where(curv > 0, 2 * s2 / (n_pts * curv), np.nan)
        extra = np.einsum("ki,kj->kij", sens, sens) * var_td[:, None, None]
        # a delay the residual does not pin down (no minimum inside the grid) is not used
        better &= np.isfinite(extra).all(axis=(1, 2))
        new_cov = new.cov + np.where(np.isfinite(extra), extra, 0.0)
    else:
        new_cov = None
    merged = {}
    for name in (
        "r0",
        "rinf",
        "alpha",
        "fc_hz",
        "rms_ohm",
        "rel_rms",
        "n_points",
        "iterations",
        "flags",
        "grade",
    ):
        a = getattr(fit, name).copy()
        a[idx] = np.where(better, getattr(new, name), a[idx])
        merged[name] = a
    cov = fit.cov
    if cov is not None and new_cov is not None:
        cov = cov.copy()
        cov[idx] = np.where(better[:, None, None], new_cov, cov[idx])
    td[idx] = np.where(better, best, 0.0)
    return ColeFit(**merged, cov=cov), td


def _usable(fit: ColeFit) -> npt.NDArray[np.bool_]:
    """Fits whose parameters volumes may be computed from (good or fair)."""
    return np.isin(fit.grade, ("good", "fair"))


def _anthropometry_notes(inp: Inputs, v: Volumes, need_sex: bool, need_age: bool = False) -> None:
    missing = ~(np.isfinite(inp.height_cm) & np.isfinite(inp.weight_kg))
    if need_sex:
        missing |= ~inp.known_sex
    if need_age:
        missing |= ~np.isfinite(inp.age_years)
    for i in np.flatnonzero(missing):  # only measurements that get a note
        if need_sex and not inp.known_sex[i]:
            v.notes[i].append(
                "sex not reported: this method's constants are sex-specific, no volumes"
            )
        if not (np.isfinite(inp.height_cm[i]) and np.isfinite(inp.weight_kg[i])):
            v.notes[i].append("height or weight not reported: no volumes")
        if need_age and not np.isfinite(inp.age_years[i]):
            v.notes[i].append("age not reported: no TBW by this method")


#: fewest frequencies (with R and X) for which a BIS method is applicable: three
#: points determine the Cole arc exactly and leave nothing to check it with
BIS_MIN_FREQUENCIES = 4
#: whole-body volumes outside these are implausible (not applicable): ECW/TBW,
#: and TBW as a fraction of body weight (docs/physiology.md, "Plausibility")
PLAUSIBLE_RATIO = (0.25, 0.65)
PLAUSIBLE_TBW_FRACTION = (0.20, 0.80)

NA_FEW = (
    "not applicable: {n} frequencies: the Cole arc through them is exact and R∞ an "
    "extrapolation (a BIS method needs ≥ 4 frequencies with reactance, one above fc)"
)
NA_NO_FC = (
    "not applicable: no frequency above the characteristic frequency fc, R∞ is not "
    "determined by the spectrum"
)
NA_ARM_LEG = (
    "not applicable: whole body from arm + leg without the trunk is not the path the "
    "method was derived on"
)
NA_IMPLAUSIBLE = "not applicable: implausible volumes (ECW/TBW or TBW/weight out of range)"


def _bis_applicability(inp: Inputs, v: Volumes, fit: ColeFit) -> None:
    """Cells where a BIS method does not apply (docs/physiology.md, "Default method")."""
    usable = _usable(fit)
    few = usable & (fit.n_points < BIS_MIN_FREQUENCIES)
    for n in np.unique(fit.n_points[few]):
        v.mark(few & (fit.n_points == n), NA_FEW.format(n=int(n)))
    fmax = float(inp.freqs_khz.max()) * 1e3 if inp.freqs_khz.size else np.nan
    with np.errstate(invalid="ignore"):
        v.mark(usable & (fit.fc_hz > fmax), NA_NO_FC)
    wb = np.zeros(v.ratio.shape, dtype=bool)
    wb[:, WB] = ~inp.whole_body_path
    v.mark(wb & np.isfinite(v.ratio), NA_ARM_LEG)
    _plausibility(inp, v)


def _plausibility(inp: Inputs, v: Volumes) -> None:
    r, t = v.ratio[:, WB], v.tbw[:, WB]
    with np.errstate(invalid="ignore"):
        frac = t / inp.weight_kg
        bad = ((r < PLAUSIBLE_RATIO[0]) | (r > PLAUSIBLE_RATIO[1])) | (
            (frac < PLAUSIBLE_TBW_FRACTION[0]) | (frac > PLAUSIBLE_TBW_FRACTION[1])
        )
    cells = np.zeros(v.ratio.shape, dtype=bool)
    cells[:, WB] = bad
    v.mark(cells, NA_IMPLAUSIBLE)


def _set_sd(v: Volumes, sds: Sequence[Array], where: npt.NDArray[np.bool_] | None = None) -> None:
    for name, sd in zip(("ecw_sd", "icw_sd", "tbw_sd", "ratio_sd"), sds, strict=True):
        if where is None:
            setattr(v, name, np.where(np.isfinite(getattr(v, name[:-3])), sd, np.nan))
        else:
            cur = getattr(v, name)
            cur[where] = np.where(np.isfinite(getattr(v, name[:-3])), sd, np.nan)[where]


# -- Hanai-BIS ----------------------------------------------------------------------


def _hanai_bis(inp: Inputs) -> Volumes:
    n = inp.n
    v = Volumes.empty(n)
    fit = fit_segments(inp)
    v.fit = fit
    usable = _usable(fit)
    rho_e, rho_i = rho(inp.male)
    k_rho = np.where(inp.known_sex, rho_i / rho_e, np.nan)[:, None]
    sex_ok = inp.known_sex[:, None]
    h, w = inp.height_cm, inp.weight_kg
    # ECW = c / R0^(2/3) per cell: c from De Lorenzo (whole body) or the cylinder
    c = _nan(n)
    c[:, WB] = ecw_de_lorenzo(h, w, 1.0, rho_e)
    for j, kind in enumerate(_KIND):
        if kind is not None:
            c[:, j] = segment_ecw(1.0, segment_length_cm(kind, h), segment_volume_l(kind, w), rho_e)
    c = np.where(sex_ok, c, np.nan)

    def volumes(r0: Array, rinf: Array) -> tuple[Array, Array, Array, Array]:
        with np.errstate(invalid="ignore", divide="ignore"):
            x = icw_ecw_ratio_matthie(r0 / rinf, k_rho)
            ecw = c / np.cbrt(r0 * r0)
        return ecw, ecw * x, ecw * (1.0 + x), 1.0 / (1.0 + x)

    ecw, icw, tbw, ratio = volumes(fit.r0, fit.rinf)
    v.ecw, v.icw, v.tbw, v.ratio = (np.where(usable, a, np.nan) for a in (ecw, icw, tbw, ratio))
    if fit.cov is not None:
        _set_sd(v, propagate(volumes, [fit.r0, fit.rinf], fit.cov[..., :2, :2]))
    _bis_applicability(inp, v, fit)
    _anthropometry_notes(inp, v, need_sex=True)
    return v


# -- Moissl 2006 --------------------------------------------------------------------


def _moissl(inp: Inputs) -> Volumes:
    n = inp.n
    v = Volumes.empty(n)
    fit = fit_segments(inp)
    v.fit = fit
    ok = _usable(fit)[:, WB]
    h, w = inp.height_cm, inp.weight_kg

    def volumes(r0: Array, rinf: Array) -> tuple[Array, Array, Array, Array]:
        with np.errstate(invalid="ignore", divide="ignore"):
            e, i, t = moissl_volumes(r0, rinf, h, w)
            return e, i, t, e / t

    vals = volumes(fit.r0[:, WB], fit.rinf[:, WB])
    for name, a in zip(("ecw", "icw", "tbw", "ratio"), vals, strict=True):
        getattr(v, name)[:, WB] = np.where(ok, a, np.nan)
    if fit.cov is not None:
        sds = propagate(volumes, [fit.r0[:, WB], fit.rinf[:, WB]], fit.cov[:, WB, :2, :2])
        for name, sd in zip(("ecw_sd", "icw_sd", "tbw_sd", "ratio_sd"), sds, strict=True):
            getattr(v, name)[:, WB] = sd
    for j in range(WB):
        v.not_applicable[:, j] = "not applicable: moissl-2006 is a whole-body method"
    _bis_applicability(inp, v, fit)
    for i in range(n):
        v.notes[i].append("moissl-2006 is a whole-body method: segments get R0, R∞ and phase only")
    _anthropometry_notes(inp, v, need_sex=False)
    return v


# -- regression at 50 kHz ------------------------------------------------------------


def _regression_inputs(inp: Inputs, v: Volumes, need_xc: bool) -> tuple[Array, Array, Array]:
    """Whole-body R and |Xc| at 50 kHz (N,) and their covariance (N, 2, 2); NaN and a
    skip reason where missing."""
    n = inp.n
    z50 = inp.at_khz(50.0)
    for j in range(WB):
        v.skipped[:, j] = "not computed: whole-body regression method"
        v.not_applicable[:, j] = "not applicable: whole-body regression method"
    cov = np.full((n, 2, 2), np.nan)
    if z50 is None:
        v.skipped[:, WB] = "skipped: no impedance at 50 kHz (the equation needs R at 50 kHz)"
        return np.full(n, np.nan), np.full(n, np.nan), cov
    r50 = z50[:, WB].real.copy()
    xc50 = np.abs(z50[:, WB].imag)
    no_path = ~inp.whole_body_path
    r50[no_path] = np.nan
    reasons = np.where(
        no_path,
        "skipped: no hand-to-foot impedance (arm + leg without trunk is not the path "
        "the equation was derived on)",
        np.where(~np.isfinite(r50), "skipped: no whole-body resistance at 50 kHz", ""),
    )
    if need_xc:
        reasons = np.where(
            (reasons == "") & ~np.isfinite(xc50),
            "ok (TBW only: no reactance at 50 kHz for ECW)",
            reasons,
        )
    v.skipped[:, WB] = reasons
    s50 = inp.sigma_at_khz(50.0)[:, WB]
    cov[:, 0, 0] = cov[:, 1, 1] = s50 * s50
    cov[:, 0, 1] = cov[:, 1, 0] = 0.0
    return r50, xc50, cov


def _outside_ages(inp: Inputs, v: Volumes, lo: float, hi: float, who: str) -> None:
    with np.errstate(invalid="ignore"):
        out = (inp.age_years < lo) | (inp.age_years > hi)
    cells = np.zeros(v.ratio.shape, dtype=bool)
    cells[:, WB] = out
    v.mark(cells, f"not applicable: age outside the {who} population ({lo:g}–{hi:g} y)")


def _tbw_only(
    inp: Inputs, v: Volumes, fn: Callable[[Array], Array], r50: Array, cov: Array
) -> None:
    v.tbw[:, WB] = fn(r50)
    (sd,) = propagate(lambda r: (fn(r),), [r50], cov[:, :1, :1])
    v.tbw_sd[:, WB] = sd  # type: ignore[index]
    cells = np.zeros(v.ratio.shape, dtype=bool)
    cells[:, WB] = True
    v.mark(cells, "not applicable: this method gives TBW only, no ECW/TBW")


def _sun(inp: Inputs) -> Volumes:
    v = Volumes.empty(inp.n)
    r50, _, cov = _regression_inputs(inp, v, need_xc=False)

    def tbw(r: Array) -> Array:
        t = tbw_sun_2003(inp.height_cm, inp.weight_kg, r, inp.male)
        return np.where(inp.known_sex, t, np.nan)

    _outside_ages(inp, v, 12, 94, "Sun 2003 (NHANES III pooled)")
    _tbw_only(inp, v, tbw, r50, cov)
    _anthropometry_notes(inp, v, need_sex=True)
    return v


def _kushner(inp: Inputs) -> Volumes:
    v = Volumes.empty(inp.n)
    r50, _, cov = _regression_inputs(inp, v, need_xc=False)
    _tbw_only(inp, v, lambda r: tbw_kushner_1992(inp.height_cm, inp.weight_kg, r), r50, cov)
    _anthropometry_notes(inp, v, need_sex=False)
    return v


def _lukaski(inp: Inputs) -> Volumes:
    v = Volumes.empty(inp.n)
    r50, xc50, cov = _regression_inputs(inp, v, need_xc=True)
    h, w = inp.height_cm, inp.weight_kg

    def volumes(r: Array, xc: Array) -> tuple[Array, Array, Array, Array]:
        with np.errstate(invalid="ignore", divide="ignore"):
            tbw = tbw_lukaski_bolonchuk(h, w, r, inp.age_years, inp.male)
            tbw = np.where(inp.known_sex, tbw, np.nan)
            ecw = np.where(np.isfinite(tbw), ecw_lukaski_bolonchuk(h, w, r, xc), np.nan)
            return ecw, tbw - ecw, tbw, ecw / tbw

    vals = volumes(r50, xc50)
    sds = propagate(volumes, [r50, xc50], cov)
    for name, a, sd in zip(("ecw", "icw", "tbw", "ratio"), vals, sds, strict=True):
        getattr(v, name)[:, WB] = a
        getattr(v, name + "_sd")[:, WB] = sd
    _plausibility(inp, v)
    _anthropometry_notes(inp, v, need_sex=True, need_age=True)
    return v


# -- the analyzer's own figures -------------------------------------------------------

#: where each vendor's decoder puts the analyzer's own whole-body water figures
#: (Reading.device_values keys): TBW, ICW, ECW in L (Tanita prints kg of water,
#: taken as L), ECW/TBW as a fraction (Tanita's ``wo`` is a percentage)
DEVICE_KEYS: Mapping[str, Mapping[str, str]] = {
    "tanita": {"tbw_l": "wW", "icw_l": "wI", "ecw_l": "wO", "ecw_tbw_pct": "wo"},
    "inbody": {"tbw_l": "TBW", "icw_l": "ICW", "ecw_l": "ECW", "ecw_tbw_ratio": "ECW/TBW(Total)"},
    "charder": {"tbw_l": "TBW", "icw_l": "ICW", "ecw_l": "ECW", "ecw_tbw_ratio": "EI"},
}
#: other names the same figure has in some exports (LookinBody 120 and 270 name TBW
#: "TBW (Total Body Water)": the real headers in tests/data/real/)
DEVICE_KEY_ALIASES: Mapping[str, tuple[str, ...]] = {"TBW": ("TBW (Total Body Water)",)}


def _number(v: object) -> float:
    try:
        f = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")
    return f if np.isfinite(f) else float("nan")


def device_figures(values: Mapping[str, object], model: str = "") -> tuple[str, dict[str, float]]:
    """(vendor, {ecw_l, icw_l, tbw_l, ecw_tbw_ratio}) of one reading's own figures.

    The vendor is recognised by its keys (Tanita ``wW``; InBody
    ``ECW/TBW(Total)``; Charder ``EI``) or the model name; ('', {}) without figures.
    """
    m = model.lower()
    if "wW" in values or "wO" in values:
        vendor = "tanita"
    elif "ECW/TBW(Total)" in values or "inbody" in m:
        vendor = "inbody"
    elif "EI" in values or "charder" in m or m.startswith("ma"):
        vendor = "charder"
    else:
        return "", {}
    keys = DEVICE_KEYS[vendor]
    out = {
        q: _number(
            next((values[a] for a in (k, *DEVICE_KEY_ALIASES.get(k, ())) if a in values), None)
        )
        for q, k in keys.items()
    }
    if "ecw_tbw_pct" in out:
        out["ecw_tbw_ratio"] = out.pop("ecw_tbw_pct") / 100.0
    if not np.isfinite(out["ecw_tbw_ratio"]) and np.isfinite(out["tbw_l"]) and out["tbw_l"] > 0:
        out["ecw_tbw_ratio"] = out["ecw_l"] / out["tbw_l"]
    if not any(np.isfinite(x) for x in out.values()):
        return "", {}
    return vendor, out


#: device_values keys that hold a firmware or software version
FIRMWARE_KEYS = ("APP_Version", "Firmware", "firmware", "FirmwareVersion")


def device_inputs(
    values: Sequence[Mapping[str, object] | str | None], models: Sequence[str | None]
) -> dict[str, Any]:
    """What the ``device`` method needs of a batch: the analyzers' own whole-body figures
    as (N,) arrays (``device``), each measurement's vendor (``device_vendor``) and its
    model and firmware, the method's version (``device_model``): the keyword arguments of
    :func:`bia_acq.core.estimate.inputs_from_paths`.

    ``values`` are the readings' ``device_values``, or as stored
    (``measurement.device_values_json``: JSON text, or None), so ``recompute --method
    device`` rebuilds the rows ingest stored; ``models`` the readings' (or the stored
    device's) model names.
    """
    import json

    keys = ("ecw_l", "icw_l", "tbw_l", "ecw_tbw_ratio")
    n = len(values)
    device = {k: np.full(n, np.nan) for k in keys}
    vendors, versions = [], []
    for i, (raw, model) in enumerate(zip(values, models, strict=True)):
        vals: Mapping[str, object] = {}
        if isinstance(raw, str):
            try:
                loaded = json.loads(raw)
            except ValueError:
                loaded = {}
            vals = loaded if isinstance(loaded, dict) else {}
        elif raw is not None:
            vals = raw
        vendor, figs = device_figures(vals, model or "")
        vendors.append(vendor)
        for k, v in figs.items():
            device[k][i] = v
        fw = next((str(vals[k]) for k in FIRMWARE_KEYS if k in vals), "")
        versions.append(" ".join(x for x in (model or "unknown model", fw) if x))
    return {"device": device, "device_vendor": vendors, "device_model": versions}


#: bands a vendor publishes for its own algorithm (docs/physiology.md, "Bands")
VENDOR_BANDS: Mapping[str, Bands] = {
    "inbody": Bands(
        normal_min=0.360,
        normal_max=0.390,
        source=(
            "InBody result-sheet interpretation for the InBody 570 and 770 (qr.inbody.com/ri/570, "
            "/ri/770): ECW ratio 0.36–0.39 in a healthy state, above 0.39 consult a physician; "
            "InBody's own ECW/TBW only"
        ),
    ),
}
#: the rounding of printed figures: ratio to 0.001, litres to 0.1 (SD of a uniform rounding)
_ROUND_SD = {"ratio": 0.001 / np.sqrt(12), "l": 0.1 / np.sqrt(12)}


def _device(inp: Inputs) -> Volumes:
    n = inp.n
    v = Volumes.empty(n)
    d = inp.device or {}
    for j in range(WB):
        v.skipped[:, j] = "not computed: the analyzer's own figures are whole-body"
        v.not_applicable[:, j] = "not applicable: the analyzer's own figures are whole-body"
    nan = np.full(n, np.nan)
    v.ecw[:, WB] = d.get("ecw_l", nan)
    v.icw[:, WB] = d.get("icw_l", nan)
    v.tbw[:, WB] = d.get("tbw_l", nan)
    v.ratio[:, WB] = d.get("ecw_tbw_ratio", nan)
    for name in ("ecw", "icw", "tbw"):
        getattr(v, name + "_sd")[:, WB] = np.where(
            np.isfinite(getattr(v, name)[:, WB]), _ROUND_SD["l"], np.nan
        )
    v.ratio_sd[:, WB] = np.where(np.isfinite(v.ratio[:, WB]), _ROUND_SD["ratio"], np.nan)  # type: ignore[index]
    vendors = inp.device_vendor or ("",) * n
    v.skipped[:, WB] = np.where(
        np.isfinite(v.tbw[:, WB]) | np.isfinite(v.ratio[:, WB]),
        "ok",
        "skipped: the analyzer sent no water figures of its own",
    )
    labels = np.full(v.ratio.shape, "not applicable", dtype=object)
    low, high = v.interval("ratio")
    for vendor in set(vendors):
        rows = np.array([x == vendor for x in vendors], dtype=bool)
        bands = VENDOR_BANDS.get(vendor)
        if bands is None:
            labels[rows, WB] = np.where(
                np.isfinite(v.ratio[rows, WB]), "no published band", "not applicable"
            )
        else:
            labels[rows, WB] = np.where(
                np.isfinite(v.ratio[rows, WB]),
                bands.label(low[rows, WB], high[rows, WB]),
                "not applicable",
            )
            for i in np.flatnonzero(rows):
                v.notes[i].append(
                    f"device ECW/TBW labelled by {vendor}'s own bands: {bands.source}"
                )
    v.labels = np.asarray(labels, dtype=str)
    if inp.device_model:
        v.versions = list(inp.device_model)
    return v


# -- the registry -------------------------------------------------------------------

_BIS_INPUTS = "R and X at ≥ 4 frequencies per segment (one above fc), height, weight, sex"
_REG_INPUTS = "whole-body (hand-to-foot) R at 50 kHz, height, weight"
_BIS_APPLIES = (
    "a segment whose spectrum determines R∞: ≥ 4 frequencies with reactance and the "
    "characteristic frequency fc below the highest one (3 points give an exact arc: not "
    "applicable); whole body only on a hand-to-foot path (not arm + leg without trunk); "
    f"plausible volumes (ECW/TBW {PLAUSIBLE_RATIO[0]}–{PLAUSIBLE_RATIO[1]}, TBW "
    f"{PLAUSIBLE_TBW_FRACTION[0]:.0%}–{PLAUSIBLE_TBW_FRACTION[1]:.0%} of weight)"
)
_BIS_UNCERTAINTY = (
    "the profile's per-point uncertainty σ of R and X → covariance of R0, R∞, α, fc by "
    "the delta method on the fit's Jacobian (scaled up by the reduced χ² of a poor fit; "
    "an exact three-point arc is differentiated itself) → ECW, ICW, TBW, ECW/TBW by the "
    "delta method; 95 % interval = value ± 1.96 SD; a derived trunk carries the root sum of "
    "squares of the σ of the three paths it comes from; a spectrum whose high-frequency hook "
    "was compensated as a time delay Td carries Td's uncertainty too"
)
_REG_UNCERTAINTY = (
    "σ of whole-body R and X at 50 kHz → TBW, ECW by the delta method; 95 % interval = "
    "value ± 1.96 SD (measurement only: the equation's own SEE is not included)"
)
_NO_BIS_BAND = (
    "no published band: no ECW/TBW cut-off for Hanai-BIS or the BCM model was found "
    "(docs/physiology.md, 'Bands'); the ratio is method-specific (about 0.42–0.43 in "
    "healthy adults by De Lorenzo's reference means), so InBody's 0.36–0.39 do not apply; "
    "a site may configure its own under thresholds:"
)

#: the built-in methods (:data:`METHODS` adds the installed plugins')
BUILTIN_METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method(
            name="hanai-bis",
            # v4: three-point intervals by the exact derivative of the arc (v3: central
            # differences, whose truncation error moved the covariance by up to 3e-5 relative);
            # the fit's first step from a circle start less damped (≥ 4 points: parameters
            # of well-determined fits within the convergence tolerance, ≤ 3e-5, of v3's;
            # flat optima of poor or barely determined fits up to about 1e-3)
            # v5: the normal equations from sums of per-point quantities (no Jacobian), and
            # every result independent of its batch: parameters of good and fair fits moved
            # ≤ 1e-12 relative, their covariances ≤ 1e-10, interval bounds of volumes ≤ 1e-8
            # (through propagate's central differences); nothing visible at stored precision
            version="5",
            citation=(
                "De Lorenzo A et al. J Appl Physiol 1997;82:1542 (ECW); Matthie JR. J Appl Physiol "
                "2005;99:780 (ICW, second generation); Marquardt DW. J SIAM 1963;11:431 (fit); "
                "Drillis R, Contini R 1966 and Dempster 1955 via Winter 2009 (segment proportions)"
            ),
            description=(
                "Cole fit per segment (batched Levenberg–Marquardt from a circle fit), "
                "Hanai mixture theory; whole body by De Lorenzo, segments as cylinders"
            ),
            bands=None,
            bands_note=_NO_BIS_BAND,
            kind="bis",
            inputs=_BIS_INPUTS,
            outputs="per segment and whole body: R0, R∞, α, fc, ECW, ICW, TBW, ECW/TBW, phase",
            verification=(
                "prefactor algebra and ICW forms checked [D]; resistivities, K_B, D_b as quoted "
                "for the Xitron 4200 [S], not confirmed against De Lorenzo 1997; the women's "
                "k_ECW quoted as 0.316 (the constants give 0.299) unresolved; segment "
                "proportions from Winter's tables [S] (docs/physiology.md)"
            ),
            compute=_hanai_bis,
            applicability=_BIS_APPLIES + "; sex known",
            uncertainty_model=_BIS_UNCERTAINTY,
        ),
        Method(
            name="moissl-2006",
            version="4",  # v3: as hanai-bis v4; v4: as hanai-bis v5
            citation="Moissl UM et al. Physiol Meas 2006;27:921 (Fresenius BCM)",
            description="Cole fit; whole-body ECW and ICW with BMI-dependent coefficients",
            bands=None,
            bands_note=(
                "no published band: the BCM judges overhydration as excess fluid, not by an "
                "ECW/TBW cut-off; none found for its ratio (docs/physiology.md)"
            ),
            kind="bis",
            inputs=_BIS_INPUTS.replace(", sex", ""),
            outputs="whole body: ECW, ICW, TBW, ECW/TBW; segments: R0, R∞, α, fc, phase",
            verification=(
                "coefficients 0.188/BMI + 0.2883 and 5.8758/BMI + 0.4194 as quoted in "
                "PHYSIOLOGY notes [U]; NOT confirmed (the paper was not found in the searched "
                "material, docs/physiology.md)"
            ),
            compute=_moissl,
            applicability=_BIS_APPLIES + "; whole body only",
            uncertainty_model=_BIS_UNCERTAINTY,
        ),
        Method(
            name="sun-2003",
            version="2",
            citation="Sun SS et al. Am J Clin Nutr 2003;77:331 (NHANES III BIA equations)",
            description="TBW from H²/R at 50 kHz and weight, sex-specific",
            bands=None,
            bands_note="not applicable: TBW only, no ECW/TBW",
            kind="regression",
            inputs=_REG_INPUTS + ", sex",
            outputs="whole body: TBW (no ECW, so no ECW/TBW)",
            verification=(
                "predictors, R² and RMSE confirmed in the PubMed abstract; coefficients [S], "
                "not confirmed against the paper's Table 5 (docs/physiology.md)"
            ),
            compute=_sun,
            applicability=(
                "hand-to-foot path at 50 kHz; ages 12–94 (the pooled NHANES III sample, "
                "PubMed abstract); sex known"
            ),
            uncertainty_model=_REG_UNCERTAINTY,
        ),
        Method(
            name="kushner-1992",
            version="2",
            citation="Kushner RF et al. Am J Clin Nutr 1992;56:835",
            description="TBW from H²/R at 50 kHz and weight (both sexes)",
            bands=None,
            bands_note="not applicable: TBW only, no ECW/TBW",
            kind="regression",
            inputs=_REG_INPUTS,
            outputs="whole body: TBW (no ECW, so no ECW/TBW)",
            verification="coefficients confirmed as quoted by medicalalgorithms.com (secondary)",
            compute=_kushner,
            applicability="hand-to-foot path at 50 kHz (population of the paper not retrieved)",
            uncertainty_model=_REG_UNCERTAINTY,
        ),
        Method(
            name="lukaski-bolonchuk",
            version="2",
            citation="Lukaski HC, Bolonchuk WW. Aviat Space Environ Med 1988;59:1163",
            description="TBW and ECW from H²/R and H²/Xc at 50 kHz, weight, age, sex",
            bands=None,
            bands_note=(
                "no published band for this equation's ECW/TBW (InBody's 0.36–0.39 are for "
                "InBody's own algorithm and were removed from here: they called every healthy "
                "adult 'edema')"
            ),
            kind="regression",
            inputs=_REG_INPUTS + ", X at 50 kHz (for ECW), age, sex",
            outputs="whole body: TBW, ECW, ICW = TBW − ECW, ECW/TBW",
            verification=(
                "both equations confirmed as quoted by medicalalgorithms.com (secondary)"
            ),
            compute=_lukaski,
            applicability=(
                "hand-to-foot path at 50 kHz; age and sex known; plausible volumes "
                "(population of the paper not retrieved)"
            ),
            uncertainty_model=_REG_UNCERTAINTY,
        ),
        Method(
            name="device",
            version="1",
            citation=(
                "the analyzer's own algorithm (Tanita wW/wI/wO/wo, InBody ICW/ECW/TBW/ECW/TBW, "
                "Charder ICW/ECW/TBW/EI), as the device printed it"
            ),
            description="the analyzer's own whole-body water figures, stored next to ours",
            bands=None,
            bands_note=(
                "the vendor's bands for its own algorithm only: InBody 0.36–0.39 normal, "
                "above 0.39 consult a physician (qr.inbody.com/ri/570, /ri/770); Tanita and "
                "Charder: no published band found"
            ),
            kind="device",
            inputs="the water figures the analyzer sent (Reading.device_values)",
            outputs="whole body: ECW, ICW, TBW, ECW/TBW as printed",
            verification="figures as printed; the vendors' algorithms are not published",
            compute=_device,
            applicability="readings that carry the analyzer's own water figures",
            uncertainty_model=(
                "rounding of the printed digits only (0.1 L, 0.001): the vendors state no "
                "uncertainty of their estimates"
            ),
        ),
    )
}

#: entry-point group under which an installed package adds methods: each entry point
#: names a :class:`Method` object (docs/extending.md, "A method")
METHOD_GROUP = "bia_acq.methods"

#: every method by name: the built-ins, then those of installed plugins
METHODS: Registry[Method] = Registry(
    "method", METHOD_GROUP, BUILTIN_METHODS, lambda m: isinstance(m, Method)
)

# -- per analyzer: uncertainty and default method --------------------------------------

#: a BIS method is the default only where the profile measures R and X at ≥ 4
#: frequencies reaching this high: well above the characteristic frequency of
#: human segments (typically 30–90 kHz, NHANES range 2–456 kHz), so that R∞ is
#: an interpolation, not an extrapolation (docs/physiology.md, "Default method")
BIS_TOP_KHZ = 500.0


def profile_uncertainty(profile: Profile) -> Uncertainty:
    """The profile's stated uncertainty (``uncertainty:`` in its YAML), else the default."""
    u = profile.uncertainty
    if not u:
        return DEFAULT_UNCERTAINTY
    return Uncertainty(float(u["relative"]), float(u["absolute_ohm"]), str(u["source"]))


@functools.lru_cache(maxsize=256)
def uncertainty_for_model(model: str) -> Uncertainty:
    """The uncertainty of the built-in profile whose name, model list or simulated
    model is ``model`` (the default where none is)."""
    from bia_acq.drivers import builtin_profiles

    for p in builtin_profiles().values():
        names = {p.name, str(p.simulator.get("model", "")), *map(str, p.options.get("models", []))}
        if model and model in names:
            return profile_uncertainty(p)
    return DEFAULT_UNCERTAINTY


def _device_water_keys(profile: Profile) -> set[str]:
    own: Any = profile.simulator.get("device_values")
    if own is not None:  # a list of keys, or a mapping of keys to truth quantities
        keys = {str(k) for k in own}
    elif profile.protocol == "tanita":
        keys = {"wW", "wI", "wO", "wo"}
    else:
        keys = set()
    known = {k for m in DEVICE_KEYS.values() for k in m.values()}
    return keys & known.union(*DEVICE_KEY_ALIASES.values())


def choose_default_method(profile: Profile) -> str:
    """The default method by what the analyzer measures (the issue's criterion).

    A BIS method (``hanai-bis``) where the profile measures ≥ 4 frequencies up to
    at least :data:`BIS_TOP_KHZ`; otherwise ``device`` where the analyzer sends
    water figures of its own; otherwise a regression at 50 kHz (``sun-2003``,
    valid from R alone); ``device`` where nothing else can apply.
    """
    opts = {**profile.options, **profile.simulator}
    raw = opts.get("frequencies_khz") or [f / 1e3 for f in opts.get("frequencies_hz", [])]
    freqs = [float(f) for f in raw]
    if len(freqs) >= BIS_MIN_FREQUENCIES and max(freqs) >= BIS_TOP_KHZ:
        return "hanai-bis"
    if _device_water_keys(profile):
        return "device"
    if 50.0 in freqs:
        return "sun-2003"
    return "device"
