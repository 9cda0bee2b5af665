"""The vectorised core equals the plain-Python reference (relative 1e-9)."""

from __future__ import annotations

import numpy as np
import pytest
import scalar_reference as ref
from hypothesis import given, settings
from hypothesis import strategies as st

from bia_acq.core import cole_impedance, estimate
from bia_acq.model import Impedance, Reading

FREQS = (5.0, 50.0, 250.0)
# plausible ranges (PHYSIOLOGY.md: NHANES R0 303–1087 Ω, Ri 218–3099 Ω, α 0.30–0.95,
# fc 2–456 kHz; segments arm ≈ 330, leg ≈ 270, trunk ≈ 30 Ω)
R0_RANGE = {
    "right_arm": (200, 600),
    "left_arm": (200, 600),
    "trunk": (15, 60),
    "right_leg": (150, 450),
    "left_leg": (150, 450),
    "whole_body_right": (303, 1087),
}


@st.composite
def measurements(draw: st.DrawFn) -> tuple[Reading, dict[str, tuple[float, float]]]:
    pts = []
    truth: dict[str, tuple[float, float]] = {}
    for seg, (lo, hi) in R0_RANGE.items():
        r0 = draw(st.floats(lo, hi))
        s = draw(st.floats(1.15, 3.5))
        alpha = draw(st.floats(0.5, 0.95))
        fc = draw(st.floats(10e3, 200e3))
        z = cole_impedance(np.array(FREQS) * 1e3, r0, r0 / s, alpha, fc)
        truth[seg] = (r0, r0 / s)
        pts += [Impedance(seg, f, float(z[k].real), float(z[k].imag)) for k, f in enumerate(FREQS)]
    reading = Reading(
        sex=draw(st.sampled_from(["male", "female"])),
        age_years=draw(st.integers(18, 90)),
        height_cm=draw(st.floats(140, 205)),
        weight_kg=draw(st.floats(40, 140)),
        impedance=tuple(pts),
    )
    return reading, truth


def close(a: object, b: float | None) -> bool:
    if b is None:
        return a is None
    return a is not None and a == pytest.approx(b, rel=1e-9)


@settings(max_examples=40, deadline=None)
@given(measurements())
def test_vectorised_core_equals_the_scalar_reference(m) -> None:
    reading, truth = m
    h, w, male = reading.height_cm, reading.weight_kg, reading.sex == "male"
    age = float(reading.age_years)
    r0 = {s: truth[s][0] for s in ref.SEGMENTS[:-1]}
    rinf = {s: truth[s][1] for s in ref.SEGMENTS[:-1]}
    r0["whole_body"], rinf["whole_body"] = truth["whole_body_right"]
    z50 = {
        ("whole_body" if p.segment == "whole_body_right" else p.segment): (p.r_ohm, p.x_ohm)
        for p in reading.impedance
        if p.freq_khz == 50.0
    }
    r50, x50 = z50["whole_body"]
    expected = {
        "hanai-bis": ref.hanai_bis(r0, rinf, h, w, male),
        "moissl-2006": {"whole_body": ref.moissl_2006(r0["whole_body"], rinf["whole_body"], h, w)},
        "sun-2003": {"whole_body": ref.sun_2003(r50, h, w, male)},
        "kushner-1992": {"whole_body": ref.kushner_1992(r50, h, w)},
        "lukaski-bolonchuk": {"whole_body": ref.lukaski_bolonchuk(r50, x50, h, w, age, male)},
    }
    batch = [reading, reading]  # a batch, not a scalar call
    for method, segs in expected.items():
        res = estimate(batch, method)
        got = {r["segment"]: r for r in res.rows(1)}
        for seg in ref.SEGMENTS:
            want = segs.get(seg, {"ecw": None, "icw": None, "tbw": None, "ratio": None})
            row = got[seg]
            for key, col in (
                ("ecw", "ecw_l"),
                ("icw", "icw_l"),
                ("tbw", "tbw_l"),
                ("ratio", "ecw_tbw_ratio"),
            ):
                assert close(row[col], want[key]), (method, seg, key, row[col], want[key])
            assert close(row["phase_angle_50khz_deg"], ref.phase_deg(*z50[seg]))
