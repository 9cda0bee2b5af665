"""The Source interface and the writer's store calls: sources never open the database."""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import pytest

from bia_acq.errors import StorageError
from bia_acq.source import Source, StoreCall
from bia_acq.store import worklist
from bia_acq.store.db import open_writer
from bia_acq.store.writer import Store


class Asker(Source):
    """A source that claims one work-list entry through the writer, then stops."""

    kind = "test"

    def run(self) -> None:
        try:
            self.answer = self._ask(lambda store: worklist.claim_next(store.conn, "p1"))
        except StorageError as exc:
            self.answer = exc
        self._set_state("stopped")


def _ask_once(store: Store | None) -> Asker:
    """Run an Asker against a writer side that serves store calls with ``store``."""
    q: queue.Queue[object] = queue.Queue()

    def serve() -> None:
        while (item := q.get()) is not None:
            assert isinstance(item, StoreCall)
            item.run(store)

    writer = threading.Thread(target=serve)
    writer.start()
    src = Asker("a", q)
    src.start()
    src.join(30)
    q.put(None)
    writer.join(30)
    assert not src.alive() and src.describe() == "a: stopped"
    return src


def test_a_source_claims_work_through_the_writer(tmp_path: Path) -> None:
    store = Store(open_writer(tmp_path / "a.db"))
    entry_id = worklist.add(
        store.conn, external_id="S1", sex="female", age_years=40, height_cm=165.0
    )
    answer = _ask_once(store).answer
    assert answer.id == entry_id and answer.status == "measuring"
    assert worklist.get(store.conn, entry_id).port == "p1"  # type: ignore[union-attr]
    store.db.close()


def test_without_a_database_a_store_call_says_so() -> None:
    assert isinstance(_ask_once(None).answer, StorageError)


def test_a_stuck_writer_is_reported_not_waited_for_forever() -> None:
    src = Asker("a", queue.Queue())
    with pytest.raises(StorageError, match="did not answer"):
        src._ask(lambda store: None, timeout_s=0.2)
    assert src.hung(src.heartbeat, 1.0)  # never started: not alive, so hung to a supervisor
