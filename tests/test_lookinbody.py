"""LookinBody CSV export codec (InBody): columns, units, chunking, fuzzing."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pytest
from chunking import every_chunking, feed_in_pieces
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bia_acq.core.estimate import estimate
from bia_acq.drivers import get_profile
from bia_acq.errors import FrameError
from bia_acq.model import Impedance, Reading

codec = get_profile("inbody-lookinbody-csv").codec()
#: synthetic export in the documented column layout (values invented)
EXPORT = (Path(__file__).parent / "data" / "lookinbody-export.csv").read_bytes()
HEADER, ROW1, ROW2 = (line + b"\n" for line in EXPORT.split(b"\n")[:3])


def test_export_row_decodes_to_segmental_impedance_and_device_water() -> None:
    r = codec.decode(HEADER + ROW1)
    assert (r.model, r.subject_id, r.sex, r.age_years) == ("InBody", "0000000042", "female", 52)
    assert (r.height_cm, r.weight_kg) == (162.0, 71.4)
    assert r.measured_at == dt.datetime(2026, 11, 3, 9, 41, 12)
    assert r.device_values["ECW/TBW(Total)"] == 0.408 and r.device_values["ECW/TBW(TR)"] == 0.405
    assert r.device_values["ICW"] == 19.9 and r.device_values["50kHz-RA Phase Angle"] == 6.0
    z = {(p.segment, p.freq_khz): p for p in r.impedance}
    assert len(z) == 30  # 5 segments x 6 frequencies
    ra50 = z[("right_arm", 50.0)]  # |Z| 338.2, Xc 35.5 -> R = sqrt(|Z|^2 - Xc^2), X = -Xc
    assert ra50.x_ohm == -35.5 and ra50.r_ohm == pytest.approx(math.sqrt(338.2**2 - 35.5**2))
    assert z[("trunk", 1000.0)] == Impedance("trunk", 1000.0, 22.8, None, magnitude_only=True)
    assert z[("left_leg", 1.0)].magnitude_only


def test_inbody_segments_go_through_the_core() -> None:
    res = estimate([codec.decode(HEADER + ROW1)])
    rows = {row["segment"]: row for row in res.rows(0)}
    for seg in ("trunk", "right_leg"):  # fitted; three complex points earn no label (issue 12)
        assert rows[seg]["fit_grade"] in ("good", "fair") and rows[seg]["r0_ohm"] is not None
        assert rows[seg]["classification"] == "not applicable"
    assert any("magnitudes |Z| without reactance" in n for n in res.notes[0])  # 1/500/1000 kHz


def test_every_chunking_journals_the_header_once_and_rows_carry_it() -> None:
    stream = b"\xef\xbb\xbf" + EXPORT + b"\r\n"
    for cuts in every_chunking(stream):
        chunks = feed_in_pieces(codec.framer(), stream, cuts)
        assert b"".join(c.data for c in chunks) == stream  # every byte once: the header too
        assert [c.kind for c in chunks] == ["junk", "frame", "frame", "junk"]
        assert chunks[0].data == b"\xef\xbb\xbf" + HEADER and chunks[0].reason.startswith("header:")
        frames = [c for c in chunks if c.kind == "frame"]
        assert [c.data for c in frames] == [ROW1, ROW2]
        assert all(c.context == chunks[0].data for c in frames)
    assert codec.decode(frames[1].context + frames[1].data).subject_id == "0000000043"


def test_last_row_without_line_end_is_a_frame_at_end_of_file() -> None:
    chunks = feed_in_pieces(codec.framer(), HEADER + ROW1.rstrip(b"\r\n"), [])
    assert [c.kind for c in chunks] == ["junk", "frame"]
    assert codec.decode(chunks[1].context + chunks[1].data).subject_id == "0000000042"


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (ROW1.replace(b",F,", b",X,"), "unknown sex"),
        (ROW1.replace(b"2026.11.03 09:41:12", b"yesterday"), "not a date and time"),
        (ROW1.replace(b",338.2,", b",abc,"), "not a non-negative number"),
        (ROW1.replace(b",52,", b",52,1,"), "cells"),
    ],
)
def test_errors_point_at_the_cell(row: bytes, reason: str) -> None:
    with pytest.raises(FrameError) as info:
        codec.decode(HEADER + row)
    assert reason in info.value.reason
    assert info.value.offset is not None and len(HEADER) <= info.value.offset < len(HEADER + row)


def test_a_negative_reactance_is_an_inductive_point_not_an_error() -> None:
    # a trunk at 5 kHz reads a reactance of a few tenths of an ohm, of either sign (the
    # simulator's electrode effects wrote "-0.1" in 1 % of rows, which were rejected)
    head = [c.strip() for c in HEADER.decode().rstrip("\r\n").split(",")]
    cells = ROW1.decode().rstrip("\r\n").split(",")
    k = next(i for i, c in enumerate(head) if c.endswith("5kHz-TR Reactance"))
    cells[k] = "-0.4"
    r = codec.decode(HEADER + ",".join(cells).encode() + b"\n")
    p = next(p for p in r.impedance if (p.segment, p.freq_khz) == ("trunk", 5.0))
    assert p.x_ohm == 0.4 and not p.magnitude_only
    cells[k] = str(1e6)  # but never larger than |Z|
    with pytest.raises(FrameError, match="exceeds impedance"):
        codec.decode(HEADER + ",".join(cells).encode() + b"\n")


mag = st.integers(10, 20000).map(lambda v: v / 10)


@st.composite
def inbody_readings(draw: st.DrawFn) -> Reading:
    segs = draw(
        st.lists(
            st.sampled_from(["right_arm", "left_arm", "trunk", "right_leg", "left_leg"]),
            unique=True,
        )
    )
    pts = []
    for s in segs:
        for f in draw(
            st.lists(st.sampled_from([1.0, 5.0, 50.0, 250.0, 500.0, 1000.0]), unique=True)
        ):
            if draw(st.booleans()):
                pts.append(Impedance(s, f, draw(mag), None, magnitude_only=True))
            else:
                pts.append(Impedance(s, f, draw(mag), -draw(mag)))
    return Reading(
        model="InBody",
        subject_id=draw(
            st.one_of(
                st.text(min_size=1, max_size=10).filter(
                    # "-" is the export's empty cell: no ID (found by this test)
                    lambda t: t.strip() == t and "\n" not in t and "\r" not in t and t != "-"
                ),
            )
        ),
        sex=draw(st.sampled_from([None, "male", "female"])),
        age_years=draw(st.one_of(st.none(), st.integers(1, 110))),
        # every export row has a test time and a weight (a row without is refused)
        weight_kg=draw(mag),
        measured_at=draw(
            st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2099, 1, 1)).map(
                lambda t: t.replace(microsecond=0)
            )
        ),
        impedance=tuple(pts),
        device_values=draw(
            st.dictionaries(
                st.sampled_from(["ICW", "ECW", "TBW", "ECW/TBW(RA)", "SMM (Skeletal Muscle Mass)"]),
                st.one_of(mag, st.integers(1, 99)),
            )
        ),
    )


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(inbody_readings())
def test_round_trip(reading: Reading) -> None:
    frame = codec.encode(reading)
    back = codec.decode(frame)
    assert back.subject_id == reading.subject_id  # every export row has an ID
    assert (back.sex, back.age_years, back.weight_kg, back.measured_at) == (
        reading.sex,
        reading.age_years,
        reading.weight_kg,
        reading.measured_at,
    )
    assert back.device_values == reading.device_values
    assert len(back.impedance) == len(reading.impedance)
    for a, b in zip(back.impedance, reading.impedance, strict=True):
        assert (a.segment, a.freq_khz, a.magnitude_only, a.x_ohm) == (
            b.segment,
            b.freq_khz,
            b.magnitude_only,
            b.x_ohm,
        )
        assert a.r_ohm == pytest.approx(b.r_ohm, rel=1e-9)


@settings(max_examples=300)
@given(st.binary(max_size=800), st.lists(st.integers(0, 800), max_size=10))
def test_arbitrary_bytes_only_frame_errors(data: bytes, cuts: list[int]) -> None:
    for stream in (data, HEADER + data):
        chunks = feed_in_pieces(codec.framer(), stream, cuts)
        assert b"".join(c.data for c in chunks) == stream  # every byte journaled once
        for c in chunks:
            try:
                codec.decode(c.context + c.data)
            except FrameError as exc:
                assert exc.reason and exc.offset is not None


@settings(max_examples=300)
@given(st.lists(st.sampled_from(list(ROW1 + b'"')), max_size=500).map(bytes))
def test_row_like_bytes_only_frame_errors(row: bytes) -> None:
    try:
        codec.decode(HEADER + row + b"\n")
    except FrameError as exc:
        assert exc.reason


def test_rows_left_pending_by_a_crash_decode_with_their_header_from_the_journal(
    tmp_path: Path,
) -> None:
    """The header is journaled once; a row journaled but not decoded (the service
    stopped) finds it again by the sha256 its frame names, at the next start."""
    from bia_acq.acquire import Batch, Ingest, PortRuntime
    from bia_acq.store.db import open_writer
    from bia_acq.store.writer import Store

    chunks = feed_in_pieces(codec.framer(), EXPORT + b"\r\n", [])
    store = Store(open_writer(tmp_path / "w.db"))
    ingest = Ingest(store, "hanai-bis")
    rt = PortRuntime("inbody", "inbody-lookinbody-csv", codec, None)
    ingest.ports[rt.name] = rt
    ingest.handle(Batch(rt.name, rt.driver, chunks, 1.8e9), decode=False)  # then a crash
    store.db.close()
    store = Store(open_writer(tmp_path / "w.db"))
    again = Ingest(store, "hanai-bis")
    again.ports[rt.name] = rt
    assert again.recover() == 2 and again.stored == 2
    rows = store.conn.execute("SELECT kind, length(data) FROM raw_frame ORDER BY id").fetchall()
    assert rows[:3] == [("junk", len(HEADER)), ("frame", len(ROW1)), ("frame", len(ROW2))]
    store.db.close()


def test_who_the_person_is_never_leaves_the_journaled_row() -> None:
    """A LookinBody 120 row names the person, their phone, address and e-mail: the
    measurement keeps the results only (the raw row stays in the journal)."""
    from bia_acq.protocols.lookinbody import INBODY120_COLUMNS

    lb120 = get_profile("inbody120-lookinbody").codec()
    cells = dict.fromkeys(INBODY120_COLUMNS, "")
    cells.update({
        "Name": "Jane Roe", "ID": "A-1", "Date of Birth": "1950.01.01.", "Gender": "F",
        "Mobile Number": "5551234567", "Zip Code": "90703", "Address": "1 Main St",
        "E-mail": "jr@example.org", "Test Date / Time": "20261103094112", "Weight": "61.2",
        "Memo": "called back", "Lower Limit (Weight Normal Range)": "48.1",
        "SMM (Skeletal Muscle Mass)": "22.4", "20kHz-RA Impedance": "380.2",
    })  # fmt: skip
    head = ",".join(f"{i}. {c}" for i, c in enumerate(INBODY120_COLUMNS, 1))
    r = lb120.decode(f"{head}\r\n{','.join(cells.values())}\r\n".encode())
    assert (r.subject_id, r.sex, r.weight_kg, r.model) == ("A-1", "female", 61.2, "InBody 120")
    assert r.device_values == {"SMM (Skeletal Muscle Mass)": 22.4}
    assert r.impedance == (Impedance("right_arm", 20.0, 380.2, None, magnitude_only=True),)
