"""One exception tree for everything bia-acq reports.

Every error carries enough context for a person to act on it: where (file, key,
port, byte offset), what is wrong, and what to do. The CLI prints ``str(error)``
as one line and exits with the error's ``exit_code``; no traceback for user
mistakes.
"""

from __future__ import annotations


class BiaError(Exception):
    """Base of every error bia-acq raises on purpose."""

    exit_code = 1


class ConfigError(BiaError):
    """A configuration file (or command-line setting) is wrong.

    ``str()`` gives ``FILE:LINE: KEY: problem; expected ...; fix`` on one line.
    """

    exit_code = 2

    def __init__(
        self,
        problem: str,
        *,
        file: str | None = None,
        key: str | None = None,
        line: int | None = None,
        fix: str | None = None,
    ) -> None:
        self.problem = problem
        self.file = file
        self.key = key
        self.line = line
        self.fix = fix
        where = ""
        if file:
            where = f"{file}:{line}: " if line else f"{file}: "
        if key:
            where += f"{key}: "
        text = f"{where}{problem}"
        if fix:
            text += f" ({fix})"
        super().__init__(text)


class DriverNotAvailable(BiaError):
    """A driver profile or protocol codec is unknown or failed to load."""

    exit_code = 2


class TransportError(BiaError):
    """The serial link could not be opened or used."""


class DeviceDisconnected(TransportError):
    """The device went away while reading (pulled USB cable, closed pty)."""


class PortInUse(TransportError):
    """Another process holds the port (it is opened exclusively)."""


class DeviceTimeout(TransportError):
    """The device did not answer in time."""


class FrameError(BiaError):
    """A frame could not be decoded. ``offset`` is the byte offset in the frame."""

    def __init__(self, reason: str, offset: int | None = None) -> None:
        self.reason = reason
        self.offset = offset
        where = f" at byte {offset}" if offset is not None else ""
        super().__init__(f"{reason}{where}")


class StorageError(BiaError):
    """The database cannot be opened or written."""
