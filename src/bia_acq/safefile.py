"""Writing the files a person takes away (exports, reports): owner-only, whole or not at all.

:func:`write_private` writes to a new temporary file beside the target (created
exclusively, never through a symlink), sets its mode to 0600 on the open file
(so neither the umask nor an existing target's mode matter), syncs it, and
renames it over the target. A symlink at the target is replaced, never
followed; a reader sees the old file or the new one, never half of it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from bia_acq.errors import BiaError

MODE = 0o600


def write_private(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Replace ``path`` with ``data`` (text is UTF-8), owner-only; BiaError on failure."""
    target = Path(path)
    if target.is_dir() and not target.is_symlink():
        raise BiaError(f"cannot write {target}: it is a folder (name a file)")
    raw = data.encode("utf-8") if isinstance(data, str) else data
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(tmp, flags, MODE)
    except OSError as exc:
        raise BiaError(f"cannot write {target}: {exc.strerror}") from None
    try:
        try:
            os.fchmod(fd, MODE)
            view = memoryview(raw)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise BiaError(f"cannot write {target}: {exc.strerror}") from None
    with contextlib.suppress(OSError):  # the rename itself survives a power cut
        dfd = os.open(target.parent if str(target.parent) else ".", os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
