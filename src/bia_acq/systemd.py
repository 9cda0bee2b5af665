"""A small systemd notify client: READY, STATUS, WATCHDOG, RELOADING, STOPPING.

The service manager passes ``NOTIFY_SOCKET`` (a path, or ``@name`` for an
abstract socket) to a ``Type=notify`` unit; each message is one datagram of
``KEY=VALUE`` lines (sd_notify(3)). ``WATCHDOG_USEC`` (and ``WATCHDOG_PID``)
give the watchdog period when the unit sets ``WatchdogSec=``
(sd_watchdog_enabled(3)). Outside systemd every call is a no-op, so the same
code runs in a terminal, in tests and under the service manager.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time

log = logging.getLogger(__name__)


class Notifier:
    """Sends sd_notify messages; does nothing when ``NOTIFY_SOCKET`` is unset."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.address: str | None = env.get("NOTIFY_SOCKET") or None
        if self.address and self.address.startswith("@"):
            self.address = "\0" + self.address[1:]
        self.watchdog_s: float | None = None
        usec = env.get("WATCHDOG_USEC")
        pid = env.get("WATCHDOG_PID")
        if usec and (not pid or pid == str(os.getpid())):
            with contextlib.suppress(ValueError):
                self.watchdog_s = int(usec) / 1e6 or None
        self._sock: socket.socket | None = None
        self._last_status = ""
        self._last_watchdog = 0.0

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *lines: str) -> bool:
        """Send one datagram; False (and one debug line) if it could not be sent."""
        if self.address is None:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto("\n".join(lines).encode("utf-8"), self.address)
        except OSError as exc:
            log.debug("sd_notify to %r failed: %s", self.address, exc)
            return False
        return True

    def ready(self, status: str = "") -> None:
        self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> None:
        """STATUS=text, sent only when it changed."""
        text = text.replace("\n", " ")
        if text != self._last_status:
            self._last_status = text
            self.notify(f"STATUS={text}")

    def watchdog(self) -> None:
        self._last_watchdog = time.monotonic()
        self.notify("WATCHDOG=1")

    def watchdog_due(self) -> bool:
        """True when half the watchdog period passed since the last feed."""
        if self.watchdog_s is None:
            return False
        return time.monotonic() - self._last_watchdog >= self.watchdog_s / 2

    def reloading(self) -> None:
        # systemd >= 253 wants MONOTONIC_USEC with RELOADING=1 (Type=notify-reload)
        self.notify(
            "RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}"
        )

    def stopping(self) -> None:
        self.notify("STOPPING=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
