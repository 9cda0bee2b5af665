"""The daemon: one reader thread per port, one writer thread, supervision in the main thread."""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
from collections.abc import Callable

from bia_acq.acquire import Batch, Ingest, PortReader, PortRuntime
from bia_acq.config import Config
from bia_acq.drivers import all_profiles
from bia_acq.errors import BiaError
from bia_acq.folder import folder_readers
from bia_acq.polled import make_reader
from bia_acq.store.db import open_writer
from bia_acq.store.writer import SavedMeasurement, Store

log = logging.getLogger(__name__)

QUEUE_SIZE = 1024
WRITER_BATCH = 64


class Service:
    def __init__(
        self,
        config: Config,
        *,
        on_saved: Callable[[SavedMeasurement], None] | None = None,
    ) -> None:
        self.config = config
        self.on_saved = on_saved
        self.stop_event = threading.Event()
        self.queue: queue.Queue[Batch | None] = queue.Queue(QUEUE_SIZE)
        self.readers: list[PortReader] = []
        self.folder_readers: list[threading.Thread] = []  # folder sources (bia_acq.folder)
        self.writer: threading.Thread | None = None
        self.writer_error: BaseException | None = None
        self.store: Store | None = None

    def start(self) -> None:
        """Open the database, decode what a crash left pending, start the threads."""
        db = open_writer(self.config.database, report_method=self.config.method)
        self.store = Store(db)
        ingest = Ingest(
            self.store, self.config.method, bands=self.config.thresholds, on_saved=self.on_saved
        )
        for port in self.config.ports:
            ingest.add_port(port)
        extra = [self.config.drivers_dir] if self.config.drivers_dir else []
        by_driver = {
            name: PortRuntime("", name, profile.codec(), None)
            for name, profile in all_profiles(extra).items()
        }
        recovered = ingest.recover(by_driver)
        if recovered:
            log.info("decoded %d frame(s) left pending by an earlier stop", recovered)
        self.folder_readers = list(
            folder_readers(self.config, ingest, self.store, self.queue, self.stop_event)
        )
        self.writer = threading.Thread(
            target=self._write_loop, args=(ingest,), name="writer", daemon=True
        )
        self.writer.start()
        for folder_reader in self.folder_readers:
            folder_reader.start()
        for port in self.config.ports:
            reader = make_reader(port, self.queue, self.stop_event, self.config.database)
            self.readers.append(reader)
            reader.start()

    def _write_loop(self, ingest: Ingest) -> None:
        while True:
            item = self.queue.get()
            items = [item]
            while item is not None and len(items) < WRITER_BATCH:
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
                items.append(item)
            for batch in items:
                if batch is None:
                    return
                self._handle(ingest, batch)

    def _handle(self, ingest: Ingest, batch: Batch) -> None:
        delay = 0.5
        while True:
            try:
                ingest.handle(batch)
                return
            except (sqlite3.Error, BiaError) as exc:
                # keep the bytes in hand and retry; the reader waits (bounded queue)
                log.error("database write failed (%s); retrying in %.1f s", exc, delay)
                if self.stop_event.wait(delay) and delay > 4:
                    self.writer_error = exc
                    log.error(
                        "giving up on %d chunk(s) from port %s at stop",
                        len(batch.chunks),
                        batch.port,
                    )
                    return
                delay = min(delay * 2, 30.0)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop reading (finishing a frame in hand), write what is queued, close."""
        self.stop_event.set()
        for r in [*self.readers, *self.folder_readers]:
            r.join(timeout_s)
        if self.writer is not None:
            self.queue.put(None)
            self.writer.join(timeout_s)
        if self.store is not None:
            self.store.db.close()
            self.store = None
