"""The framer: every frame whole, halved, byte by byte, with garbage between; every byte kept."""

from __future__ import annotations

from chunking import every_chunking, feed_in_pieces
from conftest import EXAMPLE_FRAME, readings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bia_acq.model import Reading
from bia_acq.protocols.base import Framer
from bia_acq.protocols.tanita import TanitaProtocol

codec = TanitaProtocol()
#: line noise between frames: no '{' (a frame start), no '"' (a '"{' starts a quoted SD-card line)
garbage = st.binary(max_size=40).map(lambda b: b.replace(b"{", b"").replace(b'"', b""))


def test_whole_halved_and_byte_by_byte() -> None:
    stream = b"\x00junk" + EXAMPLE_FRAME + b"~~" + EXAMPLE_FRAME
    for cuts in every_chunking(stream):
        chunks = feed_in_pieces(codec.framer(), stream, cuts)
        assert [c.data for c in chunks if c.kind == "frame"] == [EXAMPLE_FRAME, EXAMPLE_FRAME]
        assert b"".join(c.data for c in chunks) == stream


@settings(
    max_examples=150, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(
    st.lists(st.tuples(garbage, readings()), min_size=1, max_size=4),
    garbage,
    st.lists(st.integers(min_value=0, max_value=20000), max_size=30),
)
def test_frames_survive_any_chunking_with_garbage_between(parts, tail, cuts) -> None:
    frames = [codec.encode(r) for _, r in parts]
    stream = b"".join(g + f for (g, _), f in zip(parts, frames, strict=True)) + tail
    chunks = feed_in_pieces(codec.framer(), stream, cuts)
    assert [c.data for c in chunks if c.kind == "frame"] == frames
    assert b"".join(c.data for c in chunks) == stream  # every byte accounted for
    assert [codec.decode(c.data) for c in chunks if c.kind == "frame"] == [r for _, r in parts]


@settings(max_examples=300)
@given(st.binary(max_size=3000), st.lists(st.integers(0, 3000), max_size=20))
def test_arbitrary_bytes_are_all_accounted_for(stream: bytes, cuts: list[int]) -> None:
    framer = Framer(start=b"{", end=b"\r\n", max_len=256)
    chunks = feed_in_pieces(framer, stream, cuts)
    assert b"".join(c.data for c in chunks) == stream
    assert all(len(c.data) <= 256 + 2 or c.kind == "junk" for c in chunks)


def test_truncated_frame_followed_by_a_good_one() -> None:
    half = EXAMPLE_FRAME[: len(EXAMPLE_FRAME) // 2]
    chunks = codec.framer().feed(half + EXAMPLE_FRAME)
    assert [(c.kind, c.data) for c in chunks] == [("truncated", half), ("frame", EXAMPLE_FRAME)]


def test_stale_partial_frame_is_dropped_after_silence() -> None:
    framer = Framer(start=b"{", silence_s=2.0)
    assert framer.feed(b"{0,16,MO", now=100.0) == []
    assert framer.poll(101.0) == []
    stale = framer.poll(102.5)
    assert [c.kind for c in stale] == ["truncated"] and stale[0].data == b"{0,16,MO"
    assert [c.kind for c in framer.feed(EXAMPLE_FRAME, now=103.0)] == ["frame"]


def test_overlong_frame_is_cut_off() -> None:
    framer = Framer(start=b"{", max_len=100)
    chunks = framer.feed(b"{" + b"x" * 200)
    assert [c.kind for c in chunks] == ["truncated"]
    assert [c.kind for c in framer.feed(EXAMPLE_FRAME[:90] + b"\r\n")] == ["frame"]


def test_only_a_date_of_birth_makes_a_line_a_bc601_profile_record() -> None:
    """A measurement frame with a ``DB`` device value that is no date is a frame (found by
    the property above); a PROF*.CSV line (``DB,"31/08/1985"``, no weight) is a record."""
    frame = codec.encode(Reading(device_values={"DB": ""}))
    assert [c.kind for c in codec.framer().feed(frame)] == ["frame"]
    prof = b'{0,16,~1,2,~3,4,MO,"BC-601",DB,"31/08/1985",Bt,0,GE,1,Hm,173.0,AL,2,CS,F4\r\n'
    (chunk,) = codec.framer().feed(prof)
    assert chunk.kind == "junk" and (chunk.reason or "").startswith("record: BC-601 profile")
