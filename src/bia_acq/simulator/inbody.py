"""What an InBody analyzer prints for a simulated subject: its LookinBody result columns.

A LookinBody export row carries the analyzer's whole result sheet, not only its
impedances and water figures (the real headers in ``tests/data/real/``: the InBody 120
export's 87 columns, an InBody 270 site export's 106). The simulator fills those
columns from the simulated subject so a simulated row has the size and shape of a real
one. Column names are LookinBody's (without their numbers); what each means and how
it is derived (docs/physiology.md, "Simulated InBody result columns"):

* **Weight, TBW**: the subject's (TBW on the device's ECW/TBW scale keeps TBW).
* **Protein, Minerals**: InBody's body-composition identity weight = TBW + protein +
  minerals + BFM (InBody result-sheet interpretation, qr.inbody.com/ri/770); the dry
  lean mass follows the subject's *baseline* water in the proportions the real InBody
  270 row shows (TBW 47, protein 12.8, minerals 4.37 of FFM 64.2 kg: :data:`DRY_PER_TBW`),
  so extra fluid adds water, not protein.
* **FFM** = TBW + protein + minerals; **BFM** = weight − FFM; **PBF** = 100 BFM/weight;
  **BMI** = weight/height².
* **SMM**: Janssen et al. 2000 (J Appl Physiol 89:465, abstract [V]) from the
  hand-to-foot resistance at 50 kHz of the subject's model, height, sex and age.
* **Standard values and normal ranges**, in the pattern the real 270 row shows (its
  limits are reproduced to the printed digit by these rules): standard weight = BMI 22
  × height², weight 85–115 %; standard PBF 15 % (men) / 23 % (women), the middle of
  InBody's PBF ranges 10–20 % and 18–28 %; BFM 80–160 % of standard; FFM, TBW,
  protein, minerals and SMM 90–110 % of the standard FFM's; BMI 18.5–25; obesity
  degree (100 × weight / standard weight) 90–110.
* **Segmental FFM and BFM**: FFM shared by each segment's water, BFM by Dempster's
  mass shares (:data:`bia_acq.simulator.population.MASS_SHARE`, a model assumption);
  the ``%`` columns relative to the standard body's segment.
* **BMR** = 370 + 21.6 × FFM (Katch–McArdle; reproduces the real row's 1758 kcal from
  its FFM); **target weight** = FFM / (1 − standard PBF), and the controls that lead
  there; **SMI** (appendicular FFM / height²), **FFMI**, **FMI**, **SMM/WT**: their
  definitions (the real row reproduces each).
* **InBody score, WHR, VFL, BMR range** are InBody's own, unpublished algorithms: filled
  with stated stand-ins (:func:`result_sheet`), never read by any method.

Nothing here names a person: name, birth date, phone, address, e-mail, memo, group and
medical history stay empty, as in a de-identified export.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from bia_acq.core.cole import cole_impedance

#: dry lean mass per litre of TBW in a real InBody row (tests/data/real/
#: inbody270-lookinbody-site-export.csv: TBW 47, protein 12.8, minerals 4.37)
DRY_PER_TBW = {"protein": 12.8 / 47.0, "minerals": 4.37 / 47.0}
#: the real row's standard composition: TBW, protein and mineral normal ranges
#: (37.9–46.3, 10.2–12.4, 3.5–4.28) centred on these shares of its standard FFM (57.3)
STANDARD_SHARE = {"TBW (Total Body Water)": 0.735, "Protein": 0.197, "Minerals": 0.068}
STANDARD_BMI = 22.0
STANDARD_PBF = {"male": 15.0, "female": 23.0}
PBF_RANGE = {"male": (10.0, 20.0), "female": (18.0, 28.0)}
WHR_RANGE = {"male": (0.80, 0.90), "female": (0.75, 0.85)}
SEGMENT_CODE = {
    "right_arm": "Right Arm",
    "left_arm": "Left Arm",
    "trunk": "Trunk",
    "right_leg": "Right Leg",
    "left_leg": "Left Leg",
}


def janssen_smm_kg(height_cm: float, r50_ohm: float, male: bool, age_years: float) -> float:
    """Skeletal muscle mass (kg), Janssen et al. 2000, J Appl Physiol 89:465–471:
    SM = Ht²/R × 0.401 + 3.825 (men) − 0.071 × age + 5.102 (Ht in cm, R at 50 kHz)."""
    return height_cm**2 / r50_ohm * 0.401 + (3.825 if male else 0.0) - 0.071 * age_years + 5.102


def hand_to_foot_r50(parts: Mapping[str, object]) -> float:
    """Resistance at 50 kHz of the right hand-to-foot path of the subject's Cole model."""
    total = 0.0
    for name in ("right_arm", "trunk", "right_leg"):
        p = parts[name]
        z = cole_impedance(
            np.array([50e3]),
            p.r0_ohm,  # type: ignore[attr-defined]
            p.rinf_ohm,  # type: ignore[attr-defined]
            p.alpha,  # type: ignore[attr-defined]
            p.fc_khz * 1e3,  # type: ignore[attr-defined]
        )
        total += float(np.real(z)[0])
    return total


def _limits(
    name: str, value: float, lo: float, hi: float, digits: int = 1
) -> dict[str, float | int | str]:
    """A value and its normal range under LookinBody's column names."""

    def r(v: float) -> float | int:
        return round(v, digits) if digits else round(v)

    short = name.split(" (")[0]
    return {
        name: r(value),
        f"Lower Limit ({short} Normal Range)": r(lo),
        f"Upper Limit ({short} Normal Range)": r(hi),
    }


def result_sheet(
    *,
    sex: str,
    age_years: float,
    height_cm: float,
    weight_kg: float,
    tbw_l: float,
    baseline_tbw_l: float,
    segment_tbw_l: Mapping[str, float],
    segment_r0_ohm: Mapping[str, float],
    mass_share: Mapping[str, float],
    r50_ohm: float,
) -> dict[str, float | int | str]:
    """The InBody result columns (LookinBody names, without numbers) of one test.

    ``segment_tbw_l`` and ``segment_r0_ohm`` hold the water and R0 of the five measured
    segments; ``mass_share``
    each segment's share of body mass (for fat). Values are rounded as LookinBody
    prints them (0.1 kg, minerals 0.01 kg, whole kcal and percents of the obesity
    degree and score).
    """
    male = sex == "male"
    h2 = (height_cm / 100.0) ** 2
    protein = DRY_PER_TBW["protein"] * baseline_tbw_l
    minerals = DRY_PER_TBW["minerals"] * baseline_tbw_l
    ffm = tbw_l + protein + minerals
    bfm = max(weight_kg - ffm, 0.03 * weight_kg)  # an implausibly lean draw keeps some fat
    ffm = weight_kg - bfm
    pbf = 100.0 * bfm / weight_kg
    std_w = STANDARD_BMI * h2
    std_pbf = STANDARD_PBF["male" if male else "female"]
    std_bfm = std_w * std_pbf / 100.0
    std_ffm = std_w - std_bfm
    smm = janssen_smm_kg(height_cm, r50_ohm, male, age_years)
    std_smm = smm / ffm * std_ffm  # the subject's muscle share of a standard FFM
    out: dict[str, float | int | str] = {}
    out.update(_limits("Weight", weight_kg, 0.85 * std_w, 1.15 * std_w))
    for name, v in (("TBW (Total Body Water)", tbw_l), ("Protein", protein)):
        s = STANDARD_SHARE[name] * std_ffm
        out.update(_limits(name, v, 0.9 * s, 1.1 * s))
    s = STANDARD_SHARE["Minerals"] * std_ffm
    out.update(_limits("Minerals", minerals, 0.9 * s, 1.1 * s, 2))
    out.update(_limits("BFM (Body Fat Mass)", bfm, 0.8 * std_bfm, 1.6 * std_bfm))
    out.update(_limits("FFM (Fat Free Mass)", ffm, 0.9 * std_ffm, 1.1 * std_ffm))
    out.update(_limits("SMM (Skeletal Muscle Mass)", smm, 0.9 * std_smm, 1.1 * std_smm))
    out.update(_limits("BMI (Body Mass Index)", weight_kg / h2, 18.5, 25.0))
    out.update(_limits("PBF (Percent Body Fat)", pbf, *PBF_RANGE["male" if male else "female"]))
    seg_water = sum(segment_tbw_l.values())
    measured_share = seg_water / tbw_l  # the head and neck hold the rest
    # as an analyzer sees it: a segment's lean mass follows its conductance, so a side
    # with the lower R0 (more water, or the subject's own build) gets the larger share
    pair_r0 = {
        k: float(np.mean([r for p, r in segment_r0_ohm.items() if k in p]))
        for k in ("arm", "leg", "trunk")
    }
    seen = {
        p: segment_tbw_l[p] * pair_r0[p.rsplit("_", 1)[-1]] / r for p, r in segment_r0_ohm.items()
    }
    appendicular = 0.0
    for part, label in SEGMENT_CODE.items():
        seg_ffm = ffm * measured_share * seen[part] / sum(seen.values())
        std_seg = std_ffm * measured_share * segment_tbw_l[part] / seg_water
        kind = part.rsplit("_", 1)[-1]
        seg_bfm = bfm * mass_share[kind]
        out[f"FFM of {label}"] = round(seg_ffm, 2)
        out[f"FFM% of {label}"] = round(100.0 * seg_ffm / std_seg, 1)
        out[f"BFM of {label}"] = round(seg_bfm, 1)
        out[f"BFM% of {label}"] = round(100.0 * seg_bfm / (std_bfm * mass_share[kind]), 1)
        if kind != "trunk":
            appendicular += seg_ffm
    target = ffm / (1 - std_pbf / 100.0) if ffm >= 0.9 * std_ffm else std_w
    ffm_control = max(0.9 * std_ffm - ffm, 0.0)
    bfm_control = target - ffm - ffm_control - bfm
    bmr = 370.0 + 21.6 * ffm  # Katch–McArdle
    # stand-ins for InBody's unpublished algorithms (shape only; no method reads them):
    # a score of 80 at the standard body, +1 per kg of SMM above it, −1 per kg of fat
    score = 80.0 + (smm - std_smm) - max(bfm - std_bfm, 0.0)
    whr_lo, whr_hi = WHR_RANGE["male" if male else "female"]
    whr = (whr_lo + whr_hi) / 2 + 0.005 * (pbf - std_pbf)
    out.update(
        {
            "InBody Score": round(float(np.clip(score, 40, 100))),
            "Target Weight": round(target, 1),
            "Weight Control": round(target - weight_kg, 1),
            "BFM Control": round(bfm_control, 1),
            "FFM Control": round(ffm_control, 1),
            "BMR (Basal Metabolic Rate)": round(bmr),
            **_limits("WHR (Waist-Hip Ratio)", whr, whr_lo, whr_hi, 2),
            "VFL (Visceral Fat Level)": f"Level {int(np.clip(round(pbf / 3.5), 1, 20))}",
            **_limits("Obesity Degree", 100.0 * weight_kg / std_w, 90, 110, 0),
            "SMI (Skeletal Muscle Index)": round(appendicular / h2, 1),
            "SMM/WT": round(100.0 * smm / weight_kg, 1),
            "FFMI (Fat Free Mass Index)": round(ffm / h2, 1),
            "FMI (Fat Mass Index)": round(bfm / h2, 1),
            "Lower Limit (BMR Normal Range)": round(370.0 + 21.6 * 0.9 * std_ffm),
            "Upper Limit (BMR Normal Range)": round(370.0 + 21.6 * 1.1 * std_ffm),
        }
    )
    return out
