"""The fault engine as a library: parsing, plans, and what each fault does to a frame."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bia_acq.drivers import SerialSettings
from bia_acq.errors import ConfigError
from bia_acq.protocols.tanita import TanitaProtocol
from bia_acq.simulator.faults import KINDS, Fault, FaultEngine, uart_resample

S = SerialSettings()


def engine(*faults: Fault, seed: int = 0) -> FaultEngine:
    return FaultEngine(faults, S, np.random.default_rng(seed))


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        ("bad_checksum:0.05", Fault("bad_checksum", probability=0.05)),
        ("unplug@10", Fault("unplug", at=(10,))),
        ("stall@2,5=3", Fault("stall", at=(2, 5), value=3.0)),
        ("wrong_baud:1=19200", Fault("wrong_baud", probability=1.0, value=19200.0)),
    ],
)
def test_parse(text: str, fault: Fault) -> None:
    assert Fault.parse(text) == fault


@pytest.mark.parametrize("text", ["melt:0.1", "drop:2", "drop", "drop@0", "stall@1=-2", "split@x"])
def test_parse_mistakes_are_one_line(text: str) -> None:
    with pytest.raises(ConfigError) as exc:
        Fault.parse(text)
    assert "--fault" in str(exc.value) and "\n" not in str(exc.value)


def test_bad_checksum_keeps_the_data_and_the_codec_rejects_it(example_frame: bytes) -> None:
    plan = engine(Fault("bad_checksum", at=(1,))).plan(1, example_frame)
    sent = b"".join(p for p, _ in plan.pieces)
    assert sent[:-4] == example_frame[:-4] and sent != example_frame and not plan.intact
    with pytest.raises(Exception, match="checksum"):
        TanitaProtocol().decode(sent)


def test_probability_fires_about_as_often_as_asked(example_frame: bytes) -> None:
    e = engine(Fault("drop", probability=0.2), seed=1)
    fired = sum(bool(e.plan(n, example_frame).fired) for n in range(1, 1001))
    assert 150 < fired < 250 and e.count == {"drop": fired}


def test_wrong_baud_is_garbage_and_the_right_baud_is_the_identity(example_frame: bytes) -> None:
    assert uart_resample(example_frame, S, S.baudrate) == example_frame
    for baud in (4800, 19200, 2400):
        got = uart_resample(example_frame, S, baud)
        assert got != example_frame and b"CS," not in got


def test_stall_longer_than_the_framer_silence_loses_the_frame(example_frame: bytes) -> None:
    short = engine(Fault("stall", at=(1,), value=0.5)).plan(1, example_frame)
    long = engine(Fault("stall", at=(1,), value=3.0)).plan(1, example_frame)
    assert short.intact and not long.intact and long.pieces[0][1] == 3.0


@settings(max_examples=60, deadline=None)
@given(
    frame=st.binary(min_size=2, max_size=400),
    kinds=st.lists(st.sampled_from(KINDS), min_size=1, max_size=4, unique=True),
    seed=st.integers(0, 2**32 - 1),
)
def test_plans_account_for_every_fault(frame: bytes, kinds: list[str], seed: int) -> None:
    plan = engine(*(Fault(k, at=(1,)) for k in kinds), seed=seed).plan(1, frame)
    assert sorted(plan.fired) == sorted(kinds)
    sent = b"".join(p for p, _ in plan.pieces)
    harmless = {"split", "garbage", "unplug"}
    if set(kinds) <= harmless | {"stall"}:
        assert sent.endswith(frame) and plan.intact
        assert sent == frame or "garbage" in kinds
    if not plan.intact:
        assert set(kinds) - harmless
    assert all(pause >= 0 for _, pause in plan.pieces)
    assert (plan.unplug_s > 0) == ("unplug" in kinds)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_any_fault_text_parses_or_is_a_config_error(text: str) -> None:
    try:
        f = Fault.parse(text)
    except ConfigError as exc:
        assert "\n" not in str(exc)
    else:
        assert f.kind in KINDS


def test_random_faults_do_not_change_the_subjects_of_a_seed() -> None:
    from bia_acq.drivers import get_profile
    from bia_acq.simulator.device import VirtualAnalyzer

    profile = get_profile("tanita-mc780")
    plain = VirtualAnalyzer(profile, seed=9)
    faulty = VirtualAnalyzer(profile, seed=9, faults=[Fault("flip", probability=0.5)])
    for _ in range(3):
        faulty.line.engine.plan(1, b"{frame}\r\n")  # draws from the fault stream only
        assert faulty.next_measurement()[0]["truth"] == plain.next_measurement()[0]["truth"]
