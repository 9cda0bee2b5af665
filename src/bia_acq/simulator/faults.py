"""Faults on demand: what a real serial line does to an analyzer's frames.

A :class:`Fault` fires on chosen measurements (``at``: 1-based numbers of the
frames the simulator sends) or at random with a probability per frame; a
:class:`FaultEngine` turns one frame into a :class:`Plan` (the bytes to write,
pauses, an unplug) and says whether the frame should still arrive intact, so a
test knows what the service ought to store. Every fault that fires is logged
(WARNING) and listed in the ``--truth`` record of that measurement.

Kinds (``value`` is the optional number after ``=``):

========================  ============================================================
``split``                 the frame in ``value`` (default 2-6) pieces, 20-80 ms apart
``drop``                  one byte left out
``flip``                  one bit of one byte inverted
``garbage``               ``value`` (default 8-64) random bytes before the frame
``bad_checksum``          data intact, checksum field wrong (codecs without a
                          checksum: the last data byte is changed instead)
``truncate``              only the first part of the frame, then silence
``stall``                 a pause of ``value`` s (default 0.5) in the middle of the frame
``unplug``                the port goes away for ``value`` s (default 2) before the frame
                          and comes back at the same link or address
``wrong_baud``            the frame as a reader at the profile's baud rate would see it
                          sent at ``value`` baud (default half the profile's): garbage
========================  ============================================================

Library use (e.g. a fault-injection suite)::

    faults = [Fault("bad_checksum", at=(3,)), Fault("split", probability=0.5)]
    VirtualAnalyzer(profile, faults=faults, ...)

The command line takes the same as text: ``bad_checksum:0.05`` (probability),
``unplug@10`` (at measurement 10), ``stall@2,5=3`` (at 2 and 5, 3 s).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from bia_acq.drivers import SerialSettings
from bia_acq.errors import ConfigError

log = logging.getLogger(__name__)

KINDS = (
    "split",
    "drop",
    "flip",
    "garbage",
    "bad_checksum",
    "truncate",
    "stall",
    "unplug",
    "wrong_baud",
)
#: faults after which the frame is no longer what was sent
DAMAGING = frozenset({"drop", "flip", "bad_checksum", "truncate", "wrong_baud"})

_SYNTAX = re.compile(
    r"^(?P<kind>[a-z_]+)(?:(?::(?P<p>[0-9.eE+-]+))|(?:@(?P<at>[0-9, ]+)))(?:=(?P<v>[0-9.eE+-]+))?$"
)


@dataclass(frozen=True)
class Fault:
    """One kind of fault, on the frames numbered ``at`` and/or with ``probability``."""

    kind: str
    probability: float = 0.0
    at: tuple[int, ...] = ()
    value: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(
                f"unknown fault {self.kind!r}", key="--fault", fix=f"use one of: {', '.join(KINDS)}"
            )
        if not 0.0 <= self.probability <= 1.0:
            raise ConfigError(
                f"fault {self.kind}: probability {self.probability} is not between 0 and 1",
                key="--fault",
                fix="e.g. bad_checksum:0.05",
            )
        if any(n < 1 for n in self.at):
            raise ConfigError(f"fault {self.kind}: measurement numbers start at 1", key="--fault")
        if self.value is not None and not self.value > 0:
            raise ConfigError(
                f"fault {self.kind}: value after '=' must be more than 0", key="--fault"
            )

    @classmethod
    def parse(cls, text: str) -> Fault:
        """``KIND:PROBABILITY[=VALUE]`` or ``KIND@N[,N...][=VALUE]``."""
        m = _SYNTAX.match(text.strip())
        if not m:
            raise ConfigError(
                f"cannot read fault {text!r}",
                key="--fault",
                fix="write KIND:PROBABILITY or KIND@N[,N...], optionally =VALUE, "
                "e.g. bad_checksum:0.05, unplug@10=3",
            )
        try:
            p = float(m["p"]) if m["p"] else 0.0
            at = tuple(int(n) for n in m["at"].replace(" ", "").split(",") if n) if m["at"] else ()
            v = float(m["v"]) if m["v"] else None
        except ValueError:
            raise ConfigError(
                f"cannot read the numbers in fault {text!r}", key="--fault", fix="e.g. stall@3=2"
            ) from None
        return cls(m["kind"], probability=p, at=at, value=v)

    def fires(self, n: int, rng: np.random.Generator) -> bool:
        if n in self.at:
            return True
        return self.probability > 0 and bool(rng.random() < self.probability)


def bits_per_char(s: SerialSettings) -> float:
    """Start bit + data bits + parity bit + stop bits."""
    return 1 + s.bytesize + (0 if s.parity == "N" else 1) + float(s.stopbits)


def uart_resample(data: bytes, s: SerialSettings, sent_baud: float) -> bytes:
    """What a UART set to ``s.baudrate`` receives when the device sends at ``sent_baud``.

    The sender's bits (start 0, data LSB first, parity, stop 1, idle 1) are
    sampled by a receiver that waits for a falling edge, then samples the middle
    of each of its own bit times, as a UART does; framing errors are ignored.
    """
    bits: list[int] = []
    for byte in data:
        d = [(byte >> i) & 1 for i in range(s.bytesize)]
        par: list[int] = []
        if s.parity in ("E", "O"):
            ones = sum(d) % 2
            par = [ones if s.parity == "E" else 1 - ones]
        elif s.parity == "M":
            par = [1]
        elif s.parity == "S":
            par = [0]
        bits += [0, *d, *par] + [1] * int(np.ceil(float(s.stopbits)))
    bits += [1] * 4
    line = np.repeat(np.asarray(bits, dtype=np.int8), 16)  # 16 samples per sent bit
    samples_per_bit = 16 * sent_baud / s.baudrate  # receiver bit in sender samples
    out = bytearray()
    t = 0.0
    nbits = s.bytesize
    while True:
        i = int(t)
        while i < len(line) and line[i] == 1:
            i += 1
        if i + samples_per_bit * (nbits + 1.5) >= len(line):
            break
        v = 0
        for b in range(nbits):
            v |= int(line[int(i + samples_per_bit * (1.5 + b))]) << b
        out.append(v)
        t = i + samples_per_bit * (nbits + 1 + (0 if s.parity == "N" else 1) + 0.5)
    return bytes(out)


@dataclass
class Plan:
    """How one frame goes out: (bytes, pause after) pieces, an unplug first."""

    pieces: list[tuple[bytes, float]] = field(default_factory=list)
    unplug_s: float = 0.0
    fired: list[str] = field(default_factory=list)
    intact: bool = True


_CHECKSUM_TAIL = re.compile(rb"(CS,)([0-9A-Fa-f]{2})(\}?\r?\n?)$")


def _bad_checksum(frame: bytes, rng: np.random.Generator) -> bytes:
    m = _CHECKSUM_TAIL.search(frame)
    if m:
        old = int(m[2], 16)
        new = (old + int(rng.integers(1, 256))) % 256
        return frame[: m.start(2)] + f"{new:02X}".encode() + frame[m.end(2) :]
    # no checksum field this module knows: change the last byte before the line end
    body = frame.rstrip(b"\r\n")
    if not body:
        return frame
    last = body[-1] ^ 0x01
    return body[:-1] + bytes([last]) + frame[len(body) :]


class FaultEngine:
    """Decides, per frame, which faults fire and what goes on the line."""

    def __init__(
        self,
        faults: Sequence[Fault],
        settings: SerialSettings,
        rng: np.random.Generator,
        *,
        silence_s: float = 2.0,
    ) -> None:
        self.faults = list(faults)
        self.settings = settings
        self.rng = rng
        self.silence_s = silence_s
        self.count: dict[str, int] = {}

    def plan(self, n: int, frame: bytes) -> Plan:
        rng = self.rng
        plan = Plan()
        fired = [f for f in self.faults if f.fires(n, rng)]
        data = frame
        prefix = b""
        for f in fired:
            k = f.kind
            detail = ""
            if k == "drop" and data:
                i = int(rng.integers(len(data)))
                data = data[:i] + data[i + 1 :]
                detail = f"byte {i} left out"
            elif k == "flip" and data:
                i, bit = int(rng.integers(len(data))), int(rng.integers(8))
                data = data[:i] + bytes([data[i] ^ (1 << bit)]) + data[i + 1 :]
                detail = f"bit {bit} of byte {i} flipped"
            elif k == "bad_checksum":
                data = _bad_checksum(data, rng)
            elif k == "truncate" and len(data) > 1:
                cut = int(rng.integers(1, len(data)))
                data = data[:cut]
                detail = f"cut after {cut} of {len(frame)} bytes"
            elif k == "wrong_baud":
                baud = f.value or self.settings.baudrate / 2
                data = uart_resample(data, self.settings, baud)
                detail = f"sent at {baud:g} baud, read at {self.settings.baudrate}"
            elif k == "garbage":
                size = int(f.value) if f.value else int(rng.integers(8, 65))
                prefix += rng.integers(0, 256, size, dtype=np.uint8).tobytes()
                detail = f"{size} bytes"
            elif k == "unplug":
                plan.unplug_s = f.value or 2.0
                detail = f"for {plan.unplug_s:g} s"
            elif k == "stall":
                detail = f"{f.value or 0.5:g} s"
            elif k == "split":
                detail = "in pieces"
            plan.fired.append(k)
            self.count[k] = self.count.get(k, 0) + 1
            log.warning("fault %s on measurement %d%s", k, n, f" ({detail})" if detail else "")
        pieces = [data]
        for f in fired:
            if f.kind == "split" and len(data) > 1:
                parts = int(f.value) if f.value else int(rng.integers(2, 7))
                cuts = sorted(
                    int(c)
                    for c in rng.choice(
                        np.arange(1, len(data)), min(parts, len(data)) - 1, replace=False
                    )
                )
                pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        pauses = [float(rng.uniform(0.02, 0.08)) if len(pieces) > 1 else 0.0 for _ in pieces]
        pauses[-1] = 0.0
        for f in fired:
            if f.kind == "stall":
                stall = f.value or 0.5
                whole = b"".join(pieces)
                mid = len(whole) // 2
                pieces, pauses = [whole[:mid], whole[mid:]], [stall, 0.0]
                if stall >= self.silence_s:
                    plan.intact = False
        if prefix:
            pieces, pauses = [prefix, *pieces], [0.0, *pauses]
        plan.pieces = list(zip(pieces, pauses, strict=True))
        if any(k in DAMAGING for k in plan.fired) and data != frame:
            plan.intact = False
        return plan
