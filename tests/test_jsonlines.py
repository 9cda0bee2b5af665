"""JSON-lines codec and the Charder MA801 profile: values, round trips, chunking, fuzzing."""

from __future__ import annotations

import datetime as dt
import json
import math

import pytest
from chunking import every_chunking, feed_in_pieces
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bia_acq.core.estimate import estimate
from bia_acq.drivers import get_profile
from bia_acq.errors import FrameError
from bia_acq.model import Impedance, Reading
from bia_acq.protocols.jsonlines import JsonLinesProtocol

charder = get_profile("charder-ma801").codec()
SEGS = {"RA": "right_arm", "LA": "left_arm", "RL": "right_leg", "LL": "left_leg"}
RECT = JsonLinesProtocol(
    {
        "fields": {
            "subject_id": "id",
            "sex": "sex",
            "age_years": "age",
            "height_cm": {"key": "height_m", "scale": 100.0},
            "weight_kg": "kg",
            "measured_at": "t",
        },
        "sex_values": {"1": "male", "2": "female"},
        "impedance": {
            "form": "rect",
            "resistance": "R_{seg}_{khz}",
            "reactance": "X_{seg}_{khz}",
            "segments": SEGS,
            "frequencies_khz": [5, 50, 250, 1000],
        },
    }
)

MA801_LINE = (
    b'{"Model":"MA801","ID":"A-17","Gender":"M","Age":61,"Height":172.5,"Weight":80.3,'
    b'"Time":"2026-11-03 09:41:00","IRA50":330.0,"PhRA50":6.1,"IRL5":260.0,"PhRL5":2.0,'
    b'"IRW50":560.2,"PhRW50":5.9,"ICW":21.0,"ECW":16.4,"TBW":37.4,"EI":0.439,"Note":[1,2]}\r\n'
)


def test_ma801_line_decodes_with_units_and_signs() -> None:
    r = charder.decode(MA801_LINE)
    assert (r.model, r.subject_id, r.sex, r.age_years) == ("MA801", "A-17", "male", 61)
    assert (r.height_cm, r.weight_kg) == (172.5, 80.3)
    assert r.measured_at == dt.datetime(2026, 11, 3, 9, 41)
    z = {(p.segment, p.freq_khz): p for p in r.impedance}
    ra = z[("right_arm", 50.0)]
    # |Z| 330 ohm at a (positive, capacitive) phase angle of 6.1 degrees
    assert ra.r_ohm == pytest.approx(330.0 * math.cos(math.radians(6.1)))
    assert ra.x_ohm == pytest.approx(-330.0 * math.sin(math.radians(6.1)))
    assert ra.x_ohm < 0 and not ra.magnitude_only
    assert ("whole_body_right", 50.0) in z  # RW is the right hand-to-foot path
    assert r.device_values == {"ICW": 21.0, "ECW": 16.4, "TBW": 37.4, "EI": 0.439, "Note": "[1, 2]"}


def test_magnitude_without_phase_is_marked_magnitude_only() -> None:
    r = charder.decode(b'{"ILA5":281.0}\n')
    assert r.impedance == (Impedance("left_arm", 5.0, 281.0, None, magnitude_only=True),)
    res = estimate([r])
    assert any("magnitudes |Z| without reactance" in n for n in res.notes[0])
    assert {row["fit_status"] for row in res.rows(0)} == {"fewer than 3 frequencies measured"}


@pytest.mark.parametrize(
    ("line", "reason", "offset"),
    [
        (b'{"Age":61,"Age":62}\n', "appears twice", 10),
        (b'{"Age":"old"}\n', "must be a number", 1),
        (b'{"Gender":"X"}\n', "unknown sex code", 1),
        (b'{"IRA5":NaN}\n', "not JSON", 0),
        (b'{"Time":"03/11/2026"}\n', "not a date and time", 1),
        (b"[1,2]\n", "not an object", 0),
        (b'{"Age":61\n', "not JSON", 9),
    ],
)
def test_errors_say_what_and_where(line: bytes, reason: str, offset: int) -> None:
    with pytest.raises(FrameError) as info:
        charder.decode(line)
    assert reason in info.value.reason and info.value.offset == offset


finite = st.floats(min_value=0.5, max_value=5000, allow_nan=False)
scalars = st.one_of(
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10),
)


@st.composite
def rect_readings(draw: st.DrawFn) -> Reading:
    segs = draw(st.lists(st.sampled_from(sorted(SEGS.values())), unique=True))
    freqs = draw(st.lists(st.sampled_from([5.0, 50.0, 250.0, 1000.0]), unique=True, min_size=1))
    pts = tuple(
        Impedance(s, f, draw(finite), draw(st.one_of(st.none(), finite.map(lambda v: -v))))
        for s in segs
        for f in freqs
    )
    keys = st.text(min_size=1, max_size=6).filter(
        lambda k: k not in {"id", "sex", "age", "height_m", "kg", "t"} and "_" not in k
    )
    return Reading(
        subject_id=draw(st.one_of(st.none(), st.text(max_size=12))),
        sex=draw(st.sampled_from([None, "male", "female"])),
        age_years=draw(st.one_of(st.none(), st.integers(0, 120))),
        height_cm=draw(st.one_of(st.none(), st.integers(500, 2500).map(lambda v: v / 10))),
        weight_kg=draw(st.one_of(st.none(), finite)),
        measured_at=draw(st.one_of(st.none(), st.datetimes())),
        impedance=pts,
        device_values=draw(st.dictionaries(keys, scalars, max_size=5)),
    )


@settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow])
@given(rect_readings())
def test_round_trip_rect(reading: Reading) -> None:
    back = RECT.decode(RECT.encode(reading))
    # height goes through a unit conversion (m on the wire)
    assert back.height_cm == pytest.approx(reading.height_cm)
    assert back == Reading(**{**reading.__dict__, "height_cm": back.height_cm})


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(rect_readings())
def test_round_trip_polar_within_float_error(reading: Reading) -> None:
    codec = JsonLinesProtocol(
        {**charder.options, "impedance": {**charder.options["impedance"], "decimals": None}}
    )
    pts = tuple(
        Impedance(
            {"right_arm": "right_arm", "left_arm": "left_arm"}.get(z.segment, "right_leg"),
            50.0,
            z.r_ohm,
            z.x_ohm if z.x_ohm is not None else -1.0,
        )
        for z in reading.impedance[:1]
    )
    r = Reading(subject_id=reading.subject_id, impedance=pts)
    back = codec.decode(codec.encode(r))
    assert back.subject_id == r.subject_id
    assert len(back.impedance) == len(r.impedance)
    for a, b in zip(back.impedance, r.impedance, strict=True):
        assert (a.segment, a.freq_khz) == (b.segment, b.freq_khz)
        assert a.r_ohm == pytest.approx(b.r_ohm, rel=1e-9)
        assert a.x_ohm == pytest.approx(b.x_ohm, rel=1e-9)


def test_every_chunking_with_junk_lines() -> None:
    stream = b"\r\n" + MA801_LINE + b"booting v1.2\n" + MA801_LINE
    for cuts in every_chunking(stream):
        chunks = feed_in_pieces(charder.framer(), stream, cuts)
        assert b"".join(c.data for c in chunks) == stream
        assert [c.kind for c in chunks] == ["junk", "frame", "frame", "frame"]
        with pytest.raises(FrameError):
            charder.decode(chunks[2].data)  # the banner is a line that is not JSON: rejected


@settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(rect_readings(), min_size=1, max_size=3),
    st.lists(st.integers(0, 5000), max_size=20),
)
def test_frames_survive_any_chunking(readings: list[Reading], cuts: list[int]) -> None:
    frames = [RECT.encode(r) for r in readings]
    stream = b"".join(frames)
    chunks = feed_in_pieces(RECT.framer(), stream, cuts)
    assert [c.data for c in chunks] == frames
    assert [RECT.decode(c.data).subject_id for c in chunks] == [r.subject_id for r in readings]


@settings(max_examples=400)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_only_frame_errors_and_every_byte_kept(data: bytes) -> None:
    for codec in (charder, RECT):
        chunks = feed_in_pieces(codec.framer(), data, [len(data) // 3])
        assert b"".join(c.data for c in chunks) == data
        for c in chunks:
            try:
                codec.decode(c.data)
            except FrameError as exc:
                assert exc.reason and exc.offset is not None and exc.offset >= 0


@settings(max_examples=300)
@given(
    st.dictionaries(
        st.sampled_from(["ID", "Gender", "Age", "Height", "Time", "IRA5", "PhRA5", "x"]),
        st.one_of(st.none(), st.booleans(), scalars, st.lists(st.integers(), max_size=2)),
    )
)
def test_json_objects_with_odd_values_only_frame_errors(obj: dict[str, object]) -> None:
    line = json.dumps(obj).encode() + b"\n"
    try:
        charder.decode(line)
    except FrameError as exc:
        assert exc.reason


def test_device_values_can_be_renamed_and_converted() -> None:
    codec = JsonLinesProtocol({"values": {"ECW": {"key": "ecw_ml", "scale": 0.001}}})
    r = codec.decode(b'{"ecw_ml":13700,"TBW":33.6}\n')
    assert r.device_values == {"ECW": pytest.approx(13.7), "TBW": 33.6}
    assert json.loads(codec.encode(r)) == {"ecw_ml": pytest.approx(13700.0), "TBW": 33.6}
    with pytest.raises(FrameError, match="ecw_ml must be a number"):
        codec.decode(b'{"ecw_ml":"lots"}\n')
