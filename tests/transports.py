"""Fake byte pipes for port readers (``PortReader(..., transport=...)``), beside the
real-pty tests: deliver a byte string in random pieces, drop bytes at random, pull the
cable at a given offset. Like bellows' fake transports; no serial port involved."""

from __future__ import annotations

import random
import threading
import time

from bia_acq.errors import DeviceDisconnected


class LossyTransport:
    """Sends ``data`` once, in pieces of 1..``max_piece`` bytes, each byte lost with
    probability ``drop``; raises DeviceDisconnected once when ``disconnect_at`` bytes
    are sent. ``delivered`` is every byte the reader got, in order."""

    def __init__(
        self,
        data: bytes,
        *,
        seed: int = 0,
        drop: float = 0.0,
        max_piece: int = 64,
        disconnect_at: int | None = None,
    ) -> None:
        self.data = data
        self.rng = random.Random(seed)
        self.drop = drop
        self.max_piece = max_piece
        self.disconnect_at = disconnect_at
        self.pos = 0
        self.opens = 0
        self.delivered = bytearray()
        self.lost: list[int] = []  # offsets in ``data`` of the bytes dropped
        self.done = threading.Event()  # set once every byte is sent
        self._open = False

    def open(self) -> None:
        self.opens += 1
        self._open = True

    def read(self) -> bytes:
        if not self._open:
            raise DeviceDisconnected("fake: not open")
        if self.disconnect_at is not None and self.pos >= self.disconnect_at:
            self.disconnect_at = None
            raise DeviceDisconnected("fake: cable pulled")
        if self.pos >= len(self.data):
            self.done.set()
            time.sleep(0.01)  # a read timeout with nothing received
            return b""
        end = min(len(self.data), self.pos + self.rng.randint(1, self.max_piece))
        if self.disconnect_at is not None:
            end = min(end, self.disconnect_at)
        out = bytearray()
        for i in range(self.pos, end):
            if self.drop and self.rng.random() < self.drop:
                self.lost.append(i)
            else:
                out.append(self.data[i])
        self.pos = end
        self.delivered += out
        return bytes(out)

    def waiting(self) -> int:
        return 0

    def write(self, data: bytes) -> None:
        if not self._open:
            raise DeviceDisconnected("fake: not open")

    def close(self) -> None:
        self._open = False
