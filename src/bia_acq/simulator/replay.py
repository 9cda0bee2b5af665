"""Replay: send a captured byte stream, or a database's journal, as the analyzer sent it.

A capture file has no timing: it is cut into frames by the profile's framer
(every byte kept, junk included) and sent at the line rate. A journal
(``raw_frame`` rows, in ``id`` order, junk and truncated runs included) keeps
each chunk's ``received_at_epoch``: chunks go out with the original gaps, or
``speed`` times faster. Faults (:mod:`bia_acq.simulator.faults`) number the
chunks sent, from 1.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bia_acq.errors import ConfigError
from bia_acq.protocols.base import Protocol
from bia_acq.simulator.device import Line
from bia_acq.store.db import open_readonly

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Chunk:
    data: bytes
    at_epoch: float | None = None  # when it was received, if known


def chunks_from_bytes(data: bytes, codec: Protocol) -> list[Chunk]:
    """Cut a capture into the chunks the profile's framer sees (frames and junk)."""
    framer = codec.framer()
    chunks = framer.feed(data) + framer.flush("end of the capture")
    return [Chunk(c.data) for c in chunks]


def chunks_from_journal(db_path: Path, port: str | None = None) -> tuple[list[Chunk], list[str]]:
    """The journal's chunks in order, and the drivers that wrote them."""
    conn = open_readonly(db_path)
    try:
        where, params = ("WHERE port = ?", (port,)) if port else ("", ())
        rows = conn.execute(
            f"SELECT data, received_at_epoch, driver FROM raw_frame {where} ORDER BY id", params
        ).fetchall()
    finally:
        conn.close()
    if not rows:
        what = f"for port {port!r} " if port else ""
        raise ConfigError(
            f"the journal has no frames {what}to replay",
            file=str(db_path),
            fix="check --db and --journal-port",
        )
    drivers = sorted({r[2] for r in rows})
    return [Chunk(bytes(r[0]), float(r[1])) for r in rows], drivers


class Replayer:
    """Sends chunks on a :class:`~bia_acq.simulator.device.Line`."""

    def __init__(self, line: Line, chunks: Sequence[Chunk], *, speed: float | None = 1.0) -> None:
        self.line = line
        self.chunks = list(chunks)
        self.speed = speed  # None: no gaps between chunks
        self.sent = 0
        self.bytes_sent = 0

    def run(self, stop: threading.Event) -> int:
        if not self.line.wait_reader(stop):
            return 0
        t0 = time.monotonic()
        first = next((c.at_epoch for c in self.chunks if c.at_epoch is not None), None)
        for chunk in self.chunks:
            if stop.is_set():
                break
            if self.speed and first is not None and chunk.at_epoch is not None:
                due = t0 + (chunk.at_epoch - first) / self.speed
                delay = due - time.monotonic()
                if delay > 0 and stop.wait(delay):
                    break
            if not self.line.wait_reader(stop):
                break
            plan = self.line.send_frame(self.sent + 1, chunk.data, stop)
            if plan is None:
                log.warning("reader went away during chunk %d", self.sent + 1)
                continue
            self.sent += 1
            self.bytes_sent += len(chunk.data)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and self.line.endpoint.reader_present():
            time.sleep(0.05)
        return self.sent
