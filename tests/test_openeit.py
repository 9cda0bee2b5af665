"""OpenEIT-style sweeps: one Reading per sweep, banners kept as junk, magnitudes only."""

from __future__ import annotations

import pytest
from chunking import every_chunking, feed_in_pieces
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bia_acq.core.estimate import estimate
from bia_acq.drivers import get_profile
from bia_acq.errors import FrameError
from bia_acq.model import Impedance, Reading
from bia_acq.protocols.openeit import OPENEIT_FREQS_HZ, OpenEITProtocol

codec = get_profile("openeit-sweep").codec()
BANNER = b"Spectra EIT v2.1\r\nA) Time series\r\nB) Bioimpedance Spectroscopy\r\n> b\r\n"
SWEEP = b"".join(
    f"magnitudes:{f};{600 - i * 9.5}\r\n".encode() for i, f in enumerate(OPENEIT_FREQS_HZ)
)


def test_sweep_decodes_to_fifteen_magnitudes() -> None:
    r = codec.decode(SWEEP)
    assert r.model == "OpenEIT"
    assert [z.freq_khz for z in r.impedance] == [f / 1000 for f in OPENEIT_FREQS_HZ]
    assert r.impedance[0] == Impedance("whole_body_right", 0.2, 600.0, None, magnitude_only=True)
    assert r.impedance[-1].r_ohm == 600 - 14 * 9.5
    assert r.to_json()["impedance"][0]["magnitude_only"] is True  # type: ignore[index]


def test_hanai_bis_skips_magnitudes_with_a_reason() -> None:
    res = estimate([codec.decode(SWEEP)])
    assert any("without reactance" in n and "hanai-bis" in n for n in res.notes[0])
    wb = res.rows(0)[-1]
    assert wb["ecw_tbw_ratio"] is None and wb["classification"] == "not applicable"


def test_banners_are_junk_and_sweeps_are_frames_in_every_chunking() -> None:
    stream = BANNER + SWEEP + b"\r\n" + SWEEP
    for cuts in every_chunking(stream):
        chunks = feed_in_pieces(codec.framer(), stream, cuts)
        assert b"".join(c.data for c in chunks) == stream
        kinds = [c.kind for c in chunks]
        assert kinds == ["junk"] * 4 + ["frame", "junk", "frame"]
        assert "banner" in (chunks[0].reason or "")


def test_interrupted_and_restarted_sweeps_are_truncated() -> None:
    half = SWEEP[: SWEEP.index(b"magnitudes:10000")]
    chunks = codec.framer().feed(half + SWEEP + half + b"RESET\r\n")
    assert [(c.kind, c.data) for c in chunks] == [
        ("truncated", half),
        ("frame", SWEEP),
        ("truncated", half),
        ("junk", b"RESET\r\n"),
    ]
    assert "new sweep" in (chunks[0].reason or "")


@pytest.mark.parametrize(
    ("line", "reason", "offset"),
    [
        (b"magnitudes:abc;5\n", "frequency", 11),
        (b"magnitudes:200;-5\n", "not a positive number", 15),
        (b"magnitudes:200;5;6\n", "expected", 11),
        (b"magnitudes:500;5\nmagnitudes:200;5\n", "does not rise", 17),
    ],
)
def test_errors_say_where(line: bytes, reason: str, offset: int) -> None:
    with pytest.raises(FrameError) as info:
        codec.decode(line)
    assert reason in info.value.reason and info.value.offset == offset


@st.composite
def sweeps(draw: st.DrawFn) -> Reading:
    hz = sorted(draw(st.lists(st.integers(1, 70000), unique=True, min_size=1, max_size=20)))
    mags = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False)
    return Reading(
        model="OpenEIT",
        impedance=tuple(
            Impedance("whole_body_right", f / 1000, draw(mags), None, magnitude_only=True)
            for f in [*hz[:-1], 70000]
            if f <= 70000
        ),
    )


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(sweeps())
def test_round_trip(reading: Reading) -> None:
    assert codec.decode(codec.encode(reading)) == reading


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(sweeps(), min_size=1, max_size=3), st.lists(st.integers(0, 3000), max_size=25))
def test_sweeps_survive_any_chunking(readings: list[Reading], cuts: list[int]) -> None:
    frames = [codec.encode(r) for r in readings]
    stream = BANNER + b"".join(frames)
    chunks = feed_in_pieces(codec.framer(), stream, cuts)
    assert b"".join(c.data for c in chunks) == stream
    assert [codec.decode(c.data) for c in chunks if c.kind == "frame"] == readings


@settings(max_examples=400)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_only_frame_errors_every_byte_kept(data: bytes) -> None:
    chunks = feed_in_pieces(OpenEITProtocol().framer(), data, [len(data) // 2])
    assert b"".join(c.data for c in chunks) == data
    for c in chunks:
        try:
            codec.decode(c.data)
        except FrameError as exc:
            assert exc.reason and exc.offset is not None and 0 <= exc.offset <= len(c.data)


@settings(max_examples=300)
@given(st.lists(st.sampled_from(list(SWEEP + b"x-e!\n")), max_size=400).map(bytes))
def test_sweep_like_bytes_only_frame_errors(data: bytes) -> None:
    chunks = feed_in_pieces(codec.framer(), data, [])
    assert b"".join(c.data for c in chunks) == data
    for c in chunks:
        try:
            codec.decode(c.data)
        except FrameError as exc:
            assert exc.reason
