"""The daemon: one reader thread per source, one writer thread, supervision in the main thread.

Sources (:class:`~bia_acq.source.Source`: a port reader per configured port, a
polled reader for analyzers with a dialogue, a folder reader per configured
folder) put :class:`~bia_acq.acquire.Batch` es on one bounded queue; they are
kept by name in one registry, ``Service.sources``, and the service uses only
their interface (``start``, ``stop``, ``join``, ``alive``, ``heartbeat``,
``describe``). A new kind of source is one more class and one more
``_make_source`` branch. The writer thread owns the database connection: it
journals, decodes and stores, runs the store functions sources ask for
(:class:`~bia_acq.source.StoreCall`: work-list claims), and when the database
does not take writes (locked past the busy
timeout, full, read-only, not openable) it keeps every batch in the spool
(:mod:`bia_acq.spool`) and moves them in, in order and exactly once, when it
does again. The main thread calls :meth:`Service.supervise` for systemd's
STATUS and watchdog, and :meth:`Service.reload` on SIGHUP.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable

from bia_acq.acquire import Batch, Ingest, PortReader
from bia_acq.config import Config, PortConfig
from bia_acq.drivers import all_profiles
from bia_acq.errors import BiaError, StorageError
from bia_acq.folder import folder_readers
from bia_acq.link import Transport
from bia_acq.polled import make_reader
from bia_acq.source import ByteBoundedQueue, Source, StoreCall
from bia_acq.spool import Spool, spool_path
from bia_acq.store.db import BUSY_TIMEOUT_MS, open_writer, secure_file
from bia_acq.store.writer import SavedMeasurement, Store, refuses_writes
from bia_acq.systemd import Notifier

log = logging.getLogger(__name__)

QUEUE_SIZE = 1024
#: bytes of received data waiting for the writer at most (plus one batch): about 300
#: MC-780 frames, a few seconds of the fastest analyzer; the worst a SIGKILL can lose
#: besides the kernel's tty buffer and the frame in a reader's hand
QUEUE_BYTES = 256 * 1024
WRITER_BATCH = 64
#: a loop whose heartbeat is older than this is hung (must exceed the busy timeout)
HUNG_AFTER_S = 20.0

#: SQLite errors after which the connection is worth keeping (the file is fine, just busy
#: or full); after any other error the writer reopens the database before the next try.
_TRANSIENT = ("locked", "busy", "full")


class Service:
    def __init__(
        self,
        config: Config,
        *,
        on_saved: Callable[[SavedMeasurement], None] | None = None,
        hung_after_s: float = HUNG_AFTER_S,
        busy_timeout_ms: int = BUSY_TIMEOUT_MS,
        retry_initial_s: float = 0.5,
        retry_max_s: float = 30.0,
        reader_options: dict[str, float] | None = None,
        transport_for: Callable[[PortConfig], Transport] | None = None,
        queue_bytes: int = QUEUE_BYTES,
    ) -> None:
        self.config = config
        self.on_saved = on_saved
        self.hung_after_s = hung_after_s
        self.busy_timeout_ms = busy_timeout_ms
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.reader_options = dict(reader_options or {})
        self.transport_for = transport_for  # a byte pipe per port instead of its Link (tests)
        self.queue: ByteBoundedQueue = ByteBoundedQueue(QUEUE_SIZE, queue_bytes)
        #: every source by name: ports, polled analyzers, folders (names are unique)
        self.sources: dict[str, Source] = {}
        self._folder_stop = threading.Event()
        self._folders_started = False
        self.writer: threading.Thread | None = None
        self.writer_heartbeat = time.monotonic()
        self.stopping = threading.Event()
        self.spool = Spool(spool_path(config.database), config.database_group)
        self.ingest: Ingest | None = None
        self.db_problem: str | None = None  # why the database does not take writes now
        self.lost_bytes = 0  # bytes neither the database nor the spool could keep
        self._retry_delay = retry_initial_s
        self._retry_at = 0.0
        self._decode_until = 0.0
        self._hung_reported: frozenset[str] = frozenset()
        self.writer_failed: str | None = None  # why the writer thread ended, if it did
        self._reloading: threading.Thread | None = None  # the last reload's thread
        self._db_identity: tuple[int, int] | None = None  # of the file the writer opened
        self.recovered = threading.Event()  # set once what an earlier stop left is decoded

    @property
    def queued_bytes(self) -> int:
        """Received bytes waiting for the writer (not journaled yet)."""
        return self.queue.bytes

    @property
    def max_queued_bytes(self) -> int:
        return self.queue.max_bytes

    @property
    def store(self) -> Store | None:
        return self.ingest.store if self.ingest else None

    # -- start -----------------------------------------------------------------------
    def start(self) -> None:
        """Open the database (or fall back to the spool), decode what a crash left, start."""
        extra = [self.config.drivers_dir] if self.config.drivers_dir else []
        self.ingest = Ingest(
            None,
            self.config.method,
            on_saved=self._saved,
            profiles=all_profiles(extra),
            bands=self.config.thresholds,
        )
        for port in self.config.ports:
            with contextlib.suppress(BiaError):  # _start_source says why a port is not read
                self.ingest.add_port(port)
        try:
            self._open_db()
            if len(self.spool):  # before folder sources read their cursors
                self._move_spool()
        except (StorageError, sqlite3.Error) as exc:
            self._db_unavailable(exc)
        if self.store is None:
            # acquisition goes on into the spool, so the spool must be writable now
            secure_file(self.spool.path, self.config.database_group)
            if not len(self.spool):
                self.spool.path.unlink()
        else:
            self._start_folders()
        self.writer = threading.Thread(target=self._write_loop, name="writer", daemon=True)
        self.writer.start()
        for port in self.config.ports:
            self._start_source(port)

    def _start_folders(self) -> None:
        """Folder sources resume at their journaled cursors: start them once the database
        is open and the spool moved in (else they would read rows again)."""
        if self._folders_started or not self.config.folders:
            return
        assert self.ingest is not None and self.store is not None
        readers = folder_readers(
            self.config, self.ingest, self.store, self.queue, self._folder_stop
        )
        self._folders_started = True
        for r in readers:
            self.sources[r.source_name] = r
            r.start()

    def _make_source(self, port: PortConfig) -> PortReader:
        transport = self.transport_for(port) if self.transport_for else None
        return make_reader(port, self.queue, None, transport=transport, **self.reader_options)

    def _start_source(self, port: PortConfig) -> None:
        assert self.ingest is not None
        try:
            self.ingest.add_port(port)
        except BiaError as exc:  # e.g. its protocol's plugin fails to import
            log.error("port %s is not read: %s", port.name, exc)
            return
        source = self._make_source(port)
        self.sources[port.name] = source
        source.start()

    # -- reload (SIGHUP) -----------------------------------------------------------------
    def reload(self, config: Config) -> None:
        """Apply a new configuration: stop removed or changed ports, start new ones."""
        new = {p.name: p for p in config.ports}
        stopping = []
        for name, source in list(self.sources.items()):
            if isinstance(source, PortReader) and new.get(name) != source.port:
                source.stop()
                stopping.append(source)
                del self.sources[name]
        added = [port for name, port in new.items() if name not in self.sources]
        previous = self._reloading

        def finish() -> None:
            if previous is not None:  # an earlier reload finishes first
                previous.join()
            for source in stopping:  # a changed port is free again before it reopens
                source.join(5.0)
                log.info("port %s: removed by the new configuration", source.port.name)
            for port in added:
                if self.stopping.is_set():
                    return
                log.info("port %s: added by the new configuration", port.name)
                self._start_source(port)

        # the main thread never waits for a reader to finish its frame (systemd's
        # watchdog and STATUS go on): stopped readers are joined in a thread of their own
        self._reloading = threading.Thread(target=finish, name="reload", daemon=True)
        self._reloading.start()
        for key in ("database", "database_group", "method", "drivers_dir", "folders"):
            if getattr(config, key) != getattr(self.config, key):
                log.warning(
                    "%s: %s changed; that takes effect at the next restart", config.source, key
                )
        self.config = dataclasses.replace(
            self.config, ports=config.ports, log_level=config.log_level, source=config.source
        )

    # -- supervision ---------------------------------------------------------------------
    def hung(self) -> list[str]:
        """Loops that died or whose heartbeat stopped for longer than ``hung_after_s``."""
        now = time.monotonic()
        out = [
            f"{s.kind} {name}"
            for name, s in list(self.sources.items())  # a reload thread may add one
            if s.hung(now, self.hung_after_s)
        ]
        w = self.writer
        if w is not None and (not w.is_alive() or now - self.writer_heartbeat > self.hung_after_s):
            out.append("database writer")
        return out

    def describe(self) -> str:
        """STATUS= text: the database, then every port's state and last frame."""
        if self.db_problem:
            db = f"database unavailable, {len(self.spool)} batch(es) kept in the spool"
        elif len(self.spool):
            db = f"moving {len(self.spool)} batch(es) from the spool"
        else:
            db = "database ok"
        ports_first = sorted(list(self.sources.values()), key=lambda s: s.kind == "folder")
        parts = [s.describe() for s in ports_first]
        return f"{db}; {'; '.join(parts) or 'no ports or folders configured'}"

    def supervise(self, notifier: Notifier) -> None:
        """Call often from the main thread: STATUS=, and WATCHDOG=1 only while all loops live."""
        notifier.status(self.describe())
        hung = frozenset(self.hung())
        if hung != self._hung_reported:
            if hung:
                log.error(
                    "%s not responding for over %g s: no longer feeding the watchdog "
                    "(systemd restarts the service)",
                    ", ".join(sorted(hung)),
                    self.hung_after_s,
                )
            else:
                log.info("every acquisition loop responds again")
            self._hung_reported = hung
        if not hung and notifier.watchdog_due():
            notifier.watchdog()

    # -- the writer thread ---------------------------------------------------------------
    def _beat(self) -> None:
        self.writer_heartbeat = time.monotonic()

    def _write_loop(self) -> None:
        try:
            self._write_until_stopped()
        except BaseException as exc:  # a bug the per-frame rejection did not catch
            self.writer_failed = f"{type(exc).__name__}: {exc}"
            log.critical(
                "the database writer stopped (%s): the service exits so that systemd "
                "restarts it; frames already journaled are decoded at the next start",
                self.writer_failed,
                exc_info=not isinstance(exc, SystemExit),
            )
            raise

    def _write_until_stopped(self) -> None:
        while True:
            self._beat()
            if (
                not self.recovered.is_set()
                and self.store is not None
                and not self.stopping.is_set()
            ):
                try:
                    self._recover()
                except Exception as exc:
                    if not refuses_writes(exc):
                        raise
                    self._db_unavailable(exc)
            if len(self.spool) and time.monotonic() >= self._retry_at:
                self._move_spool()
            try:
                item = self.queue.get(timeout=0.25)
            except queue.Empty:
                continue
            items = [item]
            while item is not None and len(items) < WRITER_BATCH:
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
                items.append(item)
            stop = items[-1] is None
            batches: list[Batch] = []
            for it in items:  # in order: a store call sees the batches queued before it
                if isinstance(it, StoreCall):
                    if batches:
                        self._handle(batches)
                        batches = []
                    it.run(self.store if self.db_problem is None else None)
                elif it is not None:
                    batches.append(it)
            if batches:
                self._handle(batches)
            if stop:
                if len(self.spool) and self.db_problem is None:
                    self._move_spool()
                return

    def _handle(self, batches: list[Batch]) -> None:
        assert self.ingest is not None
        if self.ingest.store is None or len(self.spool):  # keep the order: behind the spool
            for b in batches:
                self._to_spool(b)
            return
        # stopping with a backlog: past half the stop timeout, only journal (fast, one
        # transaction); the next start decodes what is left pending
        decode = not self.stopping.is_set() or time.monotonic() < self._decode_until
        try:
            self._check_identity()
            self.ingest.handle(*batches, decode=decode)
        except Exception as exc:
            if refuses_writes(exc):
                self._db_unavailable(exc)
                for b in batches:  # those already in are found by their keys when moved
                    self._to_spool(b)
                return
            # a bug past the per-frame rejection: journal the bytes (by key, once),
            # the next start decodes them; the writer goes on
            log.exception(
                "decoding %d batch(es) failed; journaled for the next start", len(batches)
            )
            self._journal_only(batches)

    def _journal_only(self, batches: list[Batch]) -> None:
        assert self.ingest is not None
        try:
            self.ingest.handle(*batches, decode=False)
        except Exception as exc:
            if not refuses_writes(exc):
                raise
            self._db_unavailable(exc)
            for b in batches:
                self._to_spool(b)

    def _identity(self) -> tuple[int, int] | None:
        """(device, inode) of the database file now; None if there is none."""
        try:
            st = os.stat(self.config.database)
        except OSError:
            return None
        return (st.st_dev, st.st_ino)

    def _check_identity(self) -> None:
        """StorageError when the open database's file was deleted or replaced: what is
        written through the open connection would not be in the file readers open."""
        if self.ingest is None or self.ingest.store is None or self._db_identity is None:
            return
        now = self._identity()
        if now != self._db_identity:
            what = "deleted" if now is None else "replaced by another file"
            raise StorageError(f"the database file was {what} while the service ran")

    def _saved(self, m: SavedMeasurement) -> None:
        """After a commit: report a measurement as stored only if it is in the file."""
        self._check_identity()
        if self.on_saved is not None:
            self.on_saved(m)

    def _open_db(self) -> None:
        assert self.ingest is not None
        if self._db_identity is not None and self._identity() is None:
            # it was there and went away: wait for it (a restore, a remount) instead of
            # starting an empty one beside the spool; a restart makes a new one
            raise StorageError(
                f"database {self.config.database} is missing (deleted while the service ran)"
            )
        if self._db_identity is not None and self._identity() != self._db_identity:
            log.error(
                "database %s is another file than the one opened before: using it",
                self.config.database,
            )
        db = open_writer(
            self.config.database,
            report_method=self.config.report_method,
            group=self.config.database_group,
            busy_timeout_ms=self.busy_timeout_ms,
            bands=self.config.thresholds,
        )
        self.ingest.store = Store(db)
        self._db_identity = self._identity()
        self.recovered.clear()

    def _recover(self) -> None:
        """In the writer thread: decode what an earlier stop left pending."""
        assert self.ingest is not None
        n = self.ingest.recover(self.stopping)
        self.recovered.set()
        if n:
            log.info("decoded %d frame(s) left pending by an earlier stop", n)

    def _close_db(self) -> None:
        if self.ingest is not None and self.ingest.store is not None:
            self.ingest.store.db.close()
            self.ingest.store = None

    def _db_unavailable(self, exc: BaseException) -> None:
        text = str(exc)
        if self.db_problem is None:
            log.error(
                "database %s does not take writes (%s): acquisition goes on, received bytes "
                "are kept in %s until it does",
                self.config.database,
                text,
                self.spool.path,
            )
        self.db_problem = text
        if not any(word in text for word in _TRANSIENT):
            self._close_db()  # read-only, I/O error, unopenable: reopen before the next try
        self._retry_at = time.monotonic() + self._retry_delay
        self._retry_delay = min(self._retry_delay * 2, self.retry_max_s)

    def _to_spool(self, batch: Batch) -> None:
        delay, since = 0.5, time.monotonic()
        reported = False
        while True:
            try:
                self.spool.append(batch)
                return
            except (OSError, StorageError) as exc:
                if not reported:
                    log.error(
                        "cannot write the spool %s either (%s): holding received bytes in "
                        "memory, ports wait",
                        self.spool.path,
                        exc,
                    )
                    reported = True
                if self.stopping.is_set() and time.monotonic() - since > 2.0:
                    n = sum(len(c.data) for c in batch.chunks)
                    self.lost_bytes += n
                    log.error("stopping: %d byte(s) from port %s could not be kept", n, batch.port)
                    return
            end = time.monotonic() + delay
            while time.monotonic() < end:
                self._beat()
                time.sleep(min(0.25, delay))
            delay = min(delay * 2, 5.0)

    def _move_spool(self) -> None:
        """Move every spooled batch into the database, in order; empty the spool after."""
        assert self.ingest is not None
        try:
            if self.ingest.store is None:
                self._open_db()
            batches = self.spool.read()
            for i in range(0, len(batches), WRITER_BATCH):
                self._beat()
                group = batches[i : i + WRITER_BATCH]
                try:
                    self.ingest.handle(*group)
                except Exception as exc:
                    if refuses_writes(exc):
                        raise
                    # one poison frame never holds the spool: journal, decode at next start
                    log.exception("decoding spooled batches failed; journaled for the next start")
                    self.ingest.handle(*group, decode=False)
        except Exception as exc:
            if not refuses_writes(exc):
                raise
            self._db_unavailable(exc)
            return
        self.spool.clear()
        log.info(
            "database %s takes writes: moved %d batch(es) from the spool",
            self.config.database,
            len(batches),
        )
        self.db_problem = None
        self._retry_delay = self.retry_initial_s
        if self.writer is not None:  # the database opened late: folders start now
            self._start_folders()

    # -- stop ----------------------------------------------------------------------------
    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop reading (finishing a frame in hand), write what is queued, close."""
        deadline = time.monotonic() + timeout_s
        self._decode_until = time.monotonic() + timeout_s / 2
        self.stopping.set()
        if self._reloading is not None:  # a reload in progress starts no port after this
            self._reloading.join(max(0.1, deadline - time.monotonic() - 1.0))
        self._folder_stop.set()  # also for folders the writer may start while stopping
        for s in self.sources.values():
            s.stop()
        for s in self.sources.values():
            s.join(max(0.1, deadline - time.monotonic() - 1.0))
        if self.writer is not None:
            while self.writer.is_alive():
                try:
                    self.queue.put(None, timeout=0.1)
                    break
                except queue.Full:
                    if time.monotonic() > deadline:
                        break
            self.writer.join(max(0.1, deadline - time.monotonic()))
            if self.writer.is_alive():
                log.error("the database writer did not finish in time; queued bytes are lost")
        self._close_db()
