"""The protocol interface: a framer, a decoder and an encoder per protocol family.

A protocol family (Tanita key/value frames, a positional CSV, JSON lines, ...) is
one class. A device profile in ``drivers/`` picks a protocol and passes it
options (which frequencies, which keys), so a new analyzer that speaks a known
protocol needs only a YAML file.

Built-in protocols are a name -> ``"module:Class"`` table imported lazily; third
parties add theirs under the entry-point group ``bia_acq.protocols`` (the
pattern of python-can's interface table). A plugin that fails to import is
reported as not available and never stops the program.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from bia_acq.errors import DriverNotAvailable
from bia_acq.model import Reading

ENTRY_POINT_GROUP = "bia_acq.protocols"
#: imperial units some analyzers send (BC-601 pound mode, LookinBody under US units)
LB_KG = 0.45359237  # international pound, exact
IN_CM = 2.54  # inch, exact

BUILTIN: dict[str, str] = {
    "tanita": "bia_acq.protocols.tanita:TanitaProtocol",
    "jsonlines": "bia_acq.protocols.jsonlines:JsonLinesProtocol",
    "openeit": "bia_acq.protocols.openeit:OpenEITProtocol",
    "lookinbody-csv": "bia_acq.protocols.lookinbody:LookinBodyProtocol",
    "positional": "bia_acq.protocols.positional:PositionalProtocol",
}

ChunkKind = Literal["frame", "junk", "truncated"]


@dataclass(frozen=True)
class Chunk:
    """A run of received bytes the framer has classified.

    ``frame``: a complete frame, to decode. ``junk``: bytes outside any frame.
    ``truncated``: the start of a frame that never ended (disconnect, silence,
    a new frame started, overflow). Every byte fed to a framer comes out in
    exactly one chunk, so the journal accounts for everything received. A frame
    whose decoding needs an earlier chunk (a CSV row its header line) carries
    that chunk's bytes in ``context`` and names it in ``reason``
    (``context sha256 <hex>``), so the journal finds it again after a restart.
    """

    kind: ChunkKind
    data: bytes
    reason: str | None = None
    #: bytes the frame needs to be decoded that came earlier and were journaled once as
    #: their own chunk (a CSV export's header line): decode ``context + data``
    context: bytes = b""


#: seconds without a byte after which a CR ends its frame (no LF came)
CR_GRACE_S = 0.25


class Framer:
    """Incremental, pure framing of a byte stream into chunks.

    Frames start with ``start`` (or at the first byte after the previous frame
    when ``start`` is empty) and end with ``end``; ``end=None`` (the default)
    means any line end: CR LF, LF or CR alone, so a text file saved on any
    system frames as the serial line does. A CR that is the last byte received
    ends its frame once the next byte shows it is not a CR LF, or at the next
    ``poll`` (no more bytes for now) or ``flush``. Bytes before a start are
    junk; a start inside an unfinished frame ends it: as a frame if
    ``complete(bytes)`` says it is whole (a frame glued to the next without a
    line end), else as truncated; a frame longer than ``max_len`` is cut off as
    truncated; ``poll`` drops a partial frame after ``silence_s`` without bytes
    (a stale partial never glues onto the next frame). ``record(bytes)`` names a
    frame that is a record the device keeps but not a measurement (a BC-601
    profile line): it comes out as junk with a reason starting ``record:``.
    """

    def __init__(
        self,
        *,
        start: bytes = b"",
        end: bytes | None = None,
        max_len: int = 16384,
        silence_s: float = 2.0,
        complete: Callable[[bytes], bool] | None = None,
        record: Callable[[bytes], str | None] | None = None,
    ) -> None:
        self.start = start
        self.end = end
        self.max_len = max_len
        self.silence_s = silence_s
        self.complete = complete
        self.record = record
        self._buf = bytearray()
        self._in_frame = not start
        self._body_at = len(start)  # where the current frame's start marker ends
        self._last_byte_at: float | None = None

    def _find_start(self, buf: bytearray, pos: int) -> tuple[int, int]:
        """(index, length) of the next start marker at or after ``pos``; (-1, 0) if none."""
        return buf.find(self.start, pos), len(self.start)

    def _line_end(self, buf: bytearray, pos: int) -> int:
        """Index just past the first frame end at or after ``pos``; -1 if none is complete."""
        if self.end is not None:
            j = buf.find(self.end, pos)
            return -1 if j < 0 else j + len(self.end)
        m = _LINE_END.search(buf, pos)
        if m is None:
            return -1
        j = m.start()
        if buf[j] == 0x0D:  # CR: with a following LF, both end the frame
            if j + 1 == len(buf):
                return -1  # the LF may still come
            return j + 2 if buf[j + 1] == 0x0A else j + 1
        return j + 1

    @property
    def pending(self) -> int:
        """Bytes held that have not come out in a chunk yet."""
        return len(self._buf)

    def feed(self, data: bytes, now: float | None = None) -> list[Chunk]:
        """Take received bytes; return the chunks they complete."""
        out: list[Chunk] = []
        if now is not None:
            # no silence check here: bytes that arrive are not silence, even when a busy
            # machine let the reader read them late; only an empty read (poll) is
            self._last_byte_at = now
        self._buf += data
        while self._step(out):
            pass
        return out

    def _step(self, out: list[Chunk]) -> bool:
        buf = self._buf
        if not self._in_frame:
            i, n = self._find_start(buf, 0)
            if i < 0:
                # keep a possible partial start marker; the rest is junk
                keep = len(self.start)
                if len(buf) > self.max_len:
                    cut = len(buf) - keep
                    out.append(Chunk("junk", bytes(buf[:cut]), "no frame start"))
                    del buf[:cut]
                return False
            if i > 0:
                out.append(Chunk("junk", bytes(buf[:i]), _junk_reason(buf[:i])))
                del buf[:i]
            self._in_frame = True
            self._body_at = n
        # in a frame: buf starts at the frame start (or anywhere if no start marker)
        end = self._line_end(buf, self._body_at)
        k = self._find_start(buf, self._body_at)[0] if self.start else -1
        if k >= 0 and (end < 0 or k < end):
            head = bytes(buf[:k])
            if self.complete is not None and self.complete(head):
                out.append(self._frame(head))
            else:
                out.append(Chunk("truncated", head, "a new frame started before this one ended"))
            del buf[:k]
            self._in_frame = False
            return True
        if end < 0:
            if len(buf) > self.max_len:
                out.append(
                    Chunk("truncated", bytes(buf), f"frame longer than {self.max_len} bytes")
                )
                buf.clear()
                self._in_frame = not self.start
            return False
        self._emit_line(out, end)
        return True

    def _emit_line(self, out: list[Chunk], end: int) -> None:
        frame = bytes(self._buf[:end])
        del self._buf[:end]
        self._in_frame = not self.start
        self._body_at = len(self.start)
        if frame.strip(b"\r\n\x00 \t") == b"":
            out.append(Chunk("junk", frame, "empty line"))
        else:
            out.append(self._frame(frame))

    def _frame(self, data: bytes) -> Chunk:
        what = self.record(data) if self.record is not None else None
        return Chunk("frame", data) if what is None else Chunk("junk", data, f"record: {what}")

    def _cr_ended(self) -> bool:
        """The frame in hand ends with a CR that is the last byte received."""
        buf = self._buf
        if self.end is not None or not self._in_frame or not buf.endswith(b"\r"):
            return False
        m = _LINE_END.search(buf, self._body_at)
        return m is not None and m.start() == len(buf) - 1

    def poll(self, now: float) -> list[Chunk]:
        """Call when no bytes came: end a CR-ended frame; drop a stale partial after silence.

        A frame ended by a CR comes out once no LF followed for ``CR_GRACE_S``
        (a device sends the LF of its CR LF within milliseconds).
        """
        quiet = None if self._last_byte_at is None else now - self._last_byte_at
        if self._cr_ended() and (quiet is None or quiet >= min(CR_GRACE_S, self.silence_s)):
            out: list[Chunk] = []
            self._emit_line(out, len(self._buf))
            return out
        if (
            self._buf
            and self._last_byte_at is not None
            and now - self._last_byte_at >= self.silence_s
        ):
            return self.flush(f"no bytes for {self.silence_s:g} s inside a frame")
        return []

    def flush(self, reason: str = "link closed inside a frame") -> list[Chunk]:
        """Give back everything held (at disconnect, end of file or silence)."""
        if not self._buf:
            return []
        out: list[Chunk] = []
        if self._cr_ended():
            self._emit_line(out, len(self._buf))
            return out
        data = bytes(self._buf)
        self._buf.clear()
        started = self._in_frame and (
            not self.start or self._find_start(bytearray(data), 0)[0] == 0
        )
        self._in_frame = not self.start
        self._body_at = len(self.start)
        if started and self.complete is not None and self.complete(data):
            return [self._frame(data)]
        if started:
            return [Chunk("truncated", data, reason)]
        return [Chunk("junk", data, _junk_reason(data))]


_LINE_END = re.compile(rb"[\r\n]")
_BOM = b"\xef\xbb\xbf"


def _junk_reason(data: bytes | bytearray) -> str:
    if data.startswith(_BOM) and not data[3:].strip(b"\r\n\x00 \t"):
        return "UTF-8 byte-order mark"
    return "bytes outside a frame"


def is_container(data: bytes) -> bool:
    """A zip file (an .xlsx workbook): read whole, then transcoded by the codec."""
    return data.startswith(b"PK\x03\x04")


def is_noise(data: bytes) -> bool:
    """Bytes that carry nothing (line ends, NULs, blanks, a byte-order mark)."""
    return not data.replace(_BOM, b"").strip(b"\r\n\x00 \t")


class Protocol(ABC):
    """A protocol family: framing, decoding and encoding of its frames.

    Instances are built from a profile's ``options`` mapping. ``decode`` is pure
    and raises :class:`~bia_acq.errors.FrameError` (with a byte offset) for a
    frame it cannot read, never anything else. ``encode`` is its inverse:
    ``decode(encode(r)) == r`` for every reading the device could send.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    #: what a frame looks like, for "no frame in this file" (``bia-acq decode``/``import``)
    expects: ClassVar[str] = "frames of this protocol"

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self.options: Mapping[str, Any] = dict(options or {})

    @abstractmethod
    def framer(self) -> Framer:
        """A new framer for one byte stream."""

    @abstractmethod
    def decode(self, frame: bytes) -> Reading:
        """One complete frame (as the framer gave it) -> Reading, or FrameError."""

    @abstractmethod
    def encode(self, reading: Reading) -> bytes:
        """A Reading -> the bytes the device would send for it."""

    def encode_stream(self, readings: Iterable[Reading]) -> bytes:
        """Readings as a file of this format holds them (a LookinBody export: one header)."""
        return b"".join(self.encode(r) for r in readings)

    def transcode(self, data: bytes) -> bytes | None:
        """A whole file in a container this protocol reads (an Excel workbook) as the
        byte stream its framer takes; None when ``data`` is that stream already."""
        return None

    def preflight(self, head: bytes) -> str | None:
        """Why a file starting with ``head`` cannot be imported at all, or None.

        Asked before anything of the file is stored (``bia-acq import``): a
        LookinBody export without a subject, test time or weight column says so.
        """
        return None

    def check(self, reading: Reading) -> list[str]:
        """Consistency warnings for a decoded reading (stored with it, never a rejection).

        A codec that knows how its device's values relate (e.g. a phase angle
        and R, X at the same frequency) overrides this; the default has none.
        """
        return []


def _import(target: str) -> type[Protocol]:
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    cls = getattr(module, attr)
    if not (isinstance(cls, type) and issubclass(cls, Protocol)):
        raise TypeError(f"{target} is not a bia_acq Protocol subclass")
    return cls


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def protocol_names() -> list[str]:
    """Every protocol name known: built-ins and installed plugins."""
    return sorted(set(BUILTIN) | set(_entry_points()))


def load_protocol(name: str) -> type[Protocol]:
    """The protocol class called ``name``; DriverNotAvailable if unknown or broken."""
    if name in BUILTIN:
        return _import(BUILTIN[name])
    eps = _entry_points()
    if name not in eps:
        known = ", ".join(protocol_names())
        raise DriverNotAvailable(f"unknown protocol {name!r}; known protocols: {known}")
    try:
        cls = eps[name].load()
        if not (isinstance(cls, type) and issubclass(cls, Protocol)):
            raise TypeError(f"{eps[name].value} is not a bia_acq Protocol subclass")
    except Exception as exc:  # a broken plugin must not stop the program
        raise DriverNotAvailable(
            f"protocol {name!r} from plugin {eps[name].value!r} is not available: "
            f"{type(exc).__name__}: {exc} (reinstall or remove that package)"
        ) from exc
    return cls
