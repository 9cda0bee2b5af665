"""Simulated subjects with a known fluid status, and the spectra a device would measure.

The forward model inverts the core's own equations so the chain can be checked
against ground truth:

* total body water from the Watson et al. 1980 formula (Am J Clin Nutr 33:27;
  no impedance involved), ECW = ratio × TBW for a chosen ECW/TBW;
* whole-body R0 from De Lorenzo's ECW equation solved for Re, R∞ from the
  Matthie relation solved for s = R0/R∞ (:mod:`bia_acq.core.hanai`);
* the hand-to-foot R0 is shared between arm, trunk and leg in series; PHYSIOLOGY
  notes give arm ≈ 330 Ω, leg ≈ 270 Ω, trunk ≈ 30 Ω in a healthy man, and the
  trunk about 10 % of whole-body impedance;
* α 0.6–0.8 and fc 30–90 kHz per segment, within the NHANES 1999–2000 ranges
  (α 0.30–0.95, fc 2–456 kHz);
* measurement noise 0.2 Ω on R and X, then rounding to the device's 0.1 Ω.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from bia_acq.core.cole import cole_impedance
from bia_acq.core.hanai import icw_ecw_ratio_matthie, k_ecw, rho, s_from_ecw_tbw
from bia_acq.model import Impedance, Reading, Segment

CONDITIONS = ("healthy", "fluid_overload", "right_leg_edema")

# share of hand-to-foot R0 per segment (arm, trunk, leg)
_SHARE = {"arm": 0.50, "trunk": 0.07, "leg": 0.43}
# healthy Hanai-BIS ECW/TBW is about 0.43; haemodialysis about 0.45 (PHYSIOLOGY notes [V])
_RATIO = {
    "healthy": (0.425, 0.008),
    "fluid_overload": (0.465, 0.01),
    "right_leg_edema": (0.425, 0.008),
}


def watson_tbw_l(male: bool, age: float, height_cm: float, weight_kg: float) -> float:
    """Watson et al. 1980 total body water (litres)."""
    if male:
        return 2.447 - 0.09516 * age + 0.1074 * height_cm + 0.3362 * weight_kg
    return -2.097 + 0.1069 * height_cm + 0.2466 * weight_kg


@dataclass(frozen=True)
class SegmentTruth:
    r0_ohm: float
    rinf_ohm: float
    alpha: float
    fc_khz: float
    ecw_tbw_ratio: float


@dataclass(frozen=True)
class Subject:
    subject_id: str
    condition: str
    sex: str
    age_years: int
    height_cm: float
    weight_kg: float
    ecw_l: float
    icw_l: float
    segments: dict[str, SegmentTruth] = field(default_factory=dict)

    @property
    def tbw_l(self) -> float:
        return self.ecw_l + self.icw_l


def make_subject(
    rng: np.random.Generator,
    subject_id: str,
    condition: str = "healthy",
    *,
    sex: str | None = None,
    age_years: int | None = None,
    height_cm: float | None = None,
) -> Subject:
    """A random subject; ``sex``, ``age_years``, ``height_cm`` fix those (a polled device's settings)."""
    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}; known: {', '.join(CONDITIONS)}")
    male = bool(rng.random() < 0.5) if sex is None else sex == "male"
    sex = "male" if male else "female"
    age = int(rng.integers(20, 85)) if age_years is None else age_years
    height = (
        round(float(rng.normal(177 if male else 164, 7)), 1) if height_cm is None else height_cm
    )
    bmi = float(np.clip(rng.normal(25.5, 3.5), 18.5, 38))
    weight = round(bmi * (height / 100) ** 2, 1)
    tbw = watson_tbw_l(male, age, height, weight)
    mean, sd = _RATIO[condition]
    ratio = float(rng.normal(mean, sd))
    if condition == "fluid_overload":
        tbw *= 1.08  # extra water is extracellular
    ecw = ratio * tbw
    rho_e, rho_i = (float(v) for v in rho(male))
    k_rho = rho_i / rho_e
    r0_wb = height**2 * np.sqrt(weight) / (ecw / float(k_ecw(rho_e))) ** 1.5
    s_wb = float(s_from_ecw_tbw(ratio, k_rho))
    segs: dict[str, SegmentTruth] = {}
    for side in ("right", "left"):
        for part in ("arm", "leg"):
            seg_ratio = ratio + float(rng.normal(0, 0.004))
            share = _SHARE[part] * float(rng.normal(1, 0.02))
            r0 = r0_wb * share
            if condition == "right_leg_edema" and side == "right" and part == "leg":
                seg_ratio += 0.035
                r0 *= 0.85
            s = float(s_from_ecw_tbw(seg_ratio, k_rho))
            fc = float(rng.uniform(60, 90) if part == "arm" else rng.uniform(30, 55))
            segs[f"{side}_{part}"] = SegmentTruth(
                r0, r0 / s, float(rng.uniform(0.6, 0.8)), fc, seg_ratio
            )
    r0_t = r0_wb * _SHARE["trunk"]
    segs["trunk"] = SegmentTruth(
        r0_t, r0_t / s_wb, float(rng.uniform(0.6, 0.8)), float(rng.uniform(40, 80)), ratio
    )
    x = float(icw_ecw_ratio_matthie(s_wb, k_rho))
    return Subject(subject_id, condition, sex, age, height, weight, ecw, ecw * x, segs)


def measure(
    subject: Subject,
    freqs_khz: list[float],
    segments: list[str],
    rng: np.random.Generator,
    when: dt.datetime,
    model: str | None = None,
    noise_ohm: float = 0.2,
) -> Reading:
    """The Reading an analyzer would report for ``subject`` at ``when``."""
    f_hz = np.asarray(freqs_khz, dtype=float) * 1e3

    def z_of(name: str) -> np.ndarray:
        t = subject.segments[name]
        return np.asarray(cole_impedance(f_hz, t.r0_ohm, t.rinf_ohm, t.alpha, t.fc_khz * 1e3))

    z_by: dict[str, np.ndarray] = {n: z_of(n) for n in subject.segments}
    z_by[Segment.WHOLE_BODY_RIGHT] = z_by["right_arm"] + z_by["trunk"] + z_by["right_leg"]
    z_by[Segment.WHOLE_BODY_LEFT] = z_by["left_arm"] + z_by["trunk"] + z_by["left_leg"]
    z_by[Segment.LEG_TO_LEG] = z_by["right_leg"] + z_by["left_leg"]
    points = []
    phase50: dict[str, float] = {}
    for seg in segments:
        z = (
            z_by[seg]
            + rng.normal(0, noise_ohm, len(f_hz))
            + 1j * rng.normal(0, noise_ohm, len(f_hz))
        )
        for f, zz in zip(freqs_khz, z, strict=True):
            points.append(
                Impedance(seg, float(f), round(float(zz.real), 1), round(float(zz.imag), 1))
            )
            if f == 50:
                phase50[seg] = round(float(np.degrees(np.arctan2(zz.imag, zz.real))), 1)
    tbw = subject.tbw_l
    values: dict[str, float | int | str] = {
        "St": 0,
        "Bt": 0,
        "wW": round(tbw, 1),
        "wI": round(subject.icw_l, 1),
        "wO": round(subject.ecw_l, 1),
        "wo": round(100 * subject.ecw_l / tbw, 1),
    }
    for seg, code in (
        ("right_leg", "pR"),
        ("left_leg", "pL"),
        ("right_arm", "pr"),
        ("left_arm", "pl"),
    ):
        if seg in phase50 and phase50[seg] != 0:
            values[code] = phase50[seg]
    return Reading(
        model=model,
        subject_id=subject.subject_id,
        measured_at=when.replace(second=0, microsecond=0),
        sex=subject.sex,
        age_years=subject.age_years,
        height_cm=subject.height_cm,
        weight_kg=subject.weight_kg,
        impedance=tuple(points),
        device_values=values,
    )


def truth_record(subject: Subject) -> dict[str, object]:
    """Ground truth as a JSON-able dict (for ``--truth`` files)."""
    return {
        "subject_id": subject.subject_id,
        "condition": subject.condition,
        "sex": subject.sex,
        "age_years": subject.age_years,
        "height_cm": subject.height_cm,
        "weight_kg": subject.weight_kg,
        "ecw_l": subject.ecw_l,
        "icw_l": subject.icw_l,
        "tbw_l": subject.tbw_l,
        "ecw_tbw_ratio": subject.ecw_l / subject.tbw_l,
        "segments": {
            k: {
                "r0_ohm": v.r0_ohm,
                "rinf_ohm": v.rinf_ohm,
                "alpha": v.alpha,
                "fc_khz": v.fc_khz,
                "ecw_tbw_ratio": v.ecw_tbw_ratio,
            }
            for k, v in subject.segments.items()
        },
    }
