"""From readings to results: ECW, ICW, TBW and ECW/TBW per segment and whole body.

One batch of readings becomes arrays of shape (measurements, segments,
frequencies) and goes through the vectorised fit and equations at once; one
measurement or a million take the same path.

Method ``hanai-bis`` v1: Cole arc per segment by the algebraic circle fit
(:mod:`bia_acq.core.cole`), ECW/TBW per segment from R0/R∞ (Matthie 2005), and
whole-body ECW (De Lorenzo 1997) and ICW from the whole-body path
(:mod:`bia_acq.core.hanai`). Segment volumes need segment lengths and are left
empty (NULL) by this version.

Where the device gives no trunk impedance (MC-780) but gives a hand-to-foot
path, the trunk is derived as Z(hand-to-foot, right) − Z(right arm) − Z(right
leg), a series model (segments in series along the current path; Organ et
al. 1994). Without that path the trunk is missing: it is never invented.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from bia_acq.core.cole import FIT_STATUS_TEXT, circle_fit
from bia_acq.core.hanai import ecw_de_lorenzo, icw_ecw_ratio_matthie, rho
from bia_acq.errors import ConfigError
from bia_acq.model import Reading, Segment

Array = npt.NDArray[np.float64]

RESULT_SEGMENTS: tuple[Segment, ...] = (
    Segment.RIGHT_ARM,
    Segment.LEFT_ARM,
    Segment.TRUNK,
    Segment.RIGHT_LEG,
    Segment.LEFT_LEG,
    Segment.WHOLE_BODY,
)


@dataclass(frozen=True)
class Bands:
    """Edema bands of one method: ratio ≤ normal_max normal, ≤ slight_max slightly over."""

    normal_max: float
    slight_max: float
    source: str

    def classify(self, ratio: npt.ArrayLike) -> npt.NDArray[np.str_]:
        r = np.asarray(ratio, dtype=float)
        out = np.where(
            r <= self.normal_max, "normal", np.where(r <= self.slight_max, "slightly over", "edema")
        )
        return np.where(np.isfinite(r), out, "unknown")


@dataclass(frozen=True)
class Method:
    name: str
    version: str
    citation: str
    description: str
    bands: Bands


METHODS: dict[str, Method] = {
    "hanai-bis": Method(
        name="hanai-bis",
        version="1",
        citation=(
            "De Lorenzo A et al. J Appl Physiol 1997;82:1542 (ECW); "
            "Matthie JR. J Appl Physiol 2005;99:780 (ICW, second generation); "
            "Kasa I. IEEE Trans Instrum Meas 1976;25:8 (circle fit)"
        ),
        description="Cole arc per segment (algebraic circle fit), Hanai mixture theory",
        bands=Bands(
            normal_max=0.44,
            slight_max=0.45,
            source=(
                "provisional: Hanai-BIS gives ECW/TBW about 0.43 in healthy adults and "
                "about 0.45 in haemodialysis patients; no published cut-off retrieved yet"
            ),
        ),
    ),
}


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise ConfigError(
            f"unknown estimation method {name!r}",
            fix=f"use one of: {', '.join(sorted(METHODS))}",
        ) from None


@dataclass
class Results:
    """Arrays of shape (measurements, len(segments)); NaN where not computed."""

    method: Method
    segments: tuple[Segment, ...]
    r0_ohm: Array
    rinf_ohm: Array
    alpha: Array
    fc_khz: Array
    fit_rms_ohm: Array
    ecw_l: Array
    icw_l: Array
    tbw_l: Array
    ecw_tbw_ratio: Array
    phase_50khz_deg: Array
    classification: npt.NDArray[np.str_]
    fit_status: list[list[str]]
    notes: list[list[str]] = field(default_factory=list)

    def rows(self, i: int) -> list[dict[str, object]]:
        """The results of measurement ``i`` as one dict per segment (NaN → None)."""

        def val(a: Array, j: int) -> float | None:
            v = float(a[i, j])
            return v if np.isfinite(v) else None

        out: list[dict[str, object]] = []
        for j, seg in enumerate(self.segments):
            out.append(
                {
                    "segment": seg.value,
                    "method": self.method.name,
                    "method_version": self.method.version,
                    "r0_ohm": val(self.r0_ohm, j),
                    "rinf_ohm": val(self.rinf_ohm, j),
                    "alpha": val(self.alpha, j),
                    "fc_khz": val(self.fc_khz, j),
                    "fit_rms_ohm": val(self.fit_rms_ohm, j),
                    "ecw_l": val(self.ecw_l, j),
                    "icw_l": val(self.icw_l, j),
                    "tbw_l": val(self.tbw_l, j),
                    "ecw_tbw_ratio": val(self.ecw_tbw_ratio, j),
                    "phase_angle_50khz_deg": val(self.phase_50khz_deg, j),
                    "classification": str(self.classification[i, j]),
                    "fit_status": self.fit_status[i][j],
                }
            )
        return out


_PATHS = (
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
    """(freq_khz (F,), Z (N, P, F) complex, NaN where not measured)."""
    freqs = sorted({z.freq_khz for rd in readings for z in rd.impedance})
    f_index = {f: k for k, f in enumerate(freqs)}
    p_index = {p: k for k, p in enumerate(paths)}
    z = np.full((len(readings), len(paths), len(freqs)), np.nan + 0j, dtype=np.complex128)
    for i, rd in enumerate(readings):
        for pt in rd.impedance:
            j = p_index.get(pt.segment)
            if j is not None and pt.x_ohm is not None:
                z[i, j, f_index[pt.freq_khz]] = complex(pt.r_ohm, pt.x_ohm)
    return np.asarray(freqs, dtype=float), z


def estimate(
    readings: Sequence[Reading],
    method: str = "hanai-bis",
    bands: Mapping[str, Bands] | None = None,
) -> Results:
    """Compute results for a batch of readings with the named method."""
    m = get_method(method)
    band = (bands or {}).get(m.name, m.bands)
    n = len(readings)
    freqs, zp = impedance_arrays(readings, [p.value for p in _PATHS])
    nf = len(freqs)
    ra, la, tr, rl, ll, wbr = (zp[:, k, :] for k in range(6))
    notes: list[list[str]] = [[] for _ in range(n)]
    have_wbr = np.asarray(np.isfinite(wbr).any(-1) if nf else np.zeros(n), dtype=bool)
    have_tr = np.asarray(np.isfinite(tr).any(-1) if nf else np.zeros(n), dtype=bool)
    derive = ~have_tr & have_wbr
    trunk = np.where(derive[:, None], wbr - ra - rl, tr)
    series = ra + rl + np.where(have_tr[:, None], tr, 0)
    whole = np.where(have_wbr[:, None], wbr, series)
    for i in range(n):
        if derive[i]:
            notes[i].append("trunk derived as hand-to-foot path minus right arm and right leg")
        if not have_wbr[i] and not have_tr[i] and np.isfinite(series[i]).any():
            notes[i].append("whole body from right arm + right leg in series; trunk not measured")
    z = np.stack([ra, la, trunk, rl, ll, whole], axis=1)  # (N, 6, F)
    fit = circle_fit(freqs * 1e3, z.real, z.imag)
    male = np.array([rd.sex == "male" for rd in readings], dtype=bool)
    known_sex = np.array([rd.sex in ("male", "female") for rd in readings], dtype=bool)
    rho_e, rho_i = rho(male)
    k_rho = np.where(known_sex, rho_i / rho_e, np.nan)[:, None]
    x = icw_ecw_ratio_matthie(fit.r0 / fit.rinf, k_rho)
    ratio = 1.0 / (1.0 + x)
    height = np.array([rd.height_cm or np.nan for rd in readings], dtype=float)
    weight = np.array([rd.weight_kg or np.nan for rd in readings], dtype=float)
    nan = np.full((n, len(RESULT_SEGMENTS)), np.nan)
    ecw, icw = nan.copy(), nan.copy()
    wb = len(RESULT_SEGMENTS) - 1
    ecw[:, wb] = np.where(known_sex, ecw_de_lorenzo(height, weight, fit.r0[:, wb], rho_e), np.nan)
    icw[:, wb] = ecw[:, wb] * x[:, wb]
    if 50.0 in freqs:
        z50 = z[:, :, int(np.searchsorted(freqs, 50.0))]
        phase = np.degrees(np.arctan2(-z50.imag, z50.real))
    else:
        phase = nan.copy()
    status = [[FIT_STATUS_TEXT[int(s)] for s in row] for row in fit.status]
    for i, rd in enumerate(readings):
        mags = sum(1 for pt in rd.impedance if pt.magnitude_only)
        if mags:
            notes[i].append(
                f"{mags} impedance point(s) are magnitudes |Z| without reactance: "
                f"{m.name} needs resistance and reactance and did not use them"
            )
        if not known_sex[i]:
            notes[i].append("sex not reported: Hanai resistivities are sex-specific, no volumes")
        if not (np.isfinite(height[i]) and np.isfinite(weight[i])):
            notes[i].append("height or weight not reported: no whole-body volumes")
    return Results(
        method=m,
        segments=RESULT_SEGMENTS,
        r0_ohm=fit.r0,
        rinf_ohm=fit.rinf,
        alpha=fit.alpha,
        fc_khz=fit.fc_hz / 1e3,
        fit_rms_ohm=fit.rms_ohm,
        ecw_l=ecw,
        icw_l=icw,
        tbw_l=ecw + icw,
        ecw_tbw_ratio=ratio,
        phase_50khz_deg=phase,
        classification=band.classify(ratio),
        fit_status=status,
        notes=notes,
    )
