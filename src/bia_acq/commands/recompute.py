"""`bia-acq recompute`: results of stored measurements from their stored impedances."""

from __future__ import annotations

import argparse
import collections
import contextlib
import logging
import multiprocessing
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from bia_acq.cli import positive_int

if TYPE_CHECKING:
    from bia_acq.core.estimate import Results
    from bia_acq.core.methods import Bands

DEFAULT_BATCH = 5000

log = logging.getLogger(__name__)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "recompute",
        help="recompute stored measurements' results with a method (keeps earlier results)",
        description="Recompute the results of stored measurements from their stored "
        "impedances with METHOD, in vectorised batches, one transaction per batch. Results "
        "of other methods and versions are kept; running it twice gives the same rows.",
    )
    p.add_argument("--db", type=Path, required=True, help="database file")
    p.add_argument("--method", required=True, help="method name (see `bia-acq methods`)")
    p.add_argument(
        "--since",
        help="only measurements taken at or after this date or ISO time (UTC unless it "
        "carries an offset), e.g. 2026-01-31",
    )
    p.add_argument("--subject", help="only this subject: the ID the device sent or its pseudonym")
    p.add_argument("--config", type=Path, help="configuration whose thresholds to classify with")
    p.add_argument(
        "--batch",
        type=positive_int,
        default=DEFAULT_BATCH,
        help=f"measurements per batch and transaction (default {DEFAULT_BATCH})",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from bia_acq.config import load_config
    from bia_acq.core.estimate import get_method
    from bia_acq.errors import StorageError
    from bia_acq.store.db import open_writer, require_subject
    from bia_acq.store.recompute import checkpointing, measurement_ids, tune_for_bulk
    from bia_acq.store.writer import Store
    from bia_acq.utc import parse_since, utc_now

    method = get_method(args.method)
    bands = dict(load_config(args.config).thresholds) if args.config else {}
    since = parse_since(args.since) if args.since else None
    if not args.db.exists():
        raise StorageError(f"database {args.db} does not exist (check --db)")
    db = open_writer(args.db)
    store = Store(db)
    conn = db.conn
    tune_for_bulk(conn)
    subject = require_subject(conn, args.subject, args.db)[0] if args.subject is not None else None
    ids = measurement_ids(conn, subject_id=subject, since_epoch=since)
    total = len(ids)
    store.record_method(method, bands.get(method.name, method.bands))
    started = time.perf_counter()
    classes: Counter[str] = Counter()
    failed_fits = 0
    tty = sys.stderr.isatty()
    batches = [ids[s : s + args.batch] for s in range(0, total, args.batch)]
    done = 0

    def progress(n: int) -> None:
        nonlocal done
        done += n
        pct = 100 * done // max(total, 1)
        line = f"recompute: {done}/{total} measurements ({pct}%)"
        if tty:  # a bar redrawn in place; one line per batch in logs
            print(f"\r[{'#' * (pct // 4):<25}] {line}", end="", file=sys.stderr, flush=True)
        else:
            print(line, file=sys.stderr, flush=True)

    uri = f"{args.db.resolve().as_uri()}?mode=ro"
    with (
        _computed(uri, batches, method.name, bands) as results,
        checkpointing(args.db, conn) as committed,
    ):
        for batch, res in zip(batches, results, strict=True):
            rows = res.tuples(batch.tolist(), utc_now())
            with db.atomic():
                store.insert_result_tuples(rows)
            committed()
            classes.update(res.classification[:, -1].tolist())
            if res.fit_grade is not None:
                failed_fits += int((res.fit_grade == "failed").sum())
            progress(len(batch))
    if tty and total:
        print(file=sys.stderr)
    took = time.perf_counter() - started
    rate = total / took if took > 0 else 0.0
    summary = ", ".join(f"{k} {v}" for k, v in sorted(classes.items())) or "none"
    print(
        f"recomputed {total} measurement(s) with {method.name} v{method.version} in {took:.2f} s "
        f"({rate:,.0f}/s); whole body: {summary}"
        + (f"; {failed_fits} segment fit(s) failed (see fit_status)" if failed_fits else "")
    )
    db.close()
    return 0


#: the worker process's read-only connection (see _computed)
_worker_conn: sqlite3.Connection | None = None


def _worker_open(uri: str) -> None:
    global _worker_conn
    _worker_conn = sqlite3.connect(uri, uri=True)


def _worker_compute(batch: npt.NDArray[np.int64], method: str, bands: dict[str, Bands]) -> Results:
    from bia_acq.core.estimate import estimate_inputs
    from bia_acq.store.recompute import read_batch

    assert _worker_conn is not None
    inp, notes = read_batch(_worker_conn, batch)
    return estimate_inputs(inp, method, bands, notes)


@contextlib.contextmanager
def _computed(
    uri: str, batches: list[npt.NDArray[np.int64]], method: str, bands: dict[str, Bands]
) -> Iterator[Iterator[Results]]:
    """The batches' results, in order, computed ahead of the caller's writes.

    One batch is read and computed here. More go to one worker process with its own
    read-only connection, which reads and computes batch k + 1 while this process
    writes batch k: two cores, and no GIL shared between SQLite's row-by-row reads and
    writes (two threads would hand the GIL over at every row; WAL: readers never
    block the writer, nor it them).
    """
    if len(batches) <= 1:
        _worker_open(uri)
        try:
            yield (_worker_compute(b, method, bands) for b in batches)
        finally:
            assert _worker_conn is not None
            _worker_conn.close()
        return
    ctx = multiprocessing.get_context("spawn")  # never fork a process holding SQLite
    with ProcessPoolExecutor(1, ctx, initializer=_worker_open, initargs=(uri,)) as pool:
        ahead: collections.deque[Future[Results]] = collections.deque()

        def results() -> Iterator[Results]:
            for k in range(len(batches)):
                while len(ahead) < 2 and k + len(ahead) < len(batches):
                    ahead.append(
                        pool.submit(_worker_compute, batches[k + len(ahead)], method, bands)
                    )
                yield ahead.popleft().result()

        try:
            yield results()
        finally:
            for f in ahead:
                f.cancel()
