"""Port readers over fake transports: whole, split and lossy byte streams, a pulled
cable; then the whole service over the same fakes into a real SQLite file."""

from __future__ import annotations

import dataclasses
import queue
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import EXAMPLE_FRAME
from transports import LossyTransport

from bia_acq.acquire import Batch, PortReader
from bia_acq.config import Config, PortConfig
from bia_acq.drivers import get_profile
from bia_acq.protocols.tanita import TanitaProtocol
from bia_acq.service import Service

PROFILE = get_profile("tanita-mc780")
FAST = {"backoff_initial_s": 0.01, "backoff_max_s": 0.05}


def _frames(n: int) -> list[bytes]:
    codec = TanitaProtocol()
    base = codec.decode(EXAMPLE_FRAME)
    return [codec.encode(dataclasses.replace(base, weight_kg=60.0 + i / 10)) for i in range(n)]


FRAMES = _frames(6)
STREAM = b"\x00garbage\r\n" + b"".join(FRAMES[:3]) + b"~~" + b"".join(FRAMES[3:])


def _port(name: str = "p1") -> PortConfig:
    # no stale-partial timeout: a stalled test thread must not cut a frame
    return PortConfig(name, "fake://", PROFILE.name, PROFILE, PROFILE.serial, silence_s=3600.0)


def _read_all(fake: LossyTransport) -> list[Batch]:
    out: queue.Queue[Batch | None] = queue.Queue()
    reader = PortReader(_port(), out, transport=fake, **FAST)
    reader.start()
    assert fake.done.wait(60)  # set by a read after the last byte went through the framer
    reader.stop()
    reader.join(10)
    assert not reader.alive() and reader.state == "stopped"
    batches = []
    while not out.empty():
        b = out.get_nowait()
        assert isinstance(b, Batch)
        batches.append(b)
    return batches


@pytest.mark.parametrize("max_piece", [1, 3, 64, len(STREAM)])
def test_every_frame_arrives_however_the_bytes_are_split(max_piece: int) -> None:
    fake = LossyTransport(STREAM, seed=max_piece, max_piece=max_piece)
    chunks = [c for b in _read_all(fake) for c in b.chunks]
    assert [c.data for c in chunks if c.kind == "frame"] == FRAMES
    assert b"".join(c.data for c in chunks) == STREAM  # the junk is kept too


@pytest.mark.parametrize("seed", range(4))
def test_a_lossy_line_loses_no_received_byte_and_keeps_intact_frames(seed: int) -> None:
    fake = LossyTransport(STREAM, seed=seed, drop=0.004, max_piece=16)
    chunks = [c for b in _read_all(fake) for c in b.chunks]
    # every byte that reached the reader is journaled once, in order
    assert b"".join(c.data for c in chunks) == bytes(fake.delivered)
    frames = [c.data for c in chunks if c.kind == "frame"]
    start = STREAM.index(FRAMES[0])
    for f in FRAMES:  # a frame no byte of which (nor the line end before it) was lost
        at = STREAM.index(f, start)
        start = at + len(f)
        if not any(at - 2 <= i < at + len(f) for i in fake.lost):
            assert f in frames
    assert len(frames) <= len(FRAMES)


def test_a_pulled_cable_keeps_the_partial_frame_and_reconnects() -> None:
    cut = STREAM.index(FRAMES[1]) + 100  # in the middle of the second frame
    fake = LossyTransport(STREAM, max_piece=7, disconnect_at=cut)
    chunks = [c for b in _read_all(fake) for c in b.chunks]
    assert fake.opens == 2
    assert b"".join(c.data for c in chunks) == STREAM
    truncated = [c for c in chunks if c.kind == "truncated"]
    assert truncated and truncated[0].data == FRAMES[1][:100]
    assert "disconnected" in (truncated[0].reason or "")
    assert [c.data for c in chunks if c.kind == "frame"] == [FRAMES[0], *FRAMES[2:]]


def _settled(db: Path, n: int) -> bool:
    """``n`` bytes journaled (a partial frame the framer holds comes at the stop), none
    of them pending."""
    conn = sqlite3.connect(db)
    try:
        got, pending = conn.execute(
            "SELECT coalesce(sum(length(data)), 0), count(*) FILTER (WHERE status = 'pending')"
            " FROM raw_frame"
        ).fetchone()
    except sqlite3.OperationalError:  # not created yet
        return False
    finally:
        conn.close()
    return bool(pending == 0 and got == n)


def _wait_for(cond: Callable[[], bool]) -> None:
    end = time.monotonic() + 60
    while not cond():
        assert time.monotonic() < end, "condition not met"
        time.sleep(0.02)


@pytest.mark.parametrize(
    "make",
    [
        lambda: LossyTransport(STREAM, max_piece=len(STREAM)),
        lambda: LossyTransport(STREAM, max_piece=1),
        lambda: LossyTransport(STREAM, seed=7, drop=0.004, max_piece=16),
    ],
    ids=["whole", "byte-by-byte", "lossy"],
)
def test_the_service_stores_what_a_fake_line_delivers(tmp_path: Path, make) -> None:  # type: ignore[no-untyped-def]
    fake = make()
    db = tmp_path / "a.db"
    service = Service(
        Config(database=db, ports=(_port(),)), reader_options=FAST, transport_for=lambda p: fake
    )
    service.start()
    try:
        assert fake.done.wait(60)
        reader = service.sources["p1"]
        assert isinstance(reader, PortReader)
        _wait_for(lambda: _settled(db, len(fake.delivered) - reader.framer.pending))
    finally:
        service.stop()
    conn = sqlite3.connect(db)
    journal = b"".join(bytes(r[0]) for r in conn.execute("SELECT data FROM raw_frame ORDER BY id"))
    assert journal == bytes(fake.delivered)  # nothing received is lost
    stored = {bytes(r[0]) for r in conn.execute(
        "SELECT r.data FROM measurement m JOIN raw_frame r ON r.id = m.raw_frame_id"
    )}  # fmt: skip
    decoded = {
        bytes(r[0]) for r in conn.execute("SELECT data FROM raw_frame WHERE status = 'decoded'")
    }
    assert stored == decoded and stored <= set(FRAMES)
    if not fake.lost:
        assert stored == set(FRAMES)
    for status, reason in conn.execute(
        "SELECT status, reason FROM raw_frame WHERE kind = 'frame' AND status != 'decoded'"
    ):
        assert status == "rejected" and reason  # a damaged frame says why
    assert conn.execute("SELECT count(*) FROM raw_frame WHERE status = 'pending'").fetchone() == (
        0,
    )
    conn.close()
