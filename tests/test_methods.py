"""The method registry: published equations by hand, skips with reasons, segment volumes."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import EXAMPLE_FRAME, run_cli

from bia_acq.core import METHODS, cole_impedance, estimate
from bia_acq.core.anthropometry import segment_length_cm, segment_volume_l
from bia_acq.core.hanai import (
    hanai_volumes,
    icw_ecw_ratio_first_generation,
    moissl_volumes,
    segment_ecw,
)
from bia_acq.core.methods import VENDOR_BANDS
from bia_acq.core.regression import (
    ecw_lukaski_bolonchuk,
    tbw_kushner_1992,
    tbw_lukaski_bolonchuk,
    tbw_sun_2003,
)
from bia_acq.model import Impedance, Reading
from bia_acq.protocols.tanita import TanitaProtocol

K_RHO_MEN = 273.9 / 40.5


def test_every_method_is_described_as_data() -> None:
    assert {"hanai-bis", "moissl-2006", "sun-2003", "kushner-1992", "lukaski-bolonchuk"} <= set(
        METHODS
    )
    for name, m in METHODS.items():
        assert m.name == name and m.version and m.compute is not None
        assert m.citation and m.inputs and m.outputs and m.verification
        assert m.applicability and m.uncertainty_model
        # a band only with its source; none published: the note says what was searched
        assert (m.bands is not None and m.bands.source) or m.bands_note
    # issue 12: InBody's 0.36–0.39 belong to InBody's own algorithm (the device
    # method), not to any equation here; no BIS cut-off is published
    assert all(m.bands is None for m in METHODS.values())
    inbody = VENDOR_BANDS["inbody"]
    assert (inbody.normal_min, inbody.normal_max) == (0.36, 0.39) and "inbody" in inbody.source
    assert list(inbody.label([0.37, 0.38, 0.35], [0.385, 0.40, 0.37])) == [
        "normal",
        "indeterminate",
        "indeterminate",
    ]


def test_regression_equations_reproduce_hand_computed_values() -> None:
    # 175 cm, 75 kg, R50 500 Ω: H²/R = 61.25
    assert tbw_kushner_1992(175, 75, 500) == pytest.approx(0.59 * 61.25 + 0.065 * 75 + 0.04)
    assert tbw_kushner_1992(175, 75, 500) == pytest.approx(41.0525)
    assert tbw_sun_2003(175, 75, 500, True) == pytest.approx(41.90425)
    # 165 cm, 60 kg, 600 Ω woman: H²/R = 45.375
    assert tbw_sun_2003(165, 60, 600, False) == pytest.approx(30.94575)
    assert tbw_lukaski_bolonchuk(175, 75, 500, 40, True) == pytest.approx(37.94125)
    assert tbw_lukaski_bolonchuk(175, 75, 500, 40, False) == pytest.approx(37.94125 - 2.9)
    # ECW with Xc 60 Ω (sign of X does not matter): H²/Xc = 510.41667
    assert ecw_lukaski_bolonchuk(175, 75, 500, -60) == pytest.approx(16.4041667)


def test_moissl_by_hand() -> None:
    ecw, icw, tbw = moissl_volumes(600.0, 400.0, 175.0, 75.0)
    bmi = 75 / 1.75**2
    size = 175**2 * 75**0.5
    assert ecw == pytest.approx((0.188 / bmi + 0.2883) * (size / 600) ** (2 / 3))
    assert icw == pytest.approx((5.8758 / bmi + 0.4194) * (size / 1200) ** (2 / 3))
    assert ecw == pytest.approx(17.175, rel=1e-4) and tbw == pytest.approx(ecw + icw)
    # plausibility only: within 10 % of De Lorenzo's ECW for the same man
    assert ecw == pytest.approx(hanai_volumes(600.0, 400.0, 175.0, 75.0, True)[0], rel=0.1)


def test_first_generation_icw_is_available_and_implausible() -> None:
    s = np.array([1.0, 1.2, 1.5, 2.0, 3.0])
    x = icw_ecw_ratio_first_generation(s, K_RHO_MEN)
    assert (1 + x) ** 2.5 == pytest.approx(s * (1 + K_RHO_MEN * x))
    assert x[0] == pytest.approx(1.81, abs=0.01)  # the root besides 0 at s = 1
    assert (1 / (1 + x) < 0.36).all()  # ECW/TBW far below the ~0.43 measured by BIS
    tbw = hanai_volumes(600.0, 400.0, 175.0, 75.0, "male", icw="first-generation")[2]
    assert hanai_volumes(600.0, 400.0, 175.0, 75.0, ["male", "female"])[0][1] == pytest.approx(
        hanai_volumes(600.0, 400.0, 175.0, 75.0, False)[0]
    )
    assert tbw / 75.0 > 0.75  # implausible: most of body weight would be water
    with pytest.raises(ValueError):
        hanai_volumes(600.0, 400.0, 175.0, 75.0, True, icw="third")


def test_segment_volume_by_hand() -> None:
    # arm of a 175 cm, 75 kg man with R0 330 Ω: L = 0.332·175, V = 75·(0.028/1.07 + 0.016/1.13)
    length = segment_length_cm("arm", 175)
    vol = segment_volume_l("arm", 75)
    assert length == pytest.approx(58.1) and vol == pytest.approx(3.0245, rel=1e-4)
    expected = 1e-2 * (40.5 * 58.1**2 / 330) ** (2 / 3) * vol ** (1 / 3)
    assert segment_ecw(330, length, vol, 40.5) == pytest.approx(expected)
    assert 0.6 < expected < 1.0  # litres


def _reading(freqs=(5.0, 50.0, 250.0), reactance=True, **kw) -> Reading:
    """A healthy man's five segments and right hand-to-foot path from Cole spectra."""
    segs = {"right_arm": 330.0, "left_arm": 335.0, "trunk": 30.0, "right_leg": 270.0}
    segs["left_leg"] = 272.0
    f = np.array(freqs) * 1e3
    pts = []
    whole = 0
    for seg, r0 in segs.items():
        z = cole_impedance(f, r0, r0 / 1.5, 0.7, 50e3)
        if seg in ("right_arm", "trunk", "right_leg"):
            whole = whole + z
        for k, fk in enumerate(freqs):
            pts.append(
                Impedance(seg, fk, float(z[k].real), float(z[k].imag) if reactance else None)
            )
    for k, fk in enumerate(freqs):
        x = float(whole[k].imag) if reactance else None
        pts.append(Impedance("whole_body_right", fk, float(whole[k].real), x))
    base = dict(sex="male", age_years=40, height_cm=175.0, weight_kg=75.0, impedance=tuple(pts))
    base.update(kw)
    return Reading(**base)


def test_every_method_runs_on_a_full_reading() -> None:
    for name in set(METHODS) - {"device"}:  # no device figures in this reading
        res = estimate([_reading()], name)
        wb = res.rows(0)[-1]
        assert wb["method"] == name
        assert wb["tbw_l"] is not None and 25 < wb["tbw_l"] < 60, (name, wb)


def test_missing_inputs_skip_with_a_reason_never_crash() -> None:
    no50 = _reading(freqs=(5.0, 100.0, 250.0, 500.0))
    for name in ("sun-2003", "kushner-1992", "lukaski-bolonchuk"):
        wb = estimate([no50], name).rows(0)[-1]
        assert wb["tbw_l"] is None and "no impedance at 50 kHz" in wb["fit_status"]
        assert wb["phase_angle_50khz_deg"] is None
    # R without X: Lukaski gives TBW only; BIS methods cannot fit and say so
    nox = _reading(freqs=(5.0, 20.0, 50.0, 100.0, 250.0, 500.0), reactance=False)
    lb = estimate([nox], "lukaski-bolonchuk").rows(0)[-1]
    assert lb["tbw_l"] is not None and lb["ecw_l"] is None and "TBW only" in lb["fit_status"]
    hb = estimate([nox], "hanai-bis").rows(0)
    assert hb[0]["ecw_l"] is None and hb[0]["fit_status"] == "fewer than 3 frequencies measured"
    # magnitude-only points (|Z|, no phase) are not resistances: noted, not used
    full = _reading()
    mags = tuple(
        Impedance(p.segment, p.freq_khz, abs(complex(p.r_ohm, p.x_ohm)), None, magnitude_only=True)
        for p in full.impedance
    )
    for name in ("hanai-bis", "kushner-1992"):
        res = estimate([Reading(**{**full.__dict__, "impedance": mags})], name)
        assert res.rows(0)[-1]["tbw_l"] is None
        assert any("without reactance" in n and name in n for n in res.notes[0])
    # no sex: sex-specific methods give no volumes, say so, and do not crash
    res = estimate([_reading(sex=None)], "sun-2003")
    assert res.rows(0)[-1]["tbw_l"] is None and any("sex not reported" in n for n in res.notes[0])


def test_hanai_segments_and_whole_body() -> None:
    res = estimate([_reading()], "hanai-bis")
    rows = {r["segment"]: r for r in res.rows(0)}
    # R0/R∞ = 1.5 everywhere: the same ratio per segment, from Matthie alone
    for seg in ("right_arm", "left_arm", "trunk", "right_leg", "left_leg", "whole_body"):
        assert rows[seg]["ecw_tbw_ratio"] == pytest.approx(0.42996, rel=1e-4)
        assert rows[seg]["ecw_l"] > 0 and rows[seg]["fit_grade"] == "fair"
    assert rows["right_arm"]["ecw_l"] < rows["right_leg"]["ecw_l"] < rows["trunk"]["ecw_l"]
    limbs = sum(rows[s]["ecw_l"] for s in ("right_arm", "left_arm", "right_leg", "left_leg"))
    assert 0.6 < (limbs + rows["trunk"]["ecw_l"]) / rows["whole_body"]["ecw_l"] < 1.2


def test_methods_command_lists_citations() -> None:
    proc = run_cli("methods")
    out = proc.stdout.decode()
    assert proc.returncode == 0, proc.stderr
    for name, m in METHODS.items():
        assert f"{name} v{m.version}" in out
    assert "Kushner" in out and "verified:" in out
    # issue 12: applicability, sourced bands (or none), the uncertainty model, defaults
    assert out.count("applies to:") == out.count("uncertainty:") - 1 == len(METHODS)
    assert "no published band" in out and "InBody 0.36–0.39" in out
    assert "tanita-mc780: device" in out and "tanita-mc980: hanai-bis" in out


def test_example_frame_under_regression_is_skipped_not_guessed() -> None:
    reading = TanitaProtocol().decode(EXAMPLE_FRAME)  # no hand-to-foot path, no trunk
    wb = estimate([reading], "kushner-1992").rows(0)[-1]
    assert wb["tbw_l"] is None and "no hand-to-foot impedance" in wb["fit_status"]
