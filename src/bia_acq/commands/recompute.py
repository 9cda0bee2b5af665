"""`bia-acq recompute`: results of stored measurements from their stored impedances."""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime as dt
import functools
import itertools
import logging
import multiprocessing
import sqlite3
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from bia_acq.cli import positive_int

if TYPE_CHECKING:
    from bia_acq.core.estimate import Results
    from bia_acq.core.methods import Bands, Inputs, Uncertainty

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


def _since_epoch(text: str) -> float:
    from bia_acq.errors import ConfigError

    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"--since: {text!r} is not a date or ISO time", fix="e.g. --since 2026-01-31"
        ) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.timestamp()


def run(args: argparse.Namespace) -> int:
    from bia_acq.config import load_config
    from bia_acq.core.estimate import get_method
    from bia_acq.errors import StorageError
    from bia_acq.store.db import open_writer, require_subject
    from bia_acq.store.writer import Store

    method = get_method(args.method)
    bands = dict(load_config(args.config).thresholds) if args.config else {}
    since = _since_epoch(args.since) if args.since else None
    if not args.db.exists():
        raise StorageError(f"database {args.db} does not exist (check --db)")
    db = open_writer(args.db)
    store = Store(db)
    conn = db.conn
    conn.execute("PRAGMA cache_size = -65536")  # 64 MiB: batches of results stay in memory
    # Results can always be recomputed (idempotent), so this connection trades the
    # writer's power-cut durability (synchronous=FULL) for speed: in WAL mode NORMAL
    # still never corrupts the database, at worst the last batches are lost.
    conn.execute("PRAGMA synchronous = NORMAL")
    # Every measurement_id written is one this run just read from `measurement`, and
    # measurements are never deleted: skip the foreign-key lookup of every result row
    # (a quarter of the time executemany takes).
    conn.execute("PRAGMA foreign_keys = OFF")
    where: list[str] = ["1"]
    params: list[float] = []
    if args.subject is not None:
        where.append("subject_id = ?")
        params.append(require_subject(conn, args.subject, args.db)[0])
    if since is not None:
        where.append("COALESCE(measured_at_epoch, received_at_epoch) >= ?")
        params.append(since)
    ids = np.array(
        [
            r[0]
            for r in conn.execute(
                f"SELECT id FROM measurement WHERE {' AND '.join(where)} ORDER BY id", params
            )
        ],
        dtype=np.int64,
    )
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
        _checkpointing(args.db, conn) as committed,
    ):
        for batch, res in zip(batches, results, strict=True):
            now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            rows = res.tuples(batch.tolist(), now)
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
    db.conn.close()
    return 0


#: the worker process's read-only connection (see _computed)
_worker_conn: sqlite3.Connection | None = None


def _worker_open(uri: str) -> None:
    global _worker_conn
    _worker_conn = sqlite3.connect(uri, uri=True)


def _worker_compute(batch: npt.NDArray[np.int64], method: str, bands: dict[str, Bands]) -> Results:
    from bia_acq.core.estimate import estimate_inputs

    assert _worker_conn is not None
    inp, notes = _read_batch(_worker_conn, batch)
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


@contextlib.contextmanager
def _checkpointing(path: Path, conn: sqlite3.Connection) -> Iterator[Callable[[], None]]:
    """Copy committed WAL frames into the database from a thread of its own.

    A WAL checkpoint is one SQLite call (no GIL held) that writes the pages back and
    syncs: done after each commit by ``conn`` it takes a sixth of a batch's write
    time. Here ``conn`` does not checkpoint itself; calling the yielded function after
    a commit wakes a thread whose own connection runs a PASSIVE checkpoint (it never
    blocks the writer or readers) while the next batch is written.
    """
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    ck = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    wake = threading.Event()
    stop = False

    def loop() -> None:
        while not stop:
            wake.wait()
            wake.clear()
            try:
                ck.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:  # the writer checkpoints again at its next commit
                log.warning("recompute: checkpoint failed: %s", exc)

    thread = threading.Thread(target=loop, name="recompute-checkpoint", daemon=True)
    thread.start()
    try:
        yield wake.set
    finally:
        stop = True
        wake.set()
        thread.join()
        ck.close()
        conn.execute("PRAGMA wal_autocheckpoint = 1000")  # SQLite's default


def _segment_case() -> str:
    """SQL mapping each path of core.estimate.PATHS to its index (fewer than 8 paths)."""
    from bia_acq.core.estimate import PATHS

    assert len(PATHS) < 8
    whens = " ".join(f"WHEN '{p.value}' THEN {k}" for k, p in enumerate(PATHS))
    return f"CASE segment {whens} ELSE -1 END"


_SEGMENT_CASE = _segment_case()


def _read_batch(
    conn: sqlite3.Connection, batch: npt.NDArray[np.int64]
) -> tuple[Inputs, list[list[str]]]:
    """The batch's stored impedances and anthropometry as core inputs (and notes)."""
    from bia_acq.core.estimate import PATHS, inputs_from_paths

    lo, hi = int(batch[0]), int(batch[-1])
    meas = conn.execute(
        "SELECT m.id, m.sex, m.age_years, m.height_cm, m.weight_kg, d.driver FROM measurement m"
        " LEFT JOIN device d ON d.id = m.device_id WHERE m.id BETWEEN ? AND ? ORDER BY m.id",
        (lo, hi),
    ).fetchall()
    by_id = {r[0]: r for r in meas}
    rows = [by_id[int(i)] for i in batch]
    # straight from the cursor into one float array (no list of tuples), four numbers a
    # row: the batch-relative measurement and path in one; only the paths the core
    # reads (the index has the segment: other paths are never fetched from the table);
    # a missing reactance comes as +inf (9e999) and becomes NaN; magnitude-only points
    # (|Z|) are not resistances and are left out, as estimate() does
    cur = conn.execute(
        f"SELECT (measurement_id - ?) * 8 + {_SEGMENT_CASE}, freq_khz, r_ohm,"
        " IFNULL(x_ohm, 9e999) FROM impedance WHERE measurement_id BETWEEN ? AND ?"
        f" AND segment IN ({', '.join('?' for _ in PATHS)}) AND magnitude_only = 0",
        (lo, lo, hi, *(p.value for p in PATHS)),
    )
    a = np.fromiter(itertools.chain.from_iterable(cur), dtype=float).reshape(-1, 4)
    key = a[:, 0].astype(np.int64)
    mid, path = lo + key // 8, key % 8
    keep = np.isin(mid, batch)
    a, mid, path = a[keep], mid[keep], path[keep]
    x = np.where(np.isinf(a[:, 3]), np.nan, a[:, 3])
    freqs, fi = np.unique(a[:, 1], return_inverse=True)
    zp = np.full((len(batch), len(PATHS), len(freqs)), np.nan + 0j, dtype=np.complex128)
    mi = np.searchsorted(batch, mid)  # batch is sorted
    zp[mi, path, fi] = a[:, 2] + 1j * x

    def col(k: int) -> npt.NDArray[np.float64]:
        v = np.array([r[k] if r[k] is not None else np.nan for r in rows], dtype=float)
        return np.where(v > 0, v, np.nan)

    return inputs_from_paths(
        freqs,
        zp,
        height_cm=col(3),
        weight_kg=col(4),
        age_years=np.array([r[2] if r[2] is not None else np.nan for r in rows], dtype=float),
        sex=[r[1] for r in rows],
        uncertainty=[_driver_uncertainty(r[5]) for r in rows],
    )


@functools.cache
def _driver_uncertainty(driver: str | None) -> Uncertainty:
    """The stated uncertainty of the profile that stored the measurement (as `run` used)."""
    from bia_acq.core.methods import DEFAULT_UNCERTAINTY, profile_uncertainty
    from bia_acq.drivers import builtin_profiles

    profile = builtin_profiles().get(driver or "")
    return profile_uncertainty(profile) if profile is not None else DEFAULT_UNCERTAINTY
