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
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from bia_acq.errors import DriverNotAvailable
from bia_acq.model import Reading

ENTRY_POINT_GROUP = "bia_acq.protocols"

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
    exactly one chunk, so the journal accounts for everything received.
    """

    kind: ChunkKind
    data: bytes
    reason: str | None = None


class Framer:
    """Incremental, pure framing of a byte stream into chunks.

    Frames start with ``start`` (or at the first byte after the previous frame
    when ``start`` is empty) and end with ``end``. Bytes before a start are
    junk; a start inside an unfinished frame truncates it; a frame longer than
    ``max_len`` is cut off as truncated; ``poll`` drops a partial frame after
    ``silence_s`` without bytes (a stale partial never glues onto the next
    frame).
    """

    def __init__(
        self,
        *,
        start: bytes = b"",
        end: bytes = b"\r\n",
        max_len: int = 16384,
        silence_s: float = 2.0,
    ) -> None:
        self.start = start
        self.end = end
        self.max_len = max_len
        self.silence_s = silence_s
        self._buf = bytearray()
        self._in_frame = not start
        self._last_byte_at: float | None = None

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
            i = buf.find(self.start)
            if i < 0:
                # keep a possible partial start marker; the rest is junk
                keep = len(self.start) - 1
                if len(buf) > self.max_len:
                    cut = len(buf) - keep
                    out.append(Chunk("junk", bytes(buf[:cut]), "no frame start"))
                    del buf[:cut]
                return False
            if i > 0:
                out.append(Chunk("junk", bytes(buf[:i]), "bytes outside a frame"))
                del buf[:i]
            self._in_frame = True
        # in a frame: buf starts at the frame start (or anywhere if no start marker)
        search_from = len(self.start)
        j = buf.find(self.end, search_from)
        k = buf.find(self.start, search_from) if self.start else -1
        if k >= 0 and (j < 0 or k < j):
            out.append(
                Chunk("truncated", bytes(buf[:k]), "a new frame started before this one ended")
            )
            del buf[:k]
            return True
        if j < 0:
            if len(buf) > self.max_len:
                out.append(
                    Chunk("truncated", bytes(buf), f"frame longer than {self.max_len} bytes")
                )
                buf.clear()
                self._in_frame = not self.start
            return False
        end = j + len(self.end)
        frame = bytes(buf[:end])
        del buf[:end]
        self._in_frame = not self.start
        if frame.strip(b"\r\n\x00 \t") == b"":
            out.append(Chunk("junk", frame, "empty line"))
        else:
            out.append(Chunk("frame", frame))
        return True

    def poll(self, now: float) -> list[Chunk]:
        """Call when no bytes came: drop a stale partial frame after silence."""
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
        data = bytes(self._buf)
        self._buf.clear()
        started = self._in_frame and (not self.start or data.startswith(self.start))
        self._in_frame = not self.start
        if started:
            return [Chunk("truncated", data, reason)]
        return [Chunk("junk", data, "bytes outside a frame")]


class Protocol(ABC):
    """A protocol family: framing, decoding and encoding of its frames.

    Instances are built from a profile's ``options`` mapping. ``decode`` is pure
    and raises :class:`~bia_acq.errors.FrameError` (with a byte offset) for a
    frame it cannot read, never anything else. ``encode`` is its inverse:
    ``decode(encode(r)) == r`` for every reading the device could send.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""

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
