"""The spool: received bytes the database could not take yet, kept on disk.

When the database is locked past the busy timeout, full, read-only or cannot
be opened, the writer appends each batch to ``<database>.spool`` next to it
and acquisition goes on. The file is append-only, created with the database's
private mode, and every record is fsynced before the writer moves on. Once the
database takes writes again the records go in, in order; each batch carries
its idempotency key (see :class:`~bia_acq.acquire.Batch`), so replaying the
spool after a crash in the middle of a move stores nothing twice. The file is
emptied only after every record is committed.

One record per line: JSON with the bytes in base64. A last line without its
newline is a write a crash cut short (it was never acknowledged); it is
reported and skipped.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import logging
import os
import time
from pathlib import Path

from bia_acq.acquire import Batch
from bia_acq.protocols.base import Chunk
from bia_acq.store.db import secure_file
from bia_acq.store.writer import FileCursor

log = logging.getLogger(__name__)


def spool_path(database: Path) -> Path:
    return database.with_name(database.name + ".spool")


class Spool:
    def __init__(self, path: Path, group: str | None = None) -> None:
        self.path = path
        self.group = group
        self.records = self._count()
        self.damaged = False

    def _count(self) -> int:
        try:
            with self.path.open("rb") as f:
                return sum(1 for line in f if line.endswith(b"\n"))
        except FileNotFoundError:
            return 0

    def __len__(self) -> int:
        return self.records

    def append(self, batch: Batch) -> None:
        """Append one batch and fsync it; OSError if the disk does not take it."""
        rec = {
            "key": batch.key,
            "port": batch.port,
            "driver": batch.driver,
            "received_epoch": batch.received_epoch,
            "cursor": dataclasses.asdict(batch.cursor) if batch.cursor else None,
            "worklist_id": batch.worklist_id,
            "chunks": [
                {
                    "kind": c.kind,
                    "reason": c.reason,
                    "data": base64.b64encode(c.data).decode(),
                    # a CSV row's header (journaled once, decoded with each row)
                    **({"context": base64.b64encode(c.context).decode()} if c.context else {}),
                }
                for c in batch.chunks
            ],
        }
        line = (json.dumps(rec, separators=(",", ":")) + "\n").encode()
        if not self.path.exists():
            secure_file(self.path, self.group)
            _fsync_dir(self.path.parent)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        try:
            size = os.fstat(fd).st_size
            try:
                view = memoryview(line)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            except OSError:
                os.ftruncate(fd, size)  # no half record left behind
                raise
        finally:
            os.close(fd)
        self.records += 1

    def read(self) -> list[Batch]:
        """Every complete record, in the order written."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        out: list[Batch] = []
        lines = data.split(b"\n")
        if lines[-1]:
            self.damaged = True
            log.warning(
                "%s: last record cut short (%d bytes, a write the crash interrupted); skipped",
                self.path,
                len(lines[-1]),
            )
        for n, line in enumerate(lines[:-1], 1):
            try:
                rec = json.loads(line)
                chunks = [
                    Chunk(
                        c["kind"],
                        base64.b64decode(c["data"], validate=True),
                        c["reason"],
                        base64.b64decode(c.get("context", ""), validate=True),
                    )
                    for c in rec["chunks"]
                ]
                out.append(
                    Batch(
                        rec["port"],
                        rec["driver"],
                        chunks,
                        float(rec["received_epoch"]),
                        FileCursor(**rec["cursor"]) if rec.get("cursor") else None,
                        rec.get("worklist_id"),
                        rec["key"],
                    )
                )
            except (ValueError, KeyError, TypeError, binascii.Error) as exc:
                self.damaged = True
                log.error("%s: record %d is damaged (%s); skipped", self.path, n, exc)
        return out

    def clear(self) -> None:
        """Empty the spool once every record is committed; a damaged one is kept aside."""
        if self.damaged and self.path.exists():
            aside = self.path.with_name(f"{self.path.name}.damaged-{int(time.time())}")
            self.path.replace(aside)
            log.error("%s kept for inspection: it had damaged records", aside)
            self.damaged = False
        self.path.unlink(missing_ok=True)
        _fsync_dir(self.path.parent)
        self.records = 0


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
