"""Open-hardware impedance sweeps: OpenEIT-style ``magnitudes:<freq_hz>;<ohm>`` lines.

What the OpenEIT project's own code shows (Mindseye Biomedical, OpenEIT/OpenEIT
``OpenEIT/backend/serialhandler.py`` and ``OpenEIT/dashboard/modes/spectroscopy.py``;
OpenEIT/EIT_Firmware ``README.md``):

* the host opens the port at 115200 baud, 8 data bits, no parity, 1 stop bit,
  no flow control, and reads lines ended by LF;
* after a reset the firmware prints a menu (banner lines); choosing option
  ``b`` starts bioimpedance spectroscopy, which prints impedance **magnitudes**
  only, one frequency per line as ``<prefix>:<freq>;<amplitude>`` (the host
  splits on ``:`` then ``;``), and repeats the cycle;
* the sweep is 15 frequencies: 200, 500, 800, 1000, 2000, 5000, 8000, 10000,
  15000, 20000, 30000, 40000, 50000, 60000 and 70000 Hz.

Framing here: one sweep (lines of rising frequency up to the profile's last
frequency) is one frame. Any other line (menu, banner, prompt) is junk and is
journaled as such; a sweep cut by junk, by a frequency that does not rise, or
by the link going quiet is journaled as truncated.

Magnitude-only points: each point becomes ``Impedance(segment, f, r_ohm=|Z|,
x_ohm=None, magnitude_only=True)``. The core's methods that need resistance
and reactance (hanai-bis) do not use them and say so in the measurement's
warnings; the spectra are stored for methods that fit magnitudes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from bia_acq.errors import FrameError
from bia_acq.model import Impedance, Reading
from bia_acq.protocols.base import Chunk, Framer, Protocol

PREFIX = b"magnitudes:"
#: The OpenEIT firmware's spectroscopy frequencies (Hz), from EIT_Firmware README.md.
OPENEIT_FREQS_HZ = (200, 500, 800, 1000, 2000, 5000, 8000, 10000, 15000, 20000, 30000, 40000, 50000, 60000, 70000)  # fmt: skip


def _freq_of(line: bytes) -> float | None:
    """The frequency of a data line, or None if it cannot be read (the decoder says why)."""
    head = line[len(PREFIX) :].split(b";", 1)[0]
    try:
        f = float(head)
    except ValueError:
        return None
    return f if math.isfinite(f) else None


class SweepFramer(Framer):
    """Groups ``magnitudes:`` lines into one frame per sweep; other lines are junk."""

    def __init__(self, last_freq_hz: float, *, max_len: int = 4096, silence_s: float = 2.0):
        super().__init__(start=b"", end=b"\n", max_len=max_len, silence_s=silence_s)
        self.last_freq_hz = last_freq_hz
        self._sweep = 0  # bytes of complete sweep lines at the start of the buffer
        self._prev: float | None = None

    def _reset(self) -> None:
        self._sweep = 0
        self._prev = None

    def _step(self, out: list[Chunk]) -> bool:
        buf = self._buf
        j = buf.find(b"\n", self._sweep)
        if j < 0:
            if len(buf) > self.max_len:
                if self._sweep:
                    out.append(Chunk("truncated", bytes(buf[: self._sweep]), "sweep too long"))
                out.append(Chunk("junk", bytes(buf[self._sweep :]), "line too long"))
                buf.clear()
                self._reset()
            return False
        line = bytes(buf[self._sweep : j + 1])
        if not line.lstrip(b"\r\x00 \t").startswith(PREFIX):
            if self._sweep:
                out.append(
                    Chunk("truncated", bytes(buf[: self._sweep]), "sweep interrupted by other text")
                )
            reason = "empty line" if not line.strip() else "not a data line (banner or menu)"
            out.append(Chunk("junk", line, reason))
            del buf[: j + 1]
            self._reset()
            return True
        f = _freq_of(line.lstrip(b"\r\x00 \t"))
        if self._sweep and f is not None and self._prev is not None and f <= self._prev:
            out.append(
                Chunk(
                    "truncated",
                    bytes(buf[: self._sweep]),
                    "a new sweep started before this one ended",
                )
            )
            del buf[: self._sweep]
            self._reset()
            return True
        self._sweep = j + 1
        if f is not None:
            self._prev = f
        if f is not None and f >= self.last_freq_hz:
            out.append(Chunk("frame", bytes(buf[: self._sweep])))
            del buf[: self._sweep]
            self._reset()
        return True

    def flush(self, reason: str = "link closed inside a sweep") -> list[Chunk]:
        out: list[Chunk] = []
        if self._sweep:
            out.append(Chunk("truncated", bytes(self._buf[: self._sweep]), reason))
        rest = bytes(self._buf[self._sweep :])
        if rest:
            out.append(Chunk("junk", rest, "an unfinished line"))
        self._buf.clear()
        self._reset()
        return out


class OpenEITProtocol(Protocol):
    """OpenEIT-style magnitude sweeps, one Reading per sweep.

    Options: ``frequencies_hz`` (the sweep; default the OpenEIT firmware's 15),
    ``segment`` (which path the electrodes measure; default ``whole_body_right``,
    hand to foot), ``model`` (stored as the device model).
    """

    name = "openeit"
    description = "OpenEIT-style magnitude sweeps, 'magnitudes:<Hz>;<ohm>' lines (open hardware)"
    expects = "'magnitudes:<Hz>;<ohm>' lines, one sweep per frame"

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        o = self.options
        self.freqs_hz = [float(f) for f in o.get("frequencies_hz", OPENEIT_FREQS_HZ)]
        self.segment = str(o.get("segment", "whole_body_right"))
        self.model: str | None = o.get("model")
        self.silence_s = float(o.get("silence_s", 2.0))

    def framer(self) -> Framer:
        return SweepFramer(max(self.freqs_hz), silence_s=self.silence_s)

    def decode(self, frame: bytes) -> Reading:
        points: list[Impedance] = []
        pos = 0
        prev: float | None = None
        for raw in frame.split(b"\n"):
            start, pos = pos, pos + len(raw) + 1
            line = raw.strip(b"\r\x00 \t")
            if not line:
                continue
            at = start + raw.find(line[:1])
            if not line.startswith(PREFIX):
                raise FrameError("line does not start with 'magnitudes:'", at)
            body = line[len(PREFIX) :]
            parts = body.split(b";")
            if len(parts) != 2:
                raise FrameError("expected '<freq_hz>;<ohm>' after 'magnitudes:'", at + len(PREFIX))
            try:
                f = float(parts[0])
            except ValueError:
                raise FrameError(
                    f"frequency {parts[0]!r} is not a number", at + len(PREFIX)
                ) from None
            vat = at + len(PREFIX) + len(parts[0]) + 1
            try:
                z = float(parts[1])
            except ValueError:
                raise FrameError(f"magnitude {parts[1]!r} is not a number", vat) from None
            if not (math.isfinite(f) and f > 0):
                raise FrameError(f"frequency {f!r} Hz is not a positive number", at + len(PREFIX))
            if not (math.isfinite(z) and z > 0):
                raise FrameError(f"magnitude {z!r} ohm is not a positive number", vat)
            if prev is not None and f <= prev:
                raise FrameError(f"frequency {f:g} Hz does not rise ({prev:g} Hz before)", at)
            prev = f
            points.append(Impedance(self.segment, f / 1000.0, z, None, magnitude_only=True))
        if not points:
            raise FrameError("no magnitudes in the sweep", 0)
        return Reading(model=self.model, impedance=tuple(points))

    def encode(self, reading: Reading) -> bytes:
        lines = []
        for z in sorted(reading.impedance, key=lambda p: p.freq_khz):
            if z.segment != self.segment:
                continue
            mag = z.r_ohm if z.magnitude_only or z.x_ohm is None else math.hypot(z.r_ohm, z.x_ohm)
            hz = z.freq_khz * 1000.0
            hz_text = str(round(hz)) if abs(hz - round(hz)) < 1e-6 else repr(hz)
            lines.append(f"magnitudes:{hz_text};{mag!r}\n")
        return "".join(lines).encode("ascii")
