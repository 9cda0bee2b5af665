"""Where a simulated analyzer's bytes go: a new pseudo-terminal, a real serial port, a TCP socket.

Each endpoint is a byte pipe that knows nothing about content (the transport
layer of DESIGN.md). It answers three questions for the sender: is a reader
there (:meth:`Endpoint.reader_present`), take these bytes (:meth:`write`), and
what did the reader send us (:meth:`read`, for polled devices' dialogues); and
it can be pulled out and plugged back in (:meth:`unplug`, :meth:`replug`).

* :class:`PtyEndpoint` holds the master side of a pty; ``bia-acq run`` opens
  the slave like ``/dev/ttyUSB0``. A hang-up on the master (POLLHUP) means no
  process has the slave open: like a real analyzer that only talks while
  something listens, nothing is sent into a buffer the reader would flush. A
  reader is *ready* (:meth:`Endpoint.reader_ready`) once it has flushed its input,
  as pyserial does last in ``open()``: the master runs in packet mode (TIOCPKT,
  pty(7)), where the kernel reports that flush as TIOCPKT_FLUSHREAD.
  Unplugging closes the master (the reader sees the device go away, as with a
  pulled USB cable: pyserial's ``test/test_pty.py`` habit) and replugging
  makes a new pty behind the same ``--link``.
* :class:`SerialEndpoint` opens a real port (a USB adapter looped to the PC
  under test) with the profile's line settings. A serial line cannot tell
  whether anyone listens, so it always reports a reader.
* :class:`TcpEndpoint` listens (loopback by default) and serves one client at a
  time, which ``socket://host:port`` in a configuration connects to.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import select
import socket
import struct
import termios
import threading
import time
import tty
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

import serial

from bia_acq.drivers import SerialSettings
from bia_acq.errors import TransportError
from bia_acq.link import open_serial

log = logging.getLogger(__name__)


class Endpoint(ABC):
    """A byte pipe to the reader under test."""

    #: what to print first (device path or socket URL); set by :meth:`open`
    address: str = ""

    @abstractmethod
    def open(self) -> str:
        """Create or open the endpoint; return the address a reader connects to."""

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def reader_present(self) -> bool:
        """True while a reader is connected (and would see what is written)."""

    def reader_ready(self) -> bool:
        """True once a present reader has finished opening, so that it keeps what is sent
        from now on (pyserial discards its input at the end of ``open()``)."""
        return self.reader_present()

    @abstractmethod
    def _write_some(self, data: memoryview) -> int:
        """Write what the OS takes now; 0 if it would block; DisconnectedError if gone."""

    def write(self, data: bytes, stop: threading.Event) -> bool:
        """Write all of ``data``; False if the reader went away (or stop was set) first."""
        view = memoryview(data)
        while view and not stop.is_set():
            try:
                n = self._write_some(view)
            except ReaderGone:
                return False
            if n:
                view = view[n:]
            else:
                stop.wait(0.005)
        return not view

    def read(self) -> bytes:
        """Bytes the reader sent since the last call (b"" if none)."""
        return b""

    @abstractmethod
    def drain(self, timeout_s: float = 1.0) -> None:
        """Wait (up to ``timeout_s``) until the reader has taken what was written."""

    def unplug(self) -> None:
        """Go away as a pulled cable does."""
        self.close()

    def replug(self) -> str:
        """Come back (at the same link, port or address)."""
        return self.open()

    def __enter__(self) -> Endpoint:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _wait_empty(
    fd: int | None, request: int, timeout_s: float, before: Callable[[], object] | None = None
) -> None:
    """Wait until the kernel queue that ioctl ``request`` (TIOCOUTQ, FIONREAD) counts on
    ``fd`` is empty, or ``timeout_s`` has passed; ``before`` runs before each look."""
    deadline = time.monotonic() + timeout_s
    while fd is not None and time.monotonic() < deadline:
        try:
            if before is not None:
                before()
            queued = struct.unpack("i", fcntl.ioctl(fd, request, b"\0\0\0\0"))[0]
        except OSError:
            return
        if queued == 0:
            return
        time.sleep(0.01)


def _present_for(since: float | None, seconds: float) -> bool:
    return since is not None and time.monotonic() - since >= seconds


def _wait_outq(fd: int | None, timeout_s: float) -> None:
    """Wait until the kernel queue of ``fd`` towards the reader is empty (TIOCOUTQ)."""
    _wait_empty(fd, termios.TIOCOUTQ, timeout_s)


class ReaderGone(Exception):
    """The reader closed its side while we were writing."""


#: How long a reader that gives no sign of having finished opening is waited for before
#: sending starts anyway: a pty reader that never flushes its input (``cat``, a terminal
#: program; pyserial's flush is seen at once), or a TCP client (pyserial's ``socket://``
#: discards what arrived at the end of ``open()``, which a server cannot see).
UNFLUSHED_READER_S = 1.0


class PtyEndpoint(Endpoint):
    """A new pseudo-terminal; ``link`` (optional) is a symlink kept pointing at it."""

    def __init__(self, link: str | os.PathLike[str] | None = None) -> None:
        self.link = Path(link) if link else None
        self._master: int | None = None
        self.path = ""
        self._inbox = bytearray()
        self._flushed = False  # the present reader flushed its input (it is open)
        self._present_since: float | None = None

    def open(self) -> str:
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no CR/LF translation, even before a reader sets it
        self.path = self.address = os.ttyname(slave)
        os.close(slave)  # readers open the path; the master then sees them come and go
        os.set_blocking(master, False)
        # packet mode: each read of the master is a status byte (the slave's input flushed:
        # TIOCPKT_FLUSHREAD) or 0 followed by what the reader wrote
        fcntl.ioctl(master, termios.TIOCPKT, struct.pack("i", 1))
        self._master = master
        self._inbox.clear()
        self._flushed, self._present_since = False, None
        if self.link is not None:
            tmp = self.link.with_name(self.link.name + ".tmp")
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(self.path)
            tmp.replace(self.link)
        return self.path

    def close(self) -> None:
        if self._master is not None:
            self._wait_read(5.0)  # a cable is not cut with bytes still on it
            self._close_master()
        if self.link is not None and self.link.is_symlink() and os.readlink(self.link) == self.path:
            self.link.unlink()

    def _close_master(self) -> None:
        if self._master is not None:
            os.close(self._master)
            self._master = None

    def drain(self, timeout_s: float = 1.0) -> None:
        _wait_outq(self._master, timeout_s)
        self._wait_read(timeout_s)

    def _wait_read(self, timeout_s: float) -> None:
        """Wait until a reader has read what was sent: the slave's input queue (shared by
        every opener, FIONREAD) is empty. Closing the master throws away what is unread,
        which a busy reader may not have taken yet; a device's bytes would still arrive."""
        if not self.path or not self.reader_present():
            return
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError:
            return
        try:
            # a pty's write reaches the slave's queue later, from a kernel worker, and
            # FIONREAD does not wait for it (0 right after a write); poll() does (n_tty_poll)
            ready = select.poll()
            ready.register(fd, select.POLLIN)
            _wait_empty(fd, termios.FIONREAD, timeout_s, before=lambda: ready.poll(0))
        finally:
            os.close(fd)

    def _pump(self) -> None:
        """Take what the master has: the reader's bytes, and the flush reports."""
        if self._master is None:
            return
        with contextlib.suppress(OSError):  # EAGAIN: nothing; EIO: no reader
            while packet := os.read(self._master, 4097):
                if packet[0] == termios.TIOCPKT_DATA:
                    self._inbox += packet[1:]
                elif packet[0] & termios.TIOCPKT_FLUSHREAD:
                    self._flushed = True

    def reader_present(self) -> bool:
        if self._master is None:
            return False
        self._pump()  # first: a flush reported before the look below is this reader's
        p = select.poll()
        p.register(self._master, select.POLLHUP)
        if p.poll(0):
            self._flushed, self._present_since = False, None
            return False
        if self._present_since is None:
            self._present_since = time.monotonic()
        return True

    def reader_opened(self) -> bool:
        """True once the present reader has flushed its input, as pyserial's ``open()``
        does last: from then on it keeps every byte sent. (A reader that closes and opens
        again between two looks, never seen gone, counts as the one that flushed.)"""
        return self.reader_present() and self._flushed

    def reader_ready(self) -> bool:
        return self.reader_opened() or _present_for(self._present_since, UNFLUSHED_READER_S)

    def read(self) -> bytes:
        self._pump()
        out, self._inbox = bytes(self._inbox), bytearray()
        return out

    def _write_some(self, data: memoryview) -> int:
        if self._master is None:
            raise ReaderGone
        try:
            return os.write(self._master, data)
        except BlockingIOError:
            select.select([], [self._master], [], 0.05)
            return 0
        except OSError as exc:
            if exc.errno == errno.EIO:  # reader went away mid-frame
                raise ReaderGone from exc
            raise


class SerialEndpoint(Endpoint):
    """A real serial port opened with the profile's line settings."""

    def __init__(self, device: str, settings: SerialSettings) -> None:
        self.device = device
        self.settings = settings
        self._port: serial.SerialBase | None = None

    def open(self) -> str:
        s = self.settings
        try:
            self._port = open_serial(self.device, s, timeout_s=0)
        except TransportError as exc:
            raise TransportError(
                f"{exc} (is it plugged in, not used by another program, and are you in group"
                " dialout?)"
            ) from exc
        self.address = self.device
        log.info("sending on %s (%s)", self.device, s.describe())
        return self.device

    def close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                port.close()

    def drain(self, timeout_s: float = 1.0) -> None:
        if self._port is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                self._port.flush()  # tcdrain: until the UART has sent it all

    def reader_present(self) -> bool:
        return self._port is not None

    def read(self) -> bytes:
        if self._port is None:
            return b""
        try:
            return bytes(self._port.read(int(getattr(self._port, "in_waiting", 0)) or 0))
        except (serial.SerialException, OSError):
            return b""

    def _write_some(self, data: memoryview) -> int:
        if self._port is None:
            raise ReaderGone
        try:
            return int(self._port.write(bytes(data)) or 0)
        except serial.SerialTimeoutException as exc:
            # the line did not drain (flow control held by the far end): the frame is lost
            log.warning("serial port %s: write timed out (flow control held?)", self.device)
            raise ReaderGone from exc
        except (serial.SerialException, OSError) as exc:
            raise TransportError(f"serial port {self.device} failed: {exc}") from exc


def parse_tcp(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` or ``PORT`` (host defaults to loopback)."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    host = host.strip("[]") or "127.0.0.1"
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise ValueError(f"expected HOST:PORT with a port 0-65535, got {text!r}")
    return host, number


class TcpEndpoint(Endpoint):
    """A TCP server for one client at a time (``socket://host:port``)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._listener: socket.socket | None = None
        self._client: socket.socket | None = None
        self._inbox = bytearray()
        self._accepted_at: float | None = None

    def open(self) -> str:
        lst = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            lst.bind((self.host, self.port))
        except OSError as exc:
            lst.close()
            raise TransportError(
                f"cannot listen on {self.host}:{self.port}: {exc.strerror} "
                "(is another simulator using that port? pick another)"
            ) from exc
        lst.listen(1)
        lst.setblocking(False)
        self._listener = lst
        self.port = lst.getsockname()[1]  # the real port when 0 was asked
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.address = f"socket://{host}:{self.port}"
        return self.address

    def drain(self, timeout_s: float = 1.0) -> None:
        _wait_outq(self._client.fileno() if self._client is not None else None, timeout_s)

    def _drop_client(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def close(self) -> None:
        self._drop_client()
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def reader_present(self) -> bool:
        if self._client is None and self._listener is not None:
            try:
                conn, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return False
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._client, self._accepted_at = conn, time.monotonic()
        if self._client is None:
            return False
        self._pump()
        return self._client is not None

    def reader_ready(self) -> bool:
        return self.reader_present() and _present_for(self._accepted_at, UNFLUSHED_READER_S)

    def _pump(self) -> None:
        """Take what the client sent; notice a closed connection."""
        assert self._client is not None
        try:
            while True:
                chunk = self._client.recv(4096)
                if not chunk:
                    self._drop_client()
                    return
                self._inbox += chunk
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop_client()

    def read(self) -> bytes:
        if self._client is not None:
            self._pump()
        out, self._inbox = bytes(self._inbox), bytearray()
        return out

    def _write_some(self, data: memoryview) -> int:
        if self._client is None:
            raise ReaderGone
        try:
            return self._client.send(data)
        except (BlockingIOError, InterruptedError):
            select.select([], [self._client], [], 0.05)
            return 0
        except OSError as exc:
            self._drop_client()
            raise ReaderGone from exc
