"""What the service reads from: the one interface of port, polled and folder readers.

A :class:`Source` is a thread that reads one place (a serial port, a polled
analyzer, a folder of exports) and puts :class:`~bia_acq.acquire.Batch` es of
received bytes on the writer's queue. The service keeps every source in one
registry (``Service.sources``, by name) and needs only this interface:
``start``, ``stop`` (ask it to finish), ``join``, ``alive``, ``heartbeat``
(monotonic seconds, moved on every turn of its loop, also while it waits) and
``describe`` (one line for systemd's STATUS=). A new kind of source is a
subclass that implements ``run`` and one line in ``Service._make_source``
(docs/extending.md, "A source").

The queue carries batches and :class:`StoreCall` s: a source that needs the
database (a polled analyzer claiming a work-list entry) asks the writer thread
to run a store function and waits for the answer; no source writes the
database itself.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias

from bia_acq.errors import StorageError

if TYPE_CHECKING:
    from bia_acq.acquire import Batch
    from bia_acq.store.writer import Store

log = logging.getLogger(__name__)


@dataclass(eq=False)
class StoreCall:
    """A store function the writer thread runs for a source, with the answer to wait on.

    ``fn`` gets the writer's :class:`~bia_acq.store.writer.Store`; its return value
    (or exception) goes to ``reply``. Without a database the writer answers with a
    StorageError.
    """

    fn: Callable[[Store], Any]
    reply: Future[Any] = field(default_factory=Future)

    def run(self, store: Store | None) -> None:
        if store is None:
            self.reply.set_exception(StorageError("the database does not take writes now"))
            return
        try:
            self.reply.set_result(self.fn(store))
        except Exception as exc:  # the caller decides; the writer goes on
            self.reply.set_exception(exc)


#: what sources put on the writer's queue (None: the service is stopping)
Item: TypeAlias = "Batch | StoreCall | None"


class ByteBoundedQueue(queue.Queue[Any]):
    """The writer's queue, bounded in bytes as well as in items.

    ``put`` blocks while the queued batches hold ``max_bytes`` or more (a batch that
    crosses the bound still goes in, so at most ``max_bytes`` plus one batch wait in
    memory): a reader that cannot put stops reading, and the kernel's buffer and the
    line's flow control hold what the device sends next. What a SIGKILL can lose is
    what waits here, not yet journaled (docs/reliability.md).
    """

    def __init__(self, maxsize: int, max_bytes: int) -> None:
        super().__init__(maxsize)
        self.max_bytes = max_bytes
        self.bytes = 0

    @staticmethod
    def _size(item: Any) -> int:
        chunks = getattr(item, "chunks", None)
        return sum(len(c.data) for c in chunks) if chunks else 0

    def _put(self, item: Any) -> None:
        self.queue.append(item)
        self.bytes += self._size(item)

    def _get(self) -> Any:
        item = self.queue.popleft()
        self.bytes -= self._size(item)
        return item

    def _qsize(self) -> int:
        n = len(self.queue)
        return max(n, self.maxsize) if n and self.bytes >= self.max_bytes else n


class Source(threading.Thread):
    """A reader thread of the service (see the module's docstring).

    ``kind`` names it in logs and supervision ("port 1 not responding"); a loop
    whose heartbeat is older than the service's limit plus ``slack_s`` is hung.
    """

    kind: ClassVar[str] = "source"
    #: the prefix of its thread's name (``reader-p1``)
    thread_prefix: ClassVar[str] = "source"
    #: what ``describe`` calls the newest thing received
    last_what: ClassVar[str] = "last frame"
    #: where its state changes are logged (the subclass's module's logger)
    log: ClassVar[logging.Logger] = log

    def __init__(
        self,
        name: str,
        out: queue.Queue[Any],
        stopping: threading.Event | None = None,
        *,
        slack_s: float = 0.0,
    ) -> None:
        super().__init__(name=f"{self.thread_prefix}-{name}", daemon=True)
        self.source_name = name
        self.out = out
        self.stopping = stopping if stopping is not None else threading.Event()
        self.slack_s = slack_s
        self.state = "starting"
        self.detail = ""
        self.heartbeat = time.monotonic()
        self.last_frame_at: float | None = None

    # -- the interface ------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the loop to finish (a port finishes the frame in hand first)."""
        self.stopping.set()

    def alive(self) -> bool:
        return self.is_alive()

    def hung(self, now: float, after_s: float) -> bool:
        """Dead, or its heartbeat stopped for longer than ``after_s`` (plus its slack)."""
        return not self.alive() or now - self.heartbeat > after_s + self.slack_s

    def label(self) -> str:
        """How ``describe`` names it."""
        return self.source_name

    def describe(self) -> str:
        """One short human-readable line for STATUS=."""
        text = f"{self.label()}: {self.state}"
        if self.last_frame_at is not None:
            text += f", {self.last_what} " + time.strftime(
                "%H:%M:%S", time.localtime(self.last_frame_at)
            )
        return text

    # -- for subclasses -------------------------------------------------------------------
    def _set_state(self, state: str, detail: str = "", level: int = logging.INFO) -> None:
        """One log line per change of state."""
        if state != self.state:
            self.state = state
            self.detail = detail
            self.log.log(
                level, "%s %s: %s%s", self.kind, self.source_name, state,
                f" ({detail})" if detail else "",
            )  # fmt: skip

    def _put(self, item: Batch | StoreCall) -> None:
        """Hand ``item`` to the writer; never drop it: wait while the queue is full
        (back-pressure), keeping the heartbeat moving."""
        while True:
            try:
                self.out.put(item, timeout=0.5)
                return
            except queue.Full:
                self.heartbeat = time.monotonic()

    def _ask(self, fn: Callable[[Store], Any], timeout_s: float = 30.0) -> Any:
        """Run ``fn`` in the writer thread and return its answer (or raise its error).

        StorageError when no answer comes within ``timeout_s`` (the writer is stuck:
        supervision reports it) or the source is stopped while waiting for the queue.
        """
        call = StoreCall(fn)
        self._put(call)
        until = time.monotonic() + timeout_s
        while True:
            self.heartbeat = now = time.monotonic()
            try:
                return call.reply.result(timeout=min(0.5, max(0.0, until - now)))
            except FutureTimeout:
                if time.monotonic() >= until:
                    raise StorageError(
                        f"the database writer did not answer within {timeout_s:g} s"
                    ) from None
