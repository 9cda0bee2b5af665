"""Tanita code table: unit variants, magnitude-only scales, segmental codes, consistency checks."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest
from conftest import DATA, EXAMPLE_FRAME, readings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bia_acq.acquire import Batch, Ingest, PortRuntime
from bia_acq.drivers import get_profile
from bia_acq.errors import FrameError
from bia_acq.model import Impedance, Reading
from bia_acq.protocols import tanita
from bia_acq.protocols.base import Chunk
from bia_acq.protocols.tanita import (
    LB_KG,
    AmbiguousDate,
    TanitaProtocol,
    checksum,
    describe,
    parse_date,
    parse_feet_inches,
    parse_stone_pounds,
)
from bia_acq.store.db import open_writer
from bia_acq.store.writer import Store

codec = TanitaProtocol()
SC240_SAMPLE = (DATA / "sc240-manual-sample.txt").read_bytes()


def frame(body: str, brace: bool = False) -> bytes:
    data = body.encode()
    return data + b"CS," + checksum(data).encode() + (b"}" if brace else b"") + b"\r\n"


def test_sc240_manual_sample_decodes_with_its_published_checksum() -> None:
    # the manual's sample output, spaces after commas removed: its checksum FD then matches
    r = codec.decode(SC240_SAMPLE)
    assert (r.model, r.serial_number, r.sex, r.age_years) == ("SC-240", "00000002", "male", 30)
    assert (r.height_cm, r.weight_kg) == (170.0, 82.7)
    assert r.impedance == (Impedance("leg_to_leg", 50.0, 369.4, None, magnitude_only=True),)
    assert r.device_values["rb"] == 8255 and r.device_values["Sw"] == 63.6
    assert "Pt" not in r.device_values  # 0.0: not measured
    assert codec.check(r) == []


def test_segmental_composition_codes_are_kept_and_described() -> None:
    r = codec.decode(frame("{0,16,~0,2,FR,17.9,fr,1.2,MT,30.9,mT,29.1,ST,-1,sR,2,"))
    assert r.device_values == {"FR": 17.9, "fr": 1.2, "MT": 30.9, "mT": 29.1, "ST": -1, "sR": 2}
    assert describe("FR") == "fat (%), right leg"
    assert describe("mT") == "muscle mass (kg), trunk"
    assert describe("KL") == "reactance at 250 kHz, left_leg (ohm)"
    assert describe("jr") == "reactance at 1000 kHz, right_arm (ohm)"
    assert describe("ZF") == "impedance |Z| at 50 kHz, leg_to_leg (ohm)"
    assert describe("pl") == "phase angle at 50 kHz, left_arm (degrees)"
    assert describe("wo") == "ECW/TBW (%)"
    assert describe("Qq") is None


@pytest.mark.parametrize(
    ("pair", "kg", "cm"),
    [
        ("Wp,154.0,Hm,170.0,", 154.0 * LB_KG, 170.0),
        ("Ws,11.05.2,Hf,5.07.5,", (11 * 14 + 5.2) * LB_KG, (5 * 12 + 7.5) * 2.54),
        ('Ws,"11.05",Hf,"5\'07",', (11 * 14 + 5) * LB_KG, 67 * 2.54),
    ],
)
def test_pound_stone_and_feet_variants_become_kg_and_cm_keeping_the_raw(
    pair: str, kg: float, cm: float
) -> None:
    r = codec.decode(frame("{0,16,~0,1," + pair))
    assert r.weight_kg == pytest.approx(kg, abs=0.005)
    assert r.height_cm == pytest.approx(cm, abs=0.05)
    assert {"Wp", "Ws"} & r.device_values.keys()  # the device's own number is kept
    assert codec.decode(codec.encode(r)) == r


def test_feet_inches_and_stone_pounds_parsers_refuse_nonsense() -> None:
    assert parse_feet_inches("6'00") == pytest.approx(182.88)
    assert parse_stone_pounds("10.00") == pytest.approx(140 * LB_KG)
    for bad in ("5'12", "5", "x'1", "5'07'1"):
        with pytest.raises(ValueError):
            parse_feet_inches(bad)
    for bad in ("10.14", "10", "a.1"):
        with pytest.raises(ValueError):
            parse_stone_pounds(bad)
    with pytest.raises(FrameError) as info:
        codec.decode(frame("{0,16,Ws,11.20.0,"))
    assert "stone" in info.value.reason and info.value.offset == len("{0,16,Ws,")


def test_bc601_unit_control_prefix_selects_pounds_and_inches() -> None:
    bc601 = get_profile("tanita-bc601").codec()
    imperial = bc601.decode(
        frame(
            '{0,16,~0,3,~1,3,~2,3,~3,4,MO,"BC-601",DT,"05/05/2026",Ti,"13:21:30",Wk,154.0,Hm,67.0,'
            "FW,20.1,mW,118.0,mr,7.9,bW,6.4,"
        )
    )
    assert imperial.weight_kg == pytest.approx(69.85, abs=0.01)
    assert imperial.height_cm == pytest.approx(170.2, abs=0.05)
    # every mass in kg under its own key, the device's pounds kept beside it; % unchanged
    assert imperial.device_values == {
        "Wk_lb": 154.0, "Hm_in": 67.0, "FW": 20.1,
        "mW": 53.52, "mW_lb": 118.0, "mr": 3.58, "mr_lb": 7.9, "bW": 2.9, "bW_lb": 6.4,
    }  # fmt: skip
    assert bc601.decode(bc601.encode(imperial)) == imperial
    metric = bc601.decode(frame("{0,16,~0,2,~1,2,~2,3,~3,4,Wk,69.9,Hm,170.0,"))
    assert (metric.weight_kg, metric.height_cm, metric.device_values) == (69.9, 170.0, {})
    # a generic Tanita profile does not reinterpret the prefix
    assert codec.decode(frame("{0,16,~0,3,Wk,154.0,")).weight_kg == 154.0


def test_brace_after_checksum_and_negative_phase() -> None:
    r = codec.decode(frame("{0,16,RR,231.5,XR,-24.7,pR,-6.1,", brace=True))
    assert r.device_values == {"pR": -6.1} and codec.check(r) == []


def test_the_published_example_is_consistent() -> None:
    assert codec.check(codec.decode(EXAMPLE_FRAME)) == []


def test_inconsistent_phase_and_water_produce_warnings() -> None:
    r = codec.decode(frame("{0,16,RR,231.5,XR,-24.7,pR,-9.0,wW,33.6,wI,19.9,wO,13.7,wo,45.0,St,1,"))
    warnings = codec.check(r)
    assert len(warnings) == 3
    assert "pR = -9 deg but atan(X/R) at 50 kHz = -6.1 deg (right_leg)" in warnings[0]
    assert "wo = 45 % but 100*wO/wW = 40.8 %" in warnings[1]
    assert "St = 1" in warnings[2]
    r = codec.decode(frame("{0,16,wW,40.0,wI,19.9,wO,13.7,"))
    assert codec.check(r) == ["device TBW wW = 40 kg but wI + wO = 33.6 kg"]


def test_warnings_are_stored_with_the_measurement_not_rejected(tmp_path: Path) -> None:
    bad = EXAMPLE_FRAME.replace(b"pr,-6.3", b"pr,-2.0")
    body = bad[: bad.rindex(b"CS,")]
    bad = body + b"CS," + checksum(body).encode() + b"\r\n"
    store = Store(open_writer(tmp_path / "w.db"))
    ingest = Ingest(store, "hanai-bis")
    rt = PortRuntime("p", "tanita-mc780", get_profile("tanita-mc780").codec(), None)
    ingest.ports["p"] = rt
    ingest.handle(Batch("p", rt.driver, [Chunk("frame", bad)], 1.8e9))
    store.db.close()
    db = sqlite3.connect(tmp_path / "w.db")
    (warnings,) = db.execute("SELECT warnings_json FROM measurement").fetchone()
    assert "device phase pr = -2 deg but atan(X/R) at 50 kHz = -6.3 deg (right_arm)" in warnings
    assert db.execute("SELECT status FROM raw_frame").fetchone() == ("decoded",)


def test_magnitude_only_profile_encodes_z() -> None:
    sc330 = get_profile("tanita-sc330").codec()
    r = Reading(impedance=(Impedance("leg_to_leg", 50.0, 480.0, -55.0),))
    data = sc330.encode(r)
    assert b",ZF,483.1," in data
    back = sc330.decode(data)
    assert back.impedance == (Impedance("leg_to_leg", 50.0, 483.1, None, magnitude_only=True),)
    assert sc330.decode(sc330.encode(back)) == back  # a magnitude goes out as ZF again


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(readings())
def test_fast_and_careful_tokenizers_agree(reading: Reading) -> None:
    data = codec.encode(reading)
    fast = codec.decode(data)
    original = tanita._split_simple
    tanita._split_simple = lambda text: None  # force the careful tokenizer
    try:
        careful = codec.decode(data)
    finally:
        tanita._split_simple = original
    assert fast == careful == reading


@pytest.mark.parametrize(
    "body",
    [
        '{0,16,MO,"a,b",RR,1.0,',  # a comma inside quotes: the careful tokenizer
        '{0,16,MO,"x"y,',
        "{0,16,RR,nan,",
        "{0,16,RR,1.0,RR,2.0,",
        '{0,16,"RR",1.0,',
        "{0,16,XR,inf,RR,5,",
    ],
)
def test_fast_path_errors_match_the_careful_path(body: str) -> None:
    data = frame(body)
    outcomes = []
    original = tanita._split_simple
    for force in (False, True):
        if force:
            tanita._split_simple = lambda text: None
        try:
            outcomes.append(codec.decode(data))
        except FrameError as exc:
            outcomes.append((exc.reason, exc.offset))
        finally:
            tanita._split_simple = original
    assert outcomes[0] == outcomes[1]


def _outcome(data: bytes, careful: bool) -> object:
    original = tanita._split_simple
    if careful:
        tanita._split_simple = lambda text: None  # careful tokenizer, no plan
    try:
        return codec.decode(data)
    except FrameError as exc:
        return (exc.reason, exc.offset)
    finally:
        tanita._split_simple = original


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    readings(),
    st.integers(min_value=0),
    st.sampled_from(["0.0", "-0.0", "nan", "inf", "-inf", "x", "1e3", "7", "", '"q"', "1e400"]),
)
def test_planned_fields_agree_with_the_per_pair_loop(reading: Reading, at: int, value: str) -> None:
    """The per-header-sequence plan (cached across frames) gives what the per-pair loop
    gives, for the frame and for the same headers with one value changed: the same
    reading, or the same error at the same byte offset."""
    data = codec.encode(reading)
    body = data[: data.rindex(b"CS,")].decode()
    toks = body.split(",")
    values = [
        i for i in range(1, len(toks) - 1, 2) if '"' not in toks[i] and '"' not in toks[i - 1]
    ]
    assert _outcome(data, False) == _outcome(data, True) == reading
    if values:
        toks[values[at % len(values)]] = value
        again = frame(",".join(toks))
        assert _outcome(again, False) == _outcome(again, True)


@settings(max_examples=200)
@given(
    st.lists(st.integers(1, 3000).map(lambda v: v / 10), min_size=4, max_size=4),
    st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2099, 12, 31)),
    st.sampled_from(["dmy", "mdy", "auto"]),
)
def test_bc601_pound_mode_and_date_orders_round_trip(
    lbs: list[float], when: dt.datetime, order: str
) -> None:
    """A pound-mode frame decodes to kg (device pounds kept) and encodes back to the same
    bytes; a date the order cannot tell apart is kept as sent, with a warning."""
    codec = TanitaProtocol({**get_profile("tanita-bc601").options, "date_order": order})
    w, m, b, seg = lbs
    day = when.strftime("%m/%d/%Y" if order == "mdy" else "%d/%m/%Y")
    raw = frame(
        f'{{0,16,~0,3,~1,3,~2,3,~3,4,MO,"BC-601",DT,"{day}",Ti,"{when:%H:%M:%S}",'
        f"Wk,{w},Hm,70.0,mW,{m},bW,{b},mR,{seg},FW,18.9,"
    )
    r = codec.decode(raw)
    assert codec.decode(codec.encode(r)) == r  # pounds written back as the device sent them
    assert codec.encode(r).count(f",mW,{m},".encode()) == 1
    assert r.weight_kg == round(w * LB_KG, 2) and r.device_values["mW"] == round(m * LB_KG, 2)
    assert (r.device_values["mW_lb"], r.device_values["bW_lb"], r.device_values["mR_lb"]) == (
        m, b, seg,
    )  # fmt: skip
    ambiguous = when.day <= 12 and when.month <= 12 and when.day != when.month
    if order == "auto" and ambiguous:
        assert r.measured_at is None and r.device_values["DT"] == day
        assert "ambiguous" in codec.check(r)[0]
    else:
        assert r.measured_at == when.replace(microsecond=0)
        assert codec.check(r) == []


@pytest.mark.parametrize(
    ("order", "text", "date", "warned"),
    [
        ("dmy", "13/01/2016", dt.date(2016, 1, 13), False),
        ("dmy", "02/19/2026", dt.date(2026, 2, 19), True),  # impossible as dd/mm: mm/dd
        ("mdy", "02/19/2026", dt.date(2026, 2, 19), False),
        ("mdy", "19/02/2026", dt.date(2026, 2, 19), True),
        ("auto", "19/02/2026", dt.date(2026, 2, 19), False),
        ("auto", "02/19/2026", dt.date(2026, 2, 19), False),
        ("auto", "05/05/2026", dt.date(2026, 5, 5), False),  # the same either way
        ("dmy", "2026/02/19", dt.date(2026, 2, 19), False),  # yyyy first: always y/m/d
    ],
)
def test_date_orders(order: str, text: str, date: dt.date, warned: bool) -> None:
    got, note = parse_date("DT", text, order)
    assert got == date and (note is not None) == warned
    with pytest.raises(AmbiguousDate):
        parse_date("DT", "12/09/2025", "auto")
    with pytest.raises(ValueError):
        parse_date("DT", "31/31/2025", order)
