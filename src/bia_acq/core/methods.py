"""Estimation methods as data: a registry of named, versioned methods.

Each :class:`Method` carries its citation, the inputs it needs, the outputs
it gives, what of its constants was verified, and **its own edema bands**:
an ECW/TBW ratio means nothing without the method that produced it (Hanai-BIS
gives about 0.43 in healthy adults, InBody-style regression about 0.38).

A method's ``compute`` takes :class:`Inputs` (arrays of shape (N, segments,
frequencies) and per-measurement anthropometry) and returns :class:`Volumes`.
What a method cannot compute from what the device sent (no 50 kHz point, no
reactance, no sex or height) is skipped with a reason, never guessed.

Bumping a method's version is how a change of its numbers is recorded: stored
results keep the version that computed them, and `bia-acq recompute` adds the
new version next to the old.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from bia_acq.core.anthropometry import segment_length_cm, segment_volume_l
from bia_acq.core.fit import ColeFit, fit_cole
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


@dataclass(frozen=True)
class Bands:
    """Edema bands of one method on its own ECW/TBW scale.

    ratio < ``normal_min`` "below normal" (when set), ≤ ``normal_max``
    "normal", ≤ ``slight_max`` "slightly over", above that "edema";
    "unknown" where there is no ratio.
    """

    normal_max: float
    slight_max: float
    source: str
    normal_min: float | None = None

    def classify(self, ratio: npt.ArrayLike) -> npt.NDArray[np.str_]:
        r = np.asarray(ratio, dtype=float)
        out = np.where(
            r <= self.normal_max, "normal", np.where(r <= self.slight_max, "slightly over", "edema")
        )
        if self.normal_min is not None:
            out = np.where(r < self.normal_min, "below normal", out)
        return np.where(np.isfinite(r), out, "unknown")

    def describe(self) -> str:
        low = f"{self.normal_min:.3f}–" if self.normal_min is not None else "≤ "
        return (
            f"normal {low}{self.normal_max:.3f}, slightly over ≤ {self.slight_max:.3f}, edema above"
        )

    def override(self, **values: float | None) -> Bands:
        return replace(self, source="configured", **values)  # type: ignore[arg-type]


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

    @property
    def n(self) -> int:
        return int(self.z.shape[0])

    def at_khz(self, khz: float) -> npt.NDArray[np.complex128] | None:
        """Z at one frequency, (N, S), or None if the batch has no such point."""
        k = np.searchsorted(self.freqs_khz, khz)
        if k < len(self.freqs_khz) and self.freqs_khz[k] == khz:
            return self.z[:, :, int(k)]
        return None


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

    @classmethod
    def empty(cls, n: int) -> Volumes:
        return cls(
            _nan(n),
            _nan(n),
            _nan(n),
            _nan(n),
            skipped=np.full((n, len(RESULT_SEGMENTS)), "", dtype=object),
            notes=[[] for _ in range(n)],
        )


@dataclass(frozen=True)
class Method:
    name: str
    version: str
    citation: str
    description: str
    bands: Bands
    kind: str = "bis"  # "bis": Cole fit per segment; "regression": whole body at 50 kHz
    inputs: str = ""
    outputs: str = ""
    verification: str = ""
    compute: Callable[[Inputs], Volumes] | None = None


# -- shared steps -----------------------------------------------------------------


def fit_segments(inp: Inputs) -> ColeFit:
    """Cole fit of every segment spectrum (points with R and X; see :func:`fit_cole`)."""
    return fit_cole(inp.freqs_khz * 1e3, inp.z)


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


# -- Hanai-BIS ----------------------------------------------------------------------


def _hanai_bis(inp: Inputs) -> Volumes:
    n = inp.n
    v = Volumes.empty(n)
    fit = fit_segments(inp)
    v.fit = fit
    usable = _usable(fit)
    rho_e, rho_i = rho(inp.male)
    k_rho = np.where(inp.known_sex, rho_i / rho_e, np.nan)[:, None]
    x = icw_ecw_ratio_matthie(fit.r0 / fit.rinf, k_rho)
    x = np.where(usable, x, np.nan)
    v.ratio = 1.0 / (1.0 + x)
    sex_ok = inp.known_sex
    h, w = inp.height_cm, inp.weight_kg
    ecw = _nan(n)
    ecw[:, WB] = np.where(sex_ok, ecw_de_lorenzo(h, w, fit.r0[:, WB], rho_e), np.nan)
    for j, kind in enumerate(_KIND):
        if kind is None:
            continue
        ecw[:, j] = np.where(
            sex_ok,
            segment_ecw(fit.r0[:, j], segment_length_cm(kind, h), segment_volume_l(kind, w), rho_e),
            np.nan,
        )
    ecw = np.where(usable, ecw, np.nan)
    v.ecw = ecw
    v.icw = ecw * x
    v.tbw = v.ecw + v.icw
    _anthropometry_notes(inp, v, need_sex=True)
    return v


# -- Moissl 2006 --------------------------------------------------------------------


def _moissl(inp: Inputs) -> Volumes:
    n = inp.n
    v = Volumes.empty(n)
    fit = fit_segments(inp)
    v.fit = fit
    ok = _usable(fit)[:, WB]
    ecw, icw, tbw = moissl_volumes(fit.r0[:, WB], fit.rinf[:, WB], inp.height_cm, inp.weight_kg)
    v.ecw[:, WB] = np.where(ok, ecw, np.nan)
    v.icw[:, WB] = np.where(ok, icw, np.nan)
    v.tbw[:, WB] = np.where(ok, tbw, np.nan)
    v.ratio[:, WB] = v.ecw[:, WB] / v.tbw[:, WB]
    for i in range(n):
        v.notes[i].append("moissl-2006 is a whole-body method: segments get R0, R∞ and phase only")
    _anthropometry_notes(inp, v, need_sex=False)
    return v


# -- regression at 50 kHz ------------------------------------------------------------


def _regression_inputs(inp: Inputs, v: Volumes, need_xc: bool) -> tuple[Array, Array]:
    """Whole-body R and |Xc| at 50 kHz (N,), NaN and a skip reason where missing."""
    n = inp.n
    z50 = inp.at_khz(50.0)
    for j in range(WB):
        v.skipped[:, j] = "not computed: whole-body regression method"
    if z50 is None:
        v.skipped[:, WB] = "skipped: no impedance at 50 kHz (the equation needs R at 50 kHz)"
        return np.full(n, np.nan), np.full(n, np.nan)
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
    return r50, xc50


def _sun(inp: Inputs) -> Volumes:
    v = Volumes.empty(inp.n)
    r50, _ = _regression_inputs(inp, v, need_xc=False)
    tbw = tbw_sun_2003(inp.height_cm, inp.weight_kg, r50, inp.male)
    v.tbw[:, WB] = np.where(inp.known_sex, tbw, np.nan)
    _anthropometry_notes(inp, v, need_sex=True)
    return v


def _kushner(inp: Inputs) -> Volumes:
    v = Volumes.empty(inp.n)
    r50, _ = _regression_inputs(inp, v, need_xc=False)
    v.tbw[:, WB] = tbw_kushner_1992(inp.height_cm, inp.weight_kg, r50)
    _anthropometry_notes(inp, v, need_sex=False)
    return v


def _lukaski(inp: Inputs) -> Volumes:
    v = Volumes.empty(inp.n)
    r50, xc50 = _regression_inputs(inp, v, need_xc=True)
    tbw = tbw_lukaski_bolonchuk(inp.height_cm, inp.weight_kg, r50, inp.age_years, inp.male)
    tbw = np.where(inp.known_sex, tbw, np.nan)
    ecw = ecw_lukaski_bolonchuk(inp.height_cm, inp.weight_kg, r50, xc50)
    v.tbw[:, WB] = tbw
    v.ecw[:, WB] = np.where(np.isfinite(tbw), ecw, np.nan)
    v.icw[:, WB] = v.tbw[:, WB] - v.ecw[:, WB]
    v.ratio[:, WB] = v.ecw[:, WB] / v.tbw[:, WB]
    _anthropometry_notes(inp, v, need_sex=True, need_age=True)
    return v


# -- the registry -------------------------------------------------------------------

_HANAI_PROVISIONAL = Bands(
    normal_max=0.44,
    slight_max=0.45,
    source=(
        "provisional: Hanai-BIS gives ECW/TBW about 0.43 in healthy adults and about 0.45 in "
        "haemodialysis patients; no published cut-off retrieved"
    ),
)
_INBODY = Bands(
    normal_min=0.360,
    normal_max=0.390,
    slight_max=0.400,
    source=(
        "InBody-style bands for multi-frequency regression: 0.360–0.390 normal, above 0.390 "
        "over [V]; 0.390–0.400 'slightly over', above 0.400 edema [U]. Provisional for "
        "lukaski-bolonchuk: its bromide-space ECW gives about 0.42–0.44 for typical adults "
        "(175 cm, 75 kg, R50 500 Ω, Xc 60 Ω: 16.4/37.9 L), so these bands flag most people; "
        "set thresholds: in the configuration"
    ),
)
_BIS_INPUTS = "R and X at ≥ 3 frequencies per segment, height, weight, sex"
_REG_INPUTS = "whole-body (hand-to-foot) R at 50 kHz, height, weight"

#: the built-in methods (:data:`METHODS` adds the installed plugins')
BUILTIN_METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method(
            name="hanai-bis",
            version="2",
            citation=(
                "De Lorenzo A et al. J Appl Physiol 1997;82:1542 (ECW); Matthie JR. J Appl Physiol "
                "2005;99:780 (ICW, second generation); Marquardt DW. J SIAM 1963;11:431 (fit); "
                "Drillis R, Contini R 1966 and Dempster 1955 via Winter 2009 (segment proportions)"
            ),
            description=(
                "Cole fit per segment (batched Levenberg–Marquardt from a circle fit), "
                "Hanai mixture theory; whole body by De Lorenzo, segments as cylinders"
            ),
            bands=_HANAI_PROVISIONAL,
            kind="bis",
            inputs=_BIS_INPUTS,
            outputs="per segment and whole body: R0, R∞, α, fc, ECW, ICW, TBW, ECW/TBW, phase",
            verification=(
                "prefactor algebra and ICW forms checked [D]; resistivities, K_B, D_b as quoted "
                "for the Xitron 4200 [S], not confirmed against De Lorenzo 1997; segment "
                "proportions from Winter's tables [S]"
            ),
            compute=_hanai_bis,
        ),
        Method(
            name="moissl-2006",
            version="1",
            citation="Moissl UM et al. Physiol Meas 2006;27:921 (Fresenius BCM)",
            description="Cole fit; whole-body ECW and ICW with BMI-dependent coefficients",
            bands=replace(
                _HANAI_PROVISIONAL,
                source=(
                    "provisional, as hanai-bis: Moissl's ECW/TBW is on the BIS scale "
                    "(about 0.42 in health); no published cut-off retrieved"
                ),
            ),
            kind="bis",
            inputs=_BIS_INPUTS.replace(", sex", ""),
            outputs="whole body: ECW, ICW, TBW, ECW/TBW; segments: R0, R∞, α, fc, phase",
            verification=(
                "coefficients 0.188/BMI + 0.2883 and 5.8758/BMI + 0.4194 as quoted in "
                "PHYSIOLOGY.md [U]; NOT confirmed (paper not found in the searched material)"
            ),
            compute=_moissl,
        ),
        Method(
            name="sun-2003",
            version="1",
            citation="Sun SS et al. Am J Clin Nutr 2003;77:331 (NHANES III BIA equations)",
            description="TBW from H²/R at 50 kHz and weight, sex-specific",
            bands=_INBODY,
            kind="regression",
            inputs=_REG_INPUTS + ", sex",
            outputs="whole body: TBW (no ECW, so no ECW/TBW)",
            verification=(
                "predictors, R² and RMSE confirmed in the PubMed abstract; coefficients [S], "
                "not confirmed against the paper"
            ),
            compute=_sun,
        ),
        Method(
            name="kushner-1992",
            version="1",
            citation="Kushner RF et al. Am J Clin Nutr 1992;56:835",
            description="TBW from H²/R at 50 kHz and weight (both sexes)",
            bands=_INBODY,
            kind="regression",
            inputs=_REG_INPUTS,
            outputs="whole body: TBW (no ECW, so no ECW/TBW)",
            verification="coefficients confirmed as quoted by medicalalgorithms.com (secondary)",
            compute=_kushner,
        ),
        Method(
            name="lukaski-bolonchuk",
            version="1",
            citation="Lukaski HC, Bolonchuk WW. Aviat Space Environ Med 1988;59:1163",
            description="TBW and ECW from H²/R and H²/Xc at 50 kHz, weight, age, sex",
            bands=_INBODY,
            kind="regression",
            inputs=_REG_INPUTS + ", X at 50 kHz (for ECW), age, sex",
            outputs="whole body: TBW, ECW, ICW = TBW − ECW, ECW/TBW",
            verification=(
                "both equations confirmed as quoted by medicalalgorithms.com (secondary)"
            ),
            compute=_lukaski,
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
