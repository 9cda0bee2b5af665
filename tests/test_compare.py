"""Asymmetry and change from the subject's own baseline."""

from __future__ import annotations

import numpy as np
import pytest

from bia_acq.core import cole_impedance, estimate
from bia_acq.core.compare import asymmetry, baseline_change, baseline_rows, limb_asymmetry
from bia_acq.model import Impedance, Reading


def test_asymmetry_by_hand() -> None:
    a = asymmetry([330.0, 300.0], [300.0, 330.0])
    assert a["diff"].tolist() == [30.0, -30.0]
    assert a["ratio"] == pytest.approx([1.1, 300 / 330])
    assert a["index"] == pytest.approx([1.1, 1.1])  # side-independent


def _reading(right_leg_s: float) -> Reading:
    f = (5.0, 50.0, 250.0)
    pts = []
    for seg, r0, s in (
        ("right_arm", 330.0, 1.5),
        ("left_arm", 330.0, 1.5),
        ("right_leg", 250.0, right_leg_s),
        ("left_leg", 270.0, 1.5),
    ):
        z = cole_impedance(np.array(f) * 1e3, r0, r0 / s, 0.7, 50e3)
        pts += [Impedance(seg, fk, float(z[k].real), float(z[k].imag)) for k, fk in enumerate(f)]
    return Reading(sex="female", height_cm=165.0, weight_kg=60.0, impedance=tuple(pts))


def test_right_leg_edema_shows_as_leg_asymmetry() -> None:
    res = estimate([_reading(1.5), _reading(1.25)], "hanai-bis")
    asym = limb_asymmetry(res)
    arm = asym["arm"]["ecw_tbw_ratio"]["diff"]
    leg = asym["leg"]["ecw_tbw_ratio"]["diff"]
    assert arm == pytest.approx([0.0, 0.0], abs=1e-9)
    assert leg[0] == pytest.approx(0.0, abs=1e-9) and leg[1] > 0.02  # right leg wetter
    assert asym["leg"]["r0_ohm"]["ratio"] == pytest.approx([250 / 270] * 2, rel=1e-6)


def test_baseline_is_first_measurement_or_the_chosen_one() -> None:
    subject = np.array([7, 3, 7, 3, -1, 7])
    when = np.array([20.0, 5.0, 10.0, 6.0, 1.0, 30.0])
    values = np.array([0.44, 0.40, 0.43, 0.41, 0.50, 0.46])
    assert baseline_rows(subject, when).tolist() == [2, 1, 2, 1, -1, 2]
    change = baseline_change(values, subject, when)
    assert change[:4] == pytest.approx([0.01, 0.0, 0.0, 0.01])
    assert np.isnan(change[4]) and change[5] == pytest.approx(0.03)
    chosen = baseline_change(values, subject, when, chosen={7: 0})
    assert chosen[[0, 2, 5]] == pytest.approx([0.0, -0.01, 0.02])
    # works per segment too: (N, S)
    two = baseline_change(np.stack([values, 2 * values], 1), subject, when)
    assert two[:, 1] == pytest.approx(2 * change, nan_ok=True)
