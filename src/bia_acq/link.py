"""The serial link: opens a port, reads bytes in chunks. Knows nothing about content.

Ports open through ``serial.serial_for_url`` (device paths, ``/dev/serial/by-id``
links, ``socket://``, ``rfc2217://``, ``loop://``, ``spy://``) with
``exclusive=True`` so two processes never share a port. Reads are chunked
(``read(in_waiting or 1)``): pyserial's ``readline`` is about 200× slower and
mishandles timeouts.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Protocol

import serial

from bia_acq.drivers import SerialSettings
from bia_acq.errors import DeviceDisconnected, PortInUse, TransportError

log = logging.getLogger(__name__)


def open_serial(url: str, s: SerialSettings, *, timeout_s: float) -> serial.SerialBase:
    """Open ``url`` (a device path or any pyserial URL) exclusively with line settings ``s``.

    PortInUse when another process holds it (pyserial's flock fails), TransportError
    for anything else; both say which port.
    """
    try:
        port = serial.serial_for_url(
            url,
            do_not_open=True,
            baudrate=s.baudrate,
            bytesize=s.bytesize,
            parity=s.parity,
            stopbits=s.stopbits,
            xonxoff=s.xonxoff,
            rtscts=s.rtscts,
            timeout=timeout_s,
            write_timeout=2.0,
        )
        if hasattr(port, "exclusive"):
            port.exclusive = True
        port.open()
    except serial.SerialException as exc:
        if "exclusively lock" in str(exc):  # pyserial's flock(LOCK_EX | LOCK_NB) failed
            raise PortInUse(
                f"{url} is in use by another process (close the other program)"
            ) from exc
        raise TransportError(f"cannot open {url}: {exc}") from exc
    except (OSError, ValueError) as exc:
        raise TransportError(f"cannot open {url}: {exc}") from exc
    return port


class Transport(Protocol):
    """A byte pipe a port reader reads from: :class:`Link`, or a fake in tests.

    ``open`` raises PortInUse or TransportError (retried with backoff); ``read``
    returns the bytes that arrived or b"" after a short timeout, and raises
    DeviceDisconnected when the other end is gone; ``waiting`` is how many bytes
    are received and not read yet (0 if unknown).
    """

    def open(self) -> None: ...
    def read(self) -> bytes: ...
    def waiting(self) -> int: ...
    def write(self, data: bytes) -> None: ...
    def close(self) -> None: ...


class Link:
    """The serial :class:`Transport`: a pyserial port opened by URL."""

    def __init__(self, url: str, settings: SerialSettings, *, read_timeout_s: float = 0.1) -> None:
        self.url = url
        self.settings = settings
        self.read_timeout_s = read_timeout_s
        self._port: serial.SerialBase | None = None

    @property
    def is_open(self) -> bool:
        return self._port is not None

    def open(self) -> None:
        self._port = open_serial(self.url, self.settings, timeout_s=self.read_timeout_s)
        log.debug("opened %s (%s)", self.url, self.settings.describe())

    def read(self) -> bytes:
        """Bytes that arrived, or b"" after the read timeout. DeviceDisconnected if gone."""
        port = self._port
        if port is None:
            raise DeviceDisconnected(f"{self.url} is not open")
        try:
            data = port.read(int(getattr(port, "in_waiting", 0)) or 1)
        except (serial.SerialException, OSError) as exc:
            raise DeviceDisconnected(f"{self.url} disconnected: {exc}") from exc
        return bytes(data)

    def waiting(self) -> int:
        """Bytes received and not read yet (0 if unknown or not open)."""
        try:
            return int(getattr(self._port, "in_waiting", 0) or 0)
        except (serial.SerialException, OSError):
            return 0

    def write(self, data: bytes) -> None:
        port = self._port
        if port is None:
            raise DeviceDisconnected(f"{self.url} is not open")
        try:
            port.write(data)
        except (serial.SerialException, OSError) as exc:
            raise DeviceDisconnected(f"{self.url} disconnected: {exc}") from exc

    def close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                port.close()
