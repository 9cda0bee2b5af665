"""Text protocols frame the same whatever the line ends, a '}' after the checksum, a
byte-order mark or spreadsheet quotes; a live serial line (a real pty) and a file agree."""

from __future__ import annotations

import os
import time
import tty
from pathlib import Path

import pytest
from chunking import feed_in_pieces
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bia_acq.drivers import SerialSettings, get_profile
from bia_acq.link import open_serial
from bia_acq.protocols.base import Chunk, Framer, is_noise

REAL = Path(__file__).parent / "data" / "real"
bc601 = get_profile("tanita-bc601").codec()
mc780 = get_profile("tanita-mc780").codec()
charder = get_profile("charder-ma801").codec()
#: five real BC-601 lines without their line ends ('}' after the checksum kept)
LINES = (REAL / "tanita-bc601-sd-card.txt").read_bytes().splitlines()
ENDS = [b"\r\n", b"\n", b"\r"]


def readings(codec: object, stream: bytes, cuts: list[int] = ()) -> list[object]:  # type: ignore[assignment]
    chunks = feed_in_pieces(codec.framer(), stream, list(cuts))  # type: ignore[attr-defined]
    assert b"".join(c.data for c in chunks) == stream  # every byte in exactly one chunk
    header = [c for c in chunks if (c.reason or "").startswith("header:")]  # once per file
    assert len(header) <= 1
    assert all(c.kind == "frame" or is_noise(c.data) or c in header for c in chunks), chunks
    return [codec.decode(c.context + c.data) for c in chunks if c.kind == "frame"]  # type: ignore[attr-defined]


EXPECTED = readings(bc601, b"".join(line + b"\r\n" for line in LINES))


@settings(max_examples=60)
@given(
    st.lists(st.sampled_from(ENDS), min_size=5, max_size=5),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.lists(st.integers(0, 2000), max_size=8),
)
# a read that ends between a quoted row's '"{' and its control key (found by this test)
@example([b"\n", b"\n", b"\n", b"\r\n", b"\r\n"], False, True, True, [776])
def test_any_line_ends_brace_bom_and_quotes_give_the_same_readings(
    ends: list[bytes], brace: bool, bom: bool, quoted: bool, cuts: list[int]
) -> None:
    lines = [line if brace else line.rstrip(b"}") for line in LINES]
    if quoted:  # a spreadsheet's CSV: each row in quotes, inner quotes doubled
        lines = [b'"' + line.replace(b'"', b'""') + b'"' for line in lines]
    stream = (b"\xef\xbb\xbf" if bom else b"") + b"".join(
        line + end for line, end in zip(lines, ends, strict=True)
    )
    assert readings(bc601, stream, cuts) == EXPECTED


def test_frames_glued_without_line_ends_still_decode() -> None:
    assert readings(bc601, b"".join(LINES)) == EXPECTED


def test_a_cr_ended_frame_comes_out_when_the_line_goes_quiet() -> None:
    framer = bc601.framer()
    assert framer.feed(LINES[0] + b"\r", now=10.0) == []  # a LF may still follow
    assert framer.poll(10.1) == []  # the LF of a CR LF may still be on its way
    (chunk,) = framer.poll(10.3)  # nothing more for a while: the CR ended it
    assert chunk.kind == "frame" and chunk.data == LINES[0] + b"\r"
    # a LF that does follow, late, belongs to nothing: noise, never an error
    late = framer.feed(b"\n" + LINES[1] + b"\r\n", now=10.4)
    assert [c.kind for c in late] == ["junk", "frame"] and is_noise(late[0].data)


def test_json_lines_take_any_line_end() -> None:
    line = (REAL / "charder-ma801-record.jsonl").read_bytes().rstrip(b"\r\n")
    for end in ENDS:
        assert len(readings(charder, (line + end) * 3)) == 3


@settings(max_examples=200)
@given(st.binary(max_size=600), st.lists(st.integers(0, 600), max_size=12))
def test_any_bytes_are_accounted_for_in_line_mode(stream: bytes, cuts: list[int]) -> None:
    for framer in (Framer(start=b"{", max_len=128), Framer(max_len=128), bc601.framer()):
        chunks: list[Chunk] = feed_in_pieces(framer, stream, cuts)
        assert b"".join(c.data for c in chunks) == stream


def test_a_live_serial_line_and_a_file_give_the_same_frames(tmp_path: Path) -> None:
    """The MC-780 capture, sent through a real pty (opened by pyserial) in pieces with
    pauses, LF-only, frames exactly as the same bytes read from a file."""
    frame = (REAL / "tanita-mc780-pc-mode.txt").read_bytes().rstrip(b"\r\n")
    stream = b"\x00" + (frame + b"\n") * 2 + frame + b"\r"  # the last one CR-ended
    master, slave = os.openpty()
    tty.setraw(slave)
    port = open_serial(os.ttyname(slave), SerialSettings(), timeout_s=0.05)
    os.close(slave)
    framer = mc780.framer()
    got: list[Chunk] = []
    try:
        for i in range(0, len(stream), 97):  # pieces as a USB adapter hands them over
            os.write(master, stream[i : i + 97])
            time.sleep(0.005)
        deadline = time.monotonic() + 30  # a generous bound, not a speed check
        while sum(c.kind == "frame" for c in got) < 3 and time.monotonic() < deadline:
            data = port.read(4096)
            now = time.monotonic()
            got += framer.feed(data, now) if data else framer.poll(now)
    finally:
        port.close()
        os.close(master)
    from_file = feed_in_pieces(mc780.framer(), stream, [])
    assert [c.data for c in got if c.kind == "frame"] == [
        c.data for c in from_file if c.kind == "frame"
    ]
    assert [mc780.decode(c.data) for c in got if c.kind == "frame"] == readings(mc780, stream)


@pytest.mark.parametrize("end", ENDS)
def test_lookinbody_rows_take_any_line_end(end: bytes) -> None:
    codec = get_profile("inbody270-site", [REAL / "site-profiles"]).codec()
    text = (REAL / "inbody270-lookinbody-site-export.csv").read_bytes()
    head, row = text.split(b"\r\n")[:2]
    assert len(readings(codec, head + end + row + end + row + end)) == 2


def test_a_utf16_tab_separated_export_reads_as_its_csv() -> None:
    """Excel's "Unicode text": UTF-16 LE with a byte-order mark, cells split by tabs."""
    codec = get_profile("inbody270-site", [REAL / "site-profiles"]).codec()
    text = (REAL / "inbody270-lookinbody-site-export.csv").read_text("utf-8-sig")
    wide = ("\ufeff" + text.replace(",", "\t")).encode("utf-16-le")
    assert readings(codec, wide) == readings(codec, text.encode())
    assert readings(codec, wide, list(range(0, len(wide), 7))) == readings(codec, text.encode())


@settings(max_examples=200)
@given(st.binary(max_size=400), st.lists(st.integers(0, 400), max_size=8))
def test_utf16_and_quoted_inputs_only_raise_frame_errors(data: bytes, cuts: list[int]) -> None:
    """Arbitrary bytes after a UTF-16 byte-order mark (LookinBody) or inside spreadsheet
    quotes (Tanita): every byte accounted for, decoding fails only with FrameError."""
    from bia_acq.errors import FrameError

    lb = get_profile("inbody-lookinbody-csv").codec()
    for codec, stream in ((lb, b"\xff\xfe" + data), (bc601, b'"{0,16,' + data + b'"\r\n')):
        chunks = feed_in_pieces(codec.framer(), stream, cuts)
        assert b"".join(c.data for c in chunks) == stream
        for c in chunks:
            if c.kind == "frame":
                try:
                    codec.decode(c.context + c.data)
                except FrameError as exc:
                    assert exc.reason and exc.offset is not None
