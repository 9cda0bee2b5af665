"""Recompute's SQL: which measurements, their stored inputs, bulk result writes.

``bia-acq recompute`` (:mod:`bia_acq.commands.recompute`) reads batches here
(in a worker process, read-only) and writes their results through
:class:`~bia_acq.store.writer.Store` on a connection tuned for bulk writes.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from bia_acq.store.read import measurement_filter

if TYPE_CHECKING:
    from bia_acq.core.methods import Inputs, Uncertainty

log = logging.getLogger(__name__)


def tune_for_bulk(conn: sqlite3.Connection) -> None:
    """Settings of the recompute's writer connection."""
    conn.execute("PRAGMA cache_size = -65536")  # 64 MiB: batches of results stay in memory
    # Results can always be recomputed (idempotent), so this connection trades the
    # writer's power-cut durability (synchronous=FULL) for speed: in WAL mode NORMAL
    # still never corrupts the database, at worst the last batches are lost.
    conn.execute("PRAGMA synchronous = NORMAL")
    # Every measurement_id written is one this run just read from `measurement`, and
    # measurements are never deleted: skip the foreign-key lookup of every result row
    # (a quarter of the time executemany takes).
    conn.execute("PRAGMA foreign_keys = OFF")


def measurement_ids(
    conn: sqlite3.Connection, *, subject_id: int | None = None, since_epoch: float | None = None
) -> npt.NDArray[np.int64]:
    """Ids of the measurements to recompute (of one subject, taken since a time), in order."""
    where, params = measurement_filter("", subject_id, since_epoch)
    return np.array(
        [
            r[0]
            for r in conn.execute(
                f"SELECT id FROM measurement WHERE {' AND '.join(['1', *where])} ORDER BY id",
                params,
            )
        ],
        dtype=np.int64,
    )


@contextlib.contextmanager
def checkpointing(path: Path, conn: sqlite3.Connection) -> Iterator[Callable[[], None]]:
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


def _segment_case(conn: sqlite3.Connection) -> tuple[str, list[int]]:
    """SQL mapping the label id of each path of core.estimate.PATHS stored in
    ``impedance_row`` (m012) to the path's index (fewer than 8 paths), and those ids."""
    from bia_acq.core.estimate import PATHS

    assert len(PATHS) < 8
    names = [p.value for p in PATHS]
    ids = dict(
        conn.execute(
            f"SELECT text, id FROM label WHERE text IN ({', '.join('?' for _ in names)})", names
        )
    )
    whens = " ".join(f"WHEN {int(ids[n])} THEN {k}" for k, n in enumerate(names) if n in ids)
    return f"CASE segment {whens or 'WHEN NULL THEN -1'} ELSE -1 END", list(ids.values())


def read_batch(
    conn: sqlite3.Connection, batch: npt.NDArray[np.int64]
) -> tuple[Inputs, list[list[str]]]:
    """The batch's stored impedances and anthropometry as core inputs (and notes)."""
    from bia_acq.core.estimate import PATHS, inputs_from_paths
    from bia_acq.core.methods import device_inputs

    lo, hi = int(batch[0]), int(batch[-1])
    meas = conn.execute(
        "SELECT m.id, m.sex, m.age_years, m.height_cm, m.weight_kg, d.driver,"
        " m.device_values_json, d.model, m.value_keys, m.value_list FROM measurement_row m"
        " LEFT JOIN device d ON d.id = m.device_id WHERE m.id BETWEEN ? AND ? ORDER BY m.id",
        (lo, hi),
    ).fetchall()
    by_id = {r[0]: r for r in meas}
    values = _device_values(conn, meas)
    rows = [by_id[int(i)] for i in batch]
    # straight from the cursor into one float array (no list of tuples), four numbers a
    # row: the batch-relative measurement and path in one; only the paths the core
    # reads (the index has the segment: other paths are never fetched from the table);
    # a missing reactance comes as +inf (9e999) and becomes NaN; magnitude-only points
    # (|Z|) are not resistances and are left out, as estimate() does
    case, ids = _segment_case(conn)
    cur = conn.execute(
        f"SELECT (measurement_id - ?) * 8 + {case}, freq_khz, r_ohm,"
        " IFNULL(x_ohm, 9e999) FROM impedance_row WHERE measurement_id BETWEEN ? AND ?"
        f" AND segment IN ({', '.join('?' for _ in ids)}) AND magnitude_only = 0",
        (lo, lo, hi, *ids),
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
        **device_inputs([values[r[0]] for r in rows], [r[7] for r in rows]),  # `device`
    )


def _device_values(
    conn: sqlite3.Connection, meas: list[tuple[Any, ...]]
) -> dict[int, Mapping[str, object] | str | None]:
    """Per measurement id its device values (m011's packed keys and values: a dict), or
    the text ``measurement_row`` keeps where they are not packed."""
    keys: dict[int, list[str]] = {}
    out: dict[int, Mapping[str, object] | str | None] = {}
    for r in meas:
        k = r[8]
        if k is None:
            out[r[0]] = r[6]
            continue
        if k not in keys:
            keys[k] = json.loads(
                conn.execute("SELECT text FROM label WHERE id = ?", (k,)).fetchone()[0]
            )
        out[r[0]] = dict(zip(keys[k], json.loads(r[9]), strict=True))
    return out


@functools.cache
def _driver_uncertainty(driver: str | None) -> Uncertainty:
    """The stated uncertainty of the profile that stored the measurement (as `run` used)."""
    from bia_acq.core.methods import DEFAULT_UNCERTAINTY, profile_uncertainty
    from bia_acq.drivers import builtin_profiles

    profile = builtin_profiles().get(driver or "")
    return profile_uncertainty(profile) if profile is not None else DEFAULT_UNCERTAINTY
