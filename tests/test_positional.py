"""Positional CSV codec (BC-418, TBF-310): values, errors, round trips, chunking, fuzzing."""

from __future__ import annotations

import datetime as dt

import pytest
from chunking import every_chunking, feed_in_pieces
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bia_acq.drivers import Profile, SerialSettings, get_profile
from bia_acq.errors import ConfigError, FrameError
from bia_acq.model import Impedance, Reading
from bia_acq.protocols.positional import PositionalProtocol

BC418 = get_profile("tanita-bc418").codec()
TBF310 = get_profile("tanita-tbf310").codec()
assert isinstance(BC418, PositionalProtocol) and isinstance(TBF310, PositionalProtocol)

# a BC-418 PC-mode line in the documented column order (values invented)
BC418_LINE = (
    b"03/11/2026,09:41,0,1,175.0,72.4,18.2,13.2,59.2,43.3,41,23.6,7280,512,"
    b"243,248,301,305,17.1,2.1,10.2,9.7,17.5,2.2,10.3,9.8,15.9,0.6,3.2,3.0,"
    b"16.4,0.6,3.1,2.9,19.3,7.7,32.4,30.8\r\n"
)


def test_bc418_line_decodes_by_position() -> None:
    r = BC418.decode(BC418_LINE)
    assert r.measured_at == dt.datetime(2026, 11, 3, 9, 41)
    assert (r.sex, r.height_cm, r.weight_kg, r.age_years) == ("male", 175.0, 72.4, 41)
    assert r.impedance == (
        Impedance("left_arm", 50.0, 305.0, magnitude_only=True),
        Impedance("left_leg", 50.0, 248.0, magnitude_only=True),
        Impedance("right_arm", 50.0, 301.0, magnitude_only=True),
        Impedance("right_leg", 50.0, 243.0, magnitude_only=True),
    )
    v = r.device_values
    assert (v["Bt"], v["FW"], v["wW"], v["Z"], v["rb"]) == (0, 18.2, 43.3, 512, 7280)
    assert (v["FR"], v["mT"], v["Ml"]) == (17.1, 30.8, 3.1)


def test_tbf310_line_with_quotes_and_an_unmeasured_field() -> None:
    r = TBF310.decode(b'"0","2",162.5,61.0,0,30.1,18.4,42.6,31.2,52,23.1,5610\r\n')
    assert (r.sex, r.age_years, r.weight_kg) == ("female", 52, 61.0)
    assert r.impedance == ()  # impedance 0: not measured
    assert r.device_values["FW"] == 30.1


@pytest.mark.parametrize(
    ("line", "reason", "offset"),
    [
        (b"0,1,175.0,72.4,512\r\n", "expected 12 fields, got 5", 18),
        (b"0,1,175.0,72.4,512,1,2,3,4,5,6,7,8\r\n", "expected 12 fields, got 13", 33),
        (b"0,3,175.0,72.4,512,1,2,3,4,5,6,7\r\n", "neither 1 (male) nor 2", 2),
        (b"0,1,17x.0,72.4,512,1,2,3,4,5,6,7\r\n", "height_cm = '17x.0' is not a number", 4),
        (b"0,1,175.0,72.4,512,1,2,3,4,4.5,6,7\r\n", "not a whole number of years", 27),
        (b"0,1,175.0,72.4,\xff12,1,2,3,4,5,6,7\r\n", "0xFF is not printable", 15),
        (b'0,1,175.0,72.4,5"12,1,2,3,4,5,6,7\r\n', "stray double quote", 16),
    ],
)
def test_errors_say_what_and_where(line: bytes, reason: str, offset: int) -> None:
    with pytest.raises(FrameError) as info:
        TBF310.decode(line)
    assert reason in info.value.reason and info.value.offset == offset


def test_an_odd_device_clock_is_kept_not_rejected() -> None:
    r = BC418.decode(BC418_LINE.replace(b"03/11/2026", b"00/00/0000", 1))
    assert r.measured_at is None and r.device_values["date"] == "00/00/0000"


def test_bad_column_maps_are_config_errors() -> None:
    for cols in ([], ["z:elbow@50"], ["r:right_arm@abc"], [3]):
        p = Profile("x", "", "positional", SerialSettings(), {"columns": cols}, source="x.yaml")
        with pytest.raises(ConfigError) as info:
            p.codec()
        assert "x.yaml" in str(info.value) and "options" in str(info.value)


tenth = st.integers(min_value=1, max_value=30000).map(lambda v: v / 10)


@st.composite
def readings_for(draw: st.DrawFn, codec: PositionalProtocol) -> Reading:
    kinds = {c.kind for c in codec.columns}
    fields: dict[str, object] = {}
    if "date" in kinds:
        fields["measured_at"] = draw(
            st.one_of(
                st.none(),
                st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2099, 12, 31)).map(
                    lambda t: t.replace(second=0, microsecond=0)
                ),
            )
        )
    for k in ("height_cm", "weight_kg"):
        fields[k] = draw(st.one_of(st.none(), tenth))
    fields["sex"] = draw(st.sampled_from([None, "male", "female"]))
    fields["age_years"] = draw(st.one_of(st.none(), st.integers(0, 120)))
    points = []
    values: dict[str, float | int | str] = {}
    for c in codec.columns:
        if c.kind == "z" and draw(st.booleans()):
            points.append(Impedance(c.segment, c.freq_khz, draw(tenth), magnitude_only=True))
        elif c.kind == "value" and draw(st.booleans()):
            values[c.name] = draw(st.one_of(tenth, st.integers(-99, 99999)))
    return Reading(impedance=tuple(points), device_values=values, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("codec", [BC418, TBF310], ids=["bc418", "tbf310"])
@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_round_trip(codec: PositionalProtocol, data: st.DataObject) -> None:
    r = data.draw(readings_for(codec))
    assert codec.decode(codec.encode(r)) == r


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), cuts=st.lists(st.integers(0, 5000), max_size=30))
def test_frames_survive_any_chunking(data: st.DataObject, cuts: list[int]) -> None:
    rs = data.draw(st.lists(readings_for(BC418), min_size=1, max_size=4))
    frames = [BC418.encode(r) for r in rs]
    stream = b"".join(frames)
    chunks = feed_in_pieces(BC418.framer(), stream, cuts)
    assert [c.data for c in chunks if c.kind == "frame"] == frames
    assert b"".join(c.data for c in chunks) == stream
    assert [BC418.decode(c.data) for c in chunks if c.kind == "frame"] == rs


def test_whole_halved_and_byte_by_byte() -> None:
    stream = b"\r\n" + BC418_LINE + b"noise\r\n" + BC418_LINE
    for cuts in every_chunking(stream):
        chunks = feed_in_pieces(BC418.framer(), stream, cuts)
        assert [c.data for c in chunks if c.kind == "frame"] == [
            BC418_LINE,
            b"noise\r\n",
            BC418_LINE,
        ]
        assert b"".join(c.data for c in chunks) == stream


@pytest.mark.parametrize("codec", [BC418, TBF310], ids=["bc418", "tbf310"])
@settings(max_examples=200)
@given(stream=st.binary(max_size=600), cuts=st.lists(st.integers(0, 600), max_size=10))
def test_fuzz_only_frame_errors_and_every_byte_accounted_for(
    codec: PositionalProtocol, stream: bytes, cuts: list[int]
) -> None:
    chunks = feed_in_pieces(codec.framer(), stream, cuts)
    assert b"".join(c.data for c in chunks) == stream
    for c in chunks:
        if c.kind == "frame":
            try:
                codec.decode(c.data)
            except FrameError as exc:
                assert exc.reason and exc.offset is not None
