"""Tanita key/value codec: the published example, round trips, chunking and fuzzing."""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest
from conftest import EXAMPLE_FRAME, readings
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bia_acq.drivers import get_profile
from bia_acq.errors import FrameError
from bia_acq.model import Impedance, Reading
from bia_acq.protocols.tanita import TanitaProtocol, checksum

codec = TanitaProtocol()


def test_example_frame_decodes_to_the_published_numbers() -> None:
    r = codec.decode(EXAMPLE_FRAME)
    assert r.model == "MC-780"
    assert r.subject_id == "0000000000000042"
    assert r.measured_at == dt.datetime(2026, 11, 3, 9, 41)
    assert (r.sex, r.age_years, r.height_cm, r.weight_kg) == ("female", 52, 162.0, 71.4)
    assert (
        r.device_values["wO"] == 13.7
        and r.device_values["wW"] == 33.6
        and r.device_values["wo"] == 40.8
    )
    assert r.device_values["pr"] == -6.3  # phase is device-computed, kept signed
    z = {(p.segment, p.freq_khz): (p.r_ohm, p.x_ohm) for p in r.impedance}
    assert len(z) == 12
    assert z[("right_leg", 5.0)] == (262.0, -18.1)
    assert z[("right_leg", 50.0)] == (231.5, -24.7)
    assert z[("left_leg", 250.0)] == (212.8, -18.5)
    assert z[("right_arm", 50.0)] == (329.0, -36.1)
    assert z[("left_arm", 250.0)] == (303.5, -34.8)


def test_checksum_of_the_example_is_a7() -> None:
    body = EXAMPLE_FRAME[: EXAMPLE_FRAME.rindex(b"CS,")]
    assert checksum(body) == "A7"


@pytest.mark.parametrize("pos", range(len(EXAMPLE_FRAME) - 2))  # all but the CR LF end
def test_any_single_changed_byte_is_rejected(pos: int) -> None:
    for delta in (1, 0x20, 0x80):
        frame = bytearray(EXAMPLE_FRAME)
        frame[pos] = (frame[pos] + delta) % 256
        with pytest.raises(FrameError) as info:
            codec.decode(bytes(frame))
        assert info.value.offset is not None and 0 <= info.value.offset <= len(frame)


def test_error_says_where() -> None:
    bad = EXAMPLE_FRAME.replace(b"Hm,162.0", b"Hm,16x.0")
    with pytest.raises(FrameError) as info:
        codec.decode(bad)
    assert "checksum" in info.value.reason
    body = bad[: bad.rindex(b",CS,") + 1]
    fixed = body + b"CS," + checksum(body).encode() + b"\r\n"
    with pytest.raises(FrameError) as info:
        codec.decode(fixed)
    assert info.value.offset == fixed.index(b"16x.0")
    assert "not a number" in info.value.reason


def test_zero_means_not_measured_and_brace_after_checksum_is_accepted() -> None:
    body = b'{0,16,~0,1,MO,"MC-780",Wk,70.5,aR,0.0,cR,0.0,RR,231.5,XR,-24.7,'
    frame = body + b"CS," + checksum(body).encode() + b"}\r\n"
    r = codec.decode(frame)
    assert r.weight_kg == 70.5
    assert r.impedance == (Impedance("right_leg", 50.0, 231.5, -24.7),)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("Da", "03/11/2026", dt.datetime(2026, 11, 3, 9, 41)),
        ("DT", "2026/11/03", dt.datetime(2026, 11, 3, 9, 41)),
        ("DT", "03/11/2026", dt.datetime(2026, 11, 3, 9, 41)),
        ("DA", "26/11/03", dt.datetime(2026, 11, 3, 9, 41)),
    ],
)
def test_date_key_variants(key: str, value: str, expected: dt.datetime) -> None:
    body = f'{{0,16,{key},"{value}",TI,"09:41",'.encode()
    r = codec.decode(body + b"CS," + checksum(body).encode() + b"\r\n")
    assert r.measured_at == expected


def test_unknown_headers_are_kept_case_sensitive() -> None:
    body = b'{0,16,FW,34.1,fW,24.3,Zz,"hello",'
    r = codec.decode(body + b"CS," + checksum(body).encode() + b"\r\n")
    assert r.device_values == {"FW": 34.1, "fW": 24.3, "Zz": "hello"}


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(readings())
def test_round_trip(reading: Reading) -> None:
    assert codec.decode(codec.encode(reading)) == reading


def test_round_trip_of_the_example() -> None:
    r = codec.decode(EXAMPLE_FRAME)
    assert codec.decode(codec.encode(r)) == r


@settings(max_examples=500)
@given(st.binary(max_size=2000))
@example(b"{")
@example(b"{,CS,00\r\n")
@example(b'{"\r\n')
def test_arbitrary_bytes_never_raise_anything_but_frame_error(data: bytes) -> None:
    try:
        codec.decode(data)
    except FrameError as exc:
        assert exc.reason


@settings(max_examples=300)
@given(st.lists(st.sampled_from(list(EXAMPLE_FRAME)), max_size=800).map(bytes))
def test_frame_like_bytes_never_raise_anything_but_frame_error(data: bytes) -> None:
    """Bytes drawn from a real frame's alphabet reach deeper into the parser."""
    body = b"{" + data.replace(b"{", b"")
    for frame in (body + b"\r\n", body + b",CS," + checksum(body + b",").encode() + b"\r\n"):
        with contextlib.suppress(FrameError):
            codec.decode(frame)


def test_profile_codec_sends_unmeasured_frequencies_as_zero() -> None:
    mc780 = get_profile("tanita-mc780").codec()
    r = Reading(impedance=(Impedance("right_arm", 50.0, 329.0, -36.1),))
    frame = mc780.encode(r)
    assert b"ar,0.0," in frame and b"Lr,0.0," in frame and b"ir,0.0," in frame
    assert mc780.decode(frame).impedance == r.impedance
