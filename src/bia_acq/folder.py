"""Folder sources: result files an analyzer's PC software exports (InBody's LookinBody CSV).

A :class:`FolderReader` thread polls one folder. Each file matching the
pattern is read from where the journal left it: the bytes go through the
profile's framer and leave as the same :class:`~bia_acq.acquire.Batch` a serial
port produces, so the writer journals, decodes, computes and stores them on
the same path. Each batch carries a :class:`~bia_acq.store.writer.FileCursor`
that the writer commits in the journal's transaction: after a restart the
reader resumes at that byte offset and no row is ingested twice.

Rules:

* files are opened read-only; nothing in the folder is moved, renamed or deleted;
* a file is known by its path and its identity (device, inode); a file whose
  identity changes (replaced by a new export) or that shrinks is read again
  from its start, and rows already stored are recognised as duplicates;
* a last line without its line end is taken only once the file has not
  changed for a whole poll interval (the exporting program may still write);
* after a restart the framer's state is rebuilt by feeding it the already
  journaled bytes again (their chunks are dropped), e.g. the CSV header.
"""

from __future__ import annotations

import errno
import hashlib
import io
import logging
import os
import queue
import stat
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from bia_acq.acquire import Batch, Ingest, PortRuntime
from bia_acq.config import Config, FolderConfig
from bia_acq.errors import BiaError, FrameError
from bia_acq.protocols.base import Chunk, Framer, is_container
from bia_acq.source import Item, Source
from bia_acq.store.writer import FileCursor, Store

log = logging.getLogger(__name__)

READ_BLOCK = 1 << 20


@dataclass
class _File:
    st_dev: int
    st_ino: int
    offset: int  # bytes journaled (a chunk holds them)
    fed: int = 0  # bytes given to the framer
    framer: Framer | None = None
    #: (size, mtime) last seen and when it last changed: the file is read once quiet
    seen_sig: tuple[int, int] | None = None
    changed_at: float = 0.0
    #: (size, mtime) at which the bytes before ``fed`` were last checked, and their hash
    checked_sig: tuple[int, int] | None = None
    prefix: Any = field(default_factory=hashlib.sha256)
    #: SHA-256 of every chunk this file gave: a file rewritten in place is read again
    #: from its start and only chunks not given before are journaled
    given: set[bytes] = field(default_factory=set)


class FolderReader(Source):
    """Polls one folder and hands new bytes of its files to the writer."""

    kind = "folder"
    thread_prefix = "folder"
    last_what = "last file row"
    log = log

    def __init__(
        self,
        folder: FolderConfig,
        out: queue.Queue[Item],
        stop: threading.Event | None = None,
        cursors: dict[str, FileCursor] | None = None,
    ) -> None:
        # a poll interval may pass between heartbeats
        super().__init__(folder.name, out, stop, slack_s=folder.poll_seconds)
        self.folder = folder
        self.codec = folder.profile.codec()
        self.files: dict[str, _File] = {
            path: _File(c.st_dev, c.st_ino, c.offset_bytes) for path, c in (cursors or {}).items()
        }
        self.settle_s = (
            folder.settle_seconds if folder.settle_seconds is not None else folder.poll_seconds
        )
        self._refused: set[str] = set()
        #: workbooks the codec could not read, with the (size, mtime) it failed on
        self._unreadable: dict[str, tuple[int, int]] = {}

    def label(self) -> str:
        return f"folder {self.source_name}"

    def run(self) -> None:
        while not self.stopping.is_set():
            self.heartbeat = time.monotonic()
            try:
                self.scan()
            except OSError as exc:
                self._set_state("waiting", f"{exc}; retrying every {self.folder.poll_seconds:g} s")
            self.stopping.wait(self.folder.poll_seconds)
        self._set_state("stopped")

    def scan(self) -> None:
        """One pass over the folder (the thread calls this every poll interval)."""
        path = self.folder.path
        if not path.is_dir():
            self._set_state("waiting", f"folder {path} does not exist (yet)")
            return
        self._set_state("watching", f"{path}, files {self.folder.pattern}")
        for p in sorted(path.glob(self.folder.pattern)):
            if self.stopping.is_set():
                return
            self._check(p)

    def _refuse(self, key: str, what: str) -> None:
        if key not in self._refused:  # once per path; no file name (it may carry an ID)
            self._refused.add(key)
            log.warning(
                "folder %s: %s is not read (only regular files inside the folder are)",
                self.folder.name,
                what,
            )

    def _check(self, p: Path) -> None:
        key = str(p)
        try:  # never through a symlink: what it points to may be anywhere
            fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                self._refuse(key, "a symlink")
                return
            if exc.errno == errno.ENOENT:  # gone since the listing
                return
            raise
        with os.fdopen(fd, "rb") as fh:  # read only: the clinic's files are never changed
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                if not stat.S_ISDIR(st.st_mode):
                    self._refuse(key, "a file that is not a regular file")
                return
            self._read(key, fh, st)

    def _read(self, key: str, fh: BinaryIO, st: os.stat_result) -> None:
        f = self.files.get(key)
        if f is None or (f.st_dev, f.st_ino) != (st.st_dev, st.st_ino):
            if f is not None:
                self._from_start("replaced")
            f = self.files[key] = _File(st.st_dev, st.st_ino, 0)
        now = time.monotonic()
        sig = (st.st_size, st.st_mtime_ns)
        if sig != f.seen_sig:  # still being written, perhaps: wait until it is quiet
            f.seen_sig, f.changed_at = sig, now
            return
        if now - f.changed_at < self.settle_s:
            return
        size = st.st_size
        if is_container(fh.read(4)):  # an .xlsx workbook: its sheet as the codec's CSV text
            text = self._transcoded(key, fh, sig)
            if text is None:
                return
            fh, size = io.BytesIO(text), len(text)
        fh.seek(0)
        if size < f.offset:
            self._from_start("shortened")
            f = self.files[key] = _File(st.st_dev, st.st_ino, 0, seen_sig=sig, changed_at=now)
        if f.framer is None:
            f.framer = self.codec.framer()
            if f.offset:  # rebuild state; chunks already journaled
                head = fh.read(f.offset)
                f.prefix.update(head)
                f.framer.feed(head)
                f.framer.flush()  # a final line taken earlier is journaled too
            f.fed = f.offset
            f.checked_sig = sig
        if f.checked_sig != sig and f.fed:
            # changed since the bytes before the cursor were checked: same bytes?
            fh.seek(0)
            again = hashlib.sha256(fh.read(f.fed))
            if again.digest() != f.prefix.digest():
                log.warning(
                    "folder %s: a file was rewritten in place; reading it from its start "
                    "(rows already journaled are not journaled again)",
                    self.folder.name,
                )
                f.framer, f.fed, f.offset = self.codec.framer(), 0, 0
                f.prefix = hashlib.sha256()
        f.checked_sig = sig
        fh.seek(f.fed)
        while f.fed < size and not self.stopping.is_set():
            data = fh.read(min(READ_BLOCK, size - f.fed))
            if not data:
                break
            f.fed += len(data)
            f.prefix.update(data)
            self._emit(key, f, f.framer.feed(data))
        if f.framer.pending and f.fed >= size:  # quiet: a last line without its end
            self._emit(key, f, f.framer.flush("end of file"))

    def _from_start(self, what: str) -> None:
        # no file name in the log: export names may carry patient IDs
        log.info("folder %s: a file was %s; reading it from its start", self.folder.name, what)

    def _transcoded(self, key: str, fh: BinaryIO, sig: tuple[int, int]) -> bytes | None:
        """A container file (an .xlsx workbook) as the byte stream its codec's framer
        reads (its first sheet as CSV text), read whole: a workbook is rewritten, never
        appended to, so offsets and the cursor count in this stream, and rows journaled
        before are known by their hashes. One the codec cannot read yet (still being
        written, damaged, openpyxl missing) is None, and tried again when it changes."""
        fh.seek(0)
        try:
            data = self.codec.transcode(fh.read())
        except (FrameError, BiaError) as exc:
            if self._unreadable.get(key) != sig:  # once per version of the file
                self._unreadable[key] = sig
                reason = exc.reason if isinstance(exc, FrameError) else str(exc)
                log.warning("folder %s: a workbook is not read: %s", self.folder.name, reason)
            return None
        self._unreadable.pop(key, None)
        return data

    def _emit(self, key: str, f: _File, chunks: list[Chunk]) -> None:
        assert f.framer is not None
        offset = f.fed - f.framer.pending
        new = []
        for c in chunks:
            h = hashlib.sha256(c.data).digest()
            if h not in f.given:
                f.given.add(h)
                new.append(c)
        if not new and (not chunks or offset == f.offset):
            return  # nothing, or nothing new and the cursor where it was
        f.offset = offset
        if any(c.kind == "frame" for c in new):
            self.last_frame_at = time.time()
        cursor = FileCursor(self.folder.name, key, f.st_dev, f.st_ino, f.offset)
        self._put(Batch(self.folder.name, self.folder.driver, new, time.time(), cursor))


def folder_readers(
    config: Config,
    ingest: Ingest,
    store: Store,
    out: queue.Queue[Item],
    stop: threading.Event,
) -> list[FolderReader]:
    """Register each configured folder with the writer and make its reader (not started).

    Call before the writer thread starts: it reads the saved cursors.
    """
    import zoneinfo

    readers = []
    for folder in config.folders:
        zone = zoneinfo.ZoneInfo(folder.timezone) if folder.timezone else None
        ingest.ports[folder.name] = PortRuntime(
            folder.name, folder.driver, folder.profile.codec(), zone
        )
        readers.append(FolderReader(folder, out, stop, store.file_cursors(folder.name)))
    return readers
