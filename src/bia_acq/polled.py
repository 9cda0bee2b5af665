"""Polled analyzers: a port reader that runs the profile's command dialogue.

For a profile with a ``dialogue`` (Tanita PC mode, :mod:`bia_acq.dialogue`)
the reader, once the port is open, enters PC mode, then for each work-list
entry (:mod:`bia_acq.worklist`) sends the subject's settings and the start
command, each acknowledged by the device, and waits for the measurement
frame. Everything the device sends (acknowledgements and errors included) is
journaled; the frame's batch carries the work-list entry, so the writer
stores the measurement for that entry's subject and links the two. The reader
never touches the database: claiming, failing and releasing entries are store
functions (:mod:`bia_acq.store.worklist`) the writer thread runs for it
(:meth:`~bia_acq.source.Source._ask`).

Timing rules kept: at least ``command_gap_ms`` between commands (100 ms for
Tanita), each command written at once (well under 250 ms between its
characters), and nothing sent between the start command and the end of the
measurement frame (or an error, or the time-out).
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from typing import Any

from bia_acq.acquire import Batch, PortReader
from bia_acq.config import PortConfig
from bia_acq.dialogue import Dialogue
from bia_acq.errors import StorageError
from bia_acq.link import Transport
from bia_acq.protocols.base import Chunk
from bia_acq.source import Item
from bia_acq.store import worklist

log = logging.getLogger(__name__)

_ERROR_LINE = re.compile(rb"(?:^|\n)(E\d)\r?(?:\n|$)")
CLAIM_EVERY_S = 0.5


class PolledReader(PortReader):
    """A :class:`~bia_acq.acquire.PortReader` that asks the device to measure."""

    def __init__(
        self,
        port: PortConfig,
        out: queue.Queue[Item],
        stop: threading.Event | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(port, out, stop, **kwargs)
        assert port.profile.dialogue is not None
        self.dialogue: Dialogue = port.profile.dialogue
        self._last_command_at = 0.0
        self._left = b""  # bytes that came after a reply line, not yet looked at
        self.measured = 0

    # -- plumbing --------------------------------------------------------------
    def _emit(self, chunks: list[Chunk], worklist_id: int | None = None) -> None:
        if not chunks:
            return
        if any(c.kind == "frame" for c in chunks):
            self.last_frame_at = time.time()
        self._put(
            Batch(self.port.name, self.port.driver, chunks, time.time(), worklist_id=worklist_id)
        )

    def _read(self) -> bytes:
        data, self._left = self._left, b""
        return data or self.link.read()

    def _command(self, command: str) -> tuple[str, str]:
        """Send one command, wait for its one-line reply; journal the reply."""
        d = self.dialogue
        head = d.head(command)
        wait = self._last_command_at + d.command_gap_s - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        if self._left:
            self._emit(self.framer.feed(self._left, time.monotonic()))
            self._left = b""
        self._emit(self.framer.flush("bytes before a command"))
        self.link.write(command.encode("ascii") + b"\r\n")
        self._last_command_at = time.monotonic()
        buf = bytearray()
        deadline = self._last_command_at + d.reply_timeout_s
        while b"\n" not in buf and time.monotonic() < deadline:
            self.heartbeat = time.monotonic()
            buf += self.link.read()
        self._last_command_at = time.monotonic()  # the gap counts from the reply
        if b"\n" not in buf:
            if buf:
                self._emit([Chunk("junk", bytes(buf), f"dialogue: incomplete reply to {head}")])
            return "timeout", f"no reply to {head} within {d.reply_timeout_s:g} s"
        end = buf.index(b"\n") + 1
        reply, rest = bytes(buf[:end]), bytes(buf[end:])
        kind, why = d.classify(command, reply.strip(b"\r\n\x00 ").decode("ascii", "replace"))
        self._emit([Chunk("junk", reply, f"dialogue: {kind} to {head}")])
        self._left = rest
        return kind, why

    # -- the dialogue ----------------------------------------------------------
    def _read_until_stopped(self) -> None:
        port = self.port.name
        try:
            stale = self._ask(lambda store: worklist.release_stale(store.conn, port))
        except StorageError as exc:
            log.error("port %s: cannot read the work list: %s", port, exc)
            stale = 0
        if stale:
            log.warning(
                "port %s: %d work-list entry(ies) left measuring: marked failed",
                self.port.name,
                stale,
            )
        entered = False
        next_claim = 0.0
        while True:
            self.heartbeat = now = time.monotonic()
            if self.stopping.is_set():
                return
            if not entered:
                entered = self._enter()
                if not entered:
                    self.stopping.wait(2.0)
                    continue
            if now >= next_claim:
                next_claim = now + CLAIM_EVERY_S
                try:
                    entry = self._ask(lambda store: worklist.claim_next(store.conn, port))
                except StorageError as exc:
                    log.error("port %s: cannot read the work list: %s", port, exc)
                    entry = None
                if entry is not None:
                    entered = self._measure(entry)
                    continue
            data = self._read()  # idle: unsolicited bytes are journaled too
            now = time.monotonic()
            self._emit(self.framer.feed(data, now) if data else self.framer.poll(now))

    def _enter(self) -> bool:
        for command in self.dialogue.enter:
            kind, why = self._command(command)
            if kind != "ack":
                self._set_state("waiting", f"{why}; is the analyzer on and in PC mode?")
                return False
        self._set_state("ready", "PC mode, waiting for work-list entries")
        return True

    def _fail(self, entry: worklist.Entry, why: str) -> None:
        log.warning("port %s: work-list entry %d failed: %s", self.port.name, entry.id, why)
        try:
            self._ask(lambda store: worklist.fail(store.conn, entry.id, why))
        except StorageError as exc:  # left 'measuring': the next start marks it failed
            log.error(
                "port %s: cannot mark work-list entry %d failed: %s", self.port.name, entry.id, exc
            )

    def _measure(self, entry: worklist.Entry) -> bool:
        """Run one measurement; False if the device must be put in PC mode again."""
        d = self.dialogue
        log.info("port %s: measuring work-list entry %d", self.port.name, entry.id)
        values = entry.template_values(dict(d.sex_codes), dict(d.body_type_codes))
        for command in [*d.render(values), d.start]:
            kind, why = self._command(command)
            if kind != "ack":
                self._fail(entry, why)
                return kind != "timeout"
        self._set_state("measuring", f"work-list entry {entry.id}")
        deadline = time.monotonic() + d.measure_timeout_s
        while not self.stopping.is_set():
            self.heartbeat = time.monotonic()
            data = self._read()
            now = time.monotonic()
            chunks = self.framer.feed(data, now) if data else self.framer.poll(now)
            frames = [c for c in chunks if c.kind == "frame"]
            self._emit(chunks, entry.id if frames else None)
            if frames:
                self.measured += 1
                self._set_state("ready", "PC mode, waiting for work-list entries")
                return True
            # an error line is outside any frame: the framer gives it back as junk
            # (at once if a frame follows, else after its silence time)
            codes = [
                m.group(1)
                for c in chunks
                if c.kind != "frame"
                for m in _ERROR_LINE.finditer(c.data)
            ]
            if codes:
                code = codes[0].decode()
                self._fail(entry, f"{code}: {d.errors.get(code, 'unknown error code')}")
                self._set_state("ready", "PC mode, waiting for work-list entries")
                return True
            if now > deadline:
                self._fail(entry, f"no measurement within {d.measure_timeout_s:g} s of {d.start}")
                self._set_state("ready", "PC mode, waiting for work-list entries")
                return True
        self._fail(entry, "the service stopped during the measurement")
        return True


def make_reader(
    port: PortConfig,
    out: queue.Queue[Item],
    stop: threading.Event | None = None,
    *,
    transport: Transport | None = None,
    **kwargs: float,
) -> PortReader:
    """A polled reader for profiles with a dialogue, else the plain reader."""
    if port.profile.dialogue is not None:
        return PolledReader(port, out, stop, transport=transport, **kwargs)
    return PortReader(port, out, stop, transport=transport, **kwargs)
