"""The single writer: journal first, then measurements, impedances and results.

Only the writer thread calls these methods. Every chunk of received bytes is
committed to ``raw_frame`` before it is decoded; a measurement with its
impedances and results is written in one transaction, together with its frame's
change of status, so a crash leaves either all of it or a pending frame that
start-up decodes again.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import math
import operator
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlite_utils import Database

from bia_acq.core.estimate import ROW_KEYS
from bia_acq.core.methods import Bands, Method
from bia_acq.model import Reading
from bia_acq.protocols.base import Chunk
from bia_acq.store.schema import segment_result_columns, utc_sql
from bia_acq.utc import utc_now, utc_text


@dataclass(frozen=True)
class Journaled:
    raw_frame_id: int
    status: str
    new: bool


@dataclass(frozen=True)
class PendingFrame:
    raw_frame_id: int
    port: str
    driver: str
    data: bytes
    received_at_epoch: float


@dataclass(frozen=True)
class FileCursor:
    """How far a folder source has journaled one file (see :mod:`bia_acq.folder`)."""

    source: str
    path: str
    st_dev: int
    st_ino: int
    offset_bytes: int


@dataclass(frozen=True)
class ToSave:
    """One decoded frame for :meth:`Store.save_many`."""

    raw_frame_id: int
    frame: bytes
    reading: Reading
    measured_epoch: float | None
    results: list[dict[str, object]]
    warnings: list[str]
    received_epoch: float
    #: the results as rows in :attr:`Store.RESULT_COLUMNS` order instead of ``results``
    #: (what `import`'s worker process sends: a fraction of the dicts' pickling)
    result_rows: list[tuple[object, ...]] | None = None


@dataclass(frozen=True)
class SavedMeasurement:
    measurement_id: int
    raw_frame_id: int
    port: str
    subject_pseudonym: str | None
    results: list[dict[str, object]]
    warnings: list[str]


#: One row of the ``method`` table (m002 columns, m005's kind and lower limit).
METHOD_UPSERT = (
    "INSERT INTO method (name, version, description, kind, citation, ecw_tbw_normal_min,"
    " ecw_tbw_normal_max, ecw_tbw_slight_max, bands_source, updated_at_utc, bands_site)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (name, version) DO UPDATE SET description = excluded.description,"
    " kind = excluded.kind, citation = excluded.citation,"
    " ecw_tbw_normal_min = excluded.ecw_tbw_normal_min,"
    " ecw_tbw_normal_max = excluded.ecw_tbw_normal_max,"
    " ecw_tbw_slight_max = excluded.ecw_tbw_slight_max,"
    " bands_source = excluded.bands_source, updated_at_utc = excluded.updated_at_utc,"
    " bands_site = excluded.bands_site"
)


def method_row(method: Method, bands: Bands | None) -> tuple[object, ...]:
    """The METHOD_UPSERT parameters for a method and the bands in force for it
    (None: no published band, the limits stay NULL and the source says why)."""
    now = utc_now()
    return (
        method.name,
        method.version,
        method.description,
        method.kind,
        method.citation,
        bands.normal_min if bands else None,
        bands.normal_max if bands else None,
        bands.slight_max if bands else None,
        bands.source if bands else method.bands_note,
        now,
        int(bands.site) if bands else 0,
    )


#: hex digits of the keyed hash in a pseudonym: 128 bits, so that two patient IDs
#: mapping to one pseudonym is negligible at any clinic size (about 1e-26 for a
#: million subjects, by the birthday bound n^2 / 2^129)
PSEUDONYM_HEX = 32
#: characters of a pseudonym shown in the UI and logs ("P-" and 10 hex digits: what
#: pseudonyms were before they were lengthened, so a shown pseudonym stays the same)
SHORT_PSEUDONYM = 12


def pseudonym(key: bytes, external_id: str) -> str:
    """``P-`` and the first 128 bits of HMAC-SHA256(key, ID) in hex."""
    mac = hmac.new(key, external_id.encode("utf-8"), hashlib.sha256).hexdigest()
    return "P-" + mac[:PSEUDONYM_HEX]


def short_pseudonym(p: str) -> str:
    """A pseudonym as the UI and logs show it; the full one is in the database and exports."""
    return p[:SHORT_PSEUDONYM]


class PseudonymCollision(ValueError):
    """Two patient IDs map to one stored pseudonym: the frame is rejected, not stored
    under another patient."""


def refuses_writes(exc: BaseException) -> bool:
    """Whether ``exc`` means the database does not take writes now (locked, busy, full,
    read-only, I/O error, not openable, damaged): the service keeps frames in the
    spool. Any other error (a constraint, an overflow, a value SQLite cannot bind) is
    about one frame's content: that frame is rejected."""
    from bia_acq.errors import StorageError

    if isinstance(exc, StorageError | sqlite3.OperationalError):
        return True
    return type(exc) is sqlite3.DatabaseError  # "malformed", "not a database"


def _device_key(r: Reading) -> tuple[str, str]:
    return (r.model or "", r.serial_number or "")


_PLAIN_VALUE = (str, int, bool, type(None))


@functools.lru_cache(maxsize=256)
def _keys_text(keys: tuple[str, ...]) -> str:
    return json.dumps(keys)


def pack_values(values: Mapping[str, object]) -> tuple[str, str] | None:
    """``measurement_row``'s packed device values (m011): the JSON array of the keys in
    ``json.dumps(values, sort_keys=True)``'s order (a label) and the array of their values,
    each written as that text writes it, so the ``measurement`` view makes that text
    again; None for values it cannot make again (a list, a dict, NaN, ±inf): then the
    text itself is stored."""
    keys = tuple(sorted(values))
    vals = [values[k] for k in keys]
    for v in vals:
        if not (isinstance(v, _PLAIN_VALUE) or (isinstance(v, float) and math.isfinite(v))):
            return None
    return _keys_text(keys), json.dumps(vals, separators=(",", ":"))


@dataclass
class _Rows:
    """The rows one :meth:`Store.save_many` writes, in executemany order."""

    labels: _Labels
    #: whether a warnings text was seen before (then it is stored as a label)
    repeated: Callable[[str], bool]
    measurements: list[tuple[object, ...]] = field(default_factory=list)
    impedances: list[tuple[object, ...]] = field(default_factory=list)
    results: list[tuple[object, ...]] = field(default_factory=list)
    decoded: list[tuple[int]] = field(default_factory=list)
    dups: list[tuple[str, int]] = field(default_factory=list)

    def add(self, mid: int, it: ToSave, device_id: int, subject_id: int | None, sha: bytes) -> None:
        """A new measurement: its row, its impedances, its frame decoded."""
        r = it.reading
        packed = pack_values(r.device_values)
        keys, vals = packed or (None, None)
        measured = it.measured_epoch
        notes = json.dumps(it.warnings)
        self.measurements.append(
            (
                mid,
                it.raw_frame_id,
                device_id,
                subject_id,
                sha,
                r.measured_at.isoformat() if r.measured_at else None,
                measured,
                it.received_epoch,
                r.sex,
                r.age_years,
                r.height_cm,
                r.weight_kg,
                self.labels[keys],
                vals,
                self.labels[notes] if self.repeated(notes) else notes,
                utc_text(measured) if measured is not None else None,
                measured,  # twice: utc_sql reads the epoch twice
                measured,
                utc_text(it.received_epoch),
                it.received_epoch,
                it.received_epoch,
                None if packed else json.dumps(r.device_values, sort_keys=True),
            )
        )
        segment = self.labels.__getitem__
        self.impedances += [(mid, segment(z[0]), *z[1:]) for z in r.impedance.records()]
        self.decoded.append((it.raw_frame_id,))


#: a result row's names: (measurement_id, *RESULT_COLUMNS, computed_at_utc)
_RESULT_ROW = ("measurement_id", *ROW_KEYS, "computed_at_utc")
#: positions in such a row of the texts stored as label ids (m009), and of the others
_LABELLED = tuple(
    k for k, name in enumerate(_RESULT_ROW) if dict(segment_result_columns()).get(name, False)
)
_PLAIN = tuple(k for k in range(len(_RESULT_ROW)) if k not in _LABELLED)


class _Labels(dict[str | None, int | None]):
    """Label ids by text (None for None), looked up or added on first use. One per
    batch, inside its transaction: no id outlives it, so an id a rolled-back
    transaction or savepoint made is never used."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        super().__init__()
        self.conn = conn

    def __missing__(self, text: str | None) -> int | None:
        if text is None:
            return None
        self.conn.execute("INSERT INTO label (text) VALUES (?) ON CONFLICT DO NOTHING", (text,))
        (i,) = self.conn.execute("SELECT id FROM label WHERE text = ?", (text,)).fetchone()
        self[text] = int(i)
        return int(i)


#: warnings texts a Store remembers having seen (see Store._repeated)
_SEEN = 4096
#: frames' digests a Store keeps between journal and save_many (Store._digests)
_DIGESTS = 100_000


class Store:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.conn = db.conn
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'pseudonym_key'").fetchone()
        self._key = bytes.fromhex(row[0])
        self._seen: dict[str, None] = {}
        #: SHA-256 of frames journaled and not yet saved, by their bytes: a frame that is
        #: a chunk as received (not one decoded with its file's header) is hashed once
        self._digests: dict[bytes, bytes] = {}

    def _repeated(self, text: str) -> bool:
        """Whether this store saw ``text`` before (of the last :data:`_SEEN` it saw): the
        warnings of many measurements are stored as a label, one's own as its text."""
        seen = self._seen
        if text in seen:
            return True
        if len(seen) >= _SEEN:
            del seen[next(iter(seen))]
        seen[text] = None
        return False

    def pseudonym(self, external_id: str) -> str:
        """A stable pseudonym for logs and reports; never the identifier itself."""
        return pseudonym(self._key, external_id)

    # -- journal -------------------------------------------------------------
    def journal(
        self,
        port: str,
        driver: str,
        chunks: Sequence[Chunk],
        received_epoch: float,
        key: str | None = None,
        chunk_keys: Sequence[str] | None = None,
    ) -> list[Journaled]:
        """Commit every chunk (frames 'pending'); return its row id and status.

        With a batch ``key``, chunk ``i`` is journaled as ``KEY.i`` once: a
        batch journaled before comes back with its existing rows and statuses
        (``new`` False), so a retried or replayed batch is never stored twice.
        """
        out: list[Journaled] = []
        when = utc_text(received_epoch)
        if len(self._digests) > _DIGESTS:  # frames journaled but never saved (rejected)
            self._digests.clear()
        keys: list[str | None]
        if chunk_keys is not None:  # imports: the file, the byte offset and the bytes
            keys = list(chunk_keys)
        else:
            keys = [f"{key}.{i}" for i in range(len(chunks))] if key else [None] * len(chunks)
        with self.db.atomic():  # BEGIN IMMEDIATE: waits for the write lock first
            seen: dict[str, tuple[int, str]] = {}
            if any(k is not None for k in keys):
                seen = {
                    k: (int(i), st)
                    for k, i, st in self.conn.execute(
                        "SELECT chunk_key, id, status FROM raw_frame WHERE chunk_key IN "
                        f"({', '.join('?' for _ in keys)})",
                        keys,
                    )
                }
            # this connection holds the write lock: ids are allocated here, as SQLite
            # would (max + 1), so the new rows go in with one executemany
            next_id = int(
                self.conn.execute("SELECT coalesce(max(id), 0) FROM raw_frame").fetchone()[0]
            )
            rows = []
            for k, c in zip(keys, chunks, strict=True):
                if k is not None and k in seen:
                    out.append(Journaled(*seen[k], new=False))
                    continue
                status = "pending" if c.kind == "frame" else "discarded"
                next_id += 1
                digest = hashlib.sha256(c.data).digest()
                if c.kind == "frame":
                    self._digests[c.data] = digest
                rows.append(
                    (
                        next_id,
                        port,
                        driver,
                        c.kind,
                        when,
                        received_epoch,
                        c.data,
                        digest.hex(),
                        status,
                        c.reason,
                        k,
                    )
                )
                out.append(Journaled(next_id, status, new=True))
            self.conn.executemany(
                "INSERT INTO raw_frame (id, port, driver, kind, received_at_utc, received_at_epoch,"
                " data, sha256, status, reason, chunk_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        return out

    def save_cursor(self, cursor: FileCursor) -> None:
        """Remember how far a file is journaled (call inside the journal's transaction)."""
        self.conn.execute(
            "INSERT INTO source_file (source, path, st_dev, st_ino, offset_bytes, updated_at_utc)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (source, path) DO UPDATE SET"
            " st_dev = excluded.st_dev, st_ino = excluded.st_ino,"
            " offset_bytes = excluded.offset_bytes, updated_at_utc = excluded.updated_at_utc",
            (
                cursor.source,
                cursor.path,
                cursor.st_dev,
                cursor.st_ino,
                cursor.offset_bytes,
                utc_now(),
            ),
        )

    def file_cursors(self, source: str) -> dict[str, FileCursor]:
        rows = self.conn.execute(
            "SELECT path, st_dev, st_ino, offset_bytes FROM source_file WHERE source = ?",
            (source,),
        ).fetchall()
        return {r[0]: FileCursor(source, r[0], int(r[1]), int(r[2]), int(r[3])) for r in rows}

    def reject(self, raw_frame_id: int, reason: str, offset: int | None) -> None:
        with self.db.atomic():
            self.conn.execute(
                "UPDATE raw_frame SET status = 'rejected', reason = ?, error_offset = ? WHERE id = ?",
                (reason, offset, raw_frame_id),
            )

    def pending(self) -> list[PendingFrame]:
        rows = self.conn.execute(
            "SELECT f.id, f.port, f.driver, f.data, f.received_at_epoch, (SELECT h.data FROM"
            " raw_frame h WHERE f.reason LIKE 'context sha256 %' AND h.kind = 'junk' AND h.sha256 ="
            " substr(f.reason, 16) LIMIT 1) FROM raw_frame f WHERE f.status = 'pending'"
            " ORDER BY f.id"
        ).fetchall()
        # a frame decoded with an earlier chunk (a CSV row with its header): both again
        return [
            PendingFrame(int(r[0]), r[1], r[2], bytes(r[5] or b"") + bytes(r[3]), float(r[4]))
            for r in rows
        ]

    # -- measurements ----------------------------------------------------------
    def save(
        self,
        *,
        raw_frame_id: int,
        frame: bytes,
        port: str,
        driver: str,
        reading: Reading,
        received_epoch: float,
        measured_epoch: float | None,
        results: Iterable[dict[str, object]],
        warnings: list[str],
    ) -> SavedMeasurement | None:
        """Store one decoded measurement; None if this device already sent this frame."""
        item = ToSave(
            raw_frame_id, frame, reading, measured_epoch, list(results), warnings, received_epoch
        )
        return self.save_many(port, driver, [item])[0]

    def save_many(
        self, port: str, driver: str, items: Sequence[ToSave], *, simulated: bool = False
    ) -> list[SavedMeasurement | None]:
        """Store decoded measurements of one port in one transaction, with executemany.

        Per item: the SavedMeasurement, or None when the device already sent this
        exact frame (its raw_frame becomes 'duplicate'). One writer holds the
        database, so measurement ids are allocated here, in order. ``simulated``:
        the port is the built-in simulator, so new devices and subjects are marked so.
        """
        now = utc_now()
        c = self.conn
        out: list[SavedMeasurement | None] = []
        with self.db.atomic():  # BEGIN IMMEDIATE (store.db.WriterDatabase): the write lock
            devices = self._devices(port, driver, items, now, simulated)
            subjects = self._subjects(items, now, simulated)
            digest = self._digests.pop
            shas = [digest(it.frame, b"") or hashlib.sha256(it.frame).digest() for it in items]
            device_ids = [devices[_device_key(it.reading)] for it in items]
            seen = self._sent_before(device_ids, shas)
            next_id = int(
                c.execute("SELECT coalesce(max(id), 0) FROM measurement_row").fetchone()[0]
            )
            rows = _Rows(_Labels(c), self._repeated)
            for it, sha, device_id in zip(items, shas, device_ids, strict=True):
                if (device_id, sha) in seen:
                    rows.dups.append(("this device already sent this exact frame", it.raw_frame_id))
                    out.append(None)
                    continue
                seen.add((device_id, sha))
                next_id += 1
                subject = subjects.get(it.reading.subject_id or "")
                rows.add(next_id, it, device_id, subject[0] if subject else None, sha)
                if it.result_rows is not None:
                    rows.results += [(next_id, *r, now) for r in it.result_rows]
                else:
                    rows.results += self._result_rows(next_id, it.results, now)
                out.append(
                    SavedMeasurement(
                        next_id,
                        it.raw_frame_id,
                        port,
                        subject[1] if subject else None,
                        it.results,
                        it.warnings,
                    )
                )
            self._insert(rows)
        return out

    def _devices(
        self, port: str, driver: str, items: Sequence[ToSave], now: str, simulated: bool
    ) -> dict[tuple[str, str], int]:
        """device.id per (model, serial number) the items come from, added if new (marked
        simulated when the port is the built-in simulator)."""
        c = self.conn
        devices: dict[tuple[str, str], int] = {}
        for key in {_device_key(it.reading) for it in items}:
            c.execute(
                "INSERT OR IGNORE INTO device"
                " (driver, port, model, serial_number, first_seen_utc, simulated)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (driver, port, *key, now, int(simulated)),
            )
            devices[key] = c.execute(
                "SELECT id FROM device WHERE driver = ? AND port = ? AND model = ? AND serial_number = ?",
                (driver, port, *key),
            ).fetchone()[0]
        return devices

    def _subjects(
        self, items: Sequence[ToSave], now: str, simulated: bool
    ) -> dict[str, tuple[int, str]]:
        """(subject.id, pseudonym) per patient ID the items carry, added if new; all-zero
        or blank IDs mean "no subject"."""
        c = self.conn
        subjects: dict[str, tuple[int, str]] = {}
        ext_ids = {
            it.reading.subject_id
            for it in items
            if it.reading.subject_id is not None and it.reading.subject_id.strip("0 ") != ""
        }
        if ext_ids:
            ordered = sorted(ext_ids)
            c.executemany(
                "INSERT OR IGNORE INTO subject (external_id, pseudonym, first_seen_utc, simulated)"
                " VALUES (?, ?, ?, ?)",
                [(e, self.pseudonym(e), now, int(simulated)) for e in ordered],
            )
            for k in range(0, len(ordered), 500):  # one query for many, not one each
                part = ordered[k : k + 500]
                for e, i, p in c.execute(
                    "SELECT external_id, id, pseudonym FROM subject WHERE external_id IN"
                    f" ({', '.join('?' for _ in part)})",
                    part,
                ):
                    subjects[e] = (int(i), str(p))
            if len(subjects) < len(ext_ids):  # a pseudonym is another subject's (never the ID)
                raise PseudonymCollision(
                    "the subject's pseudonym is already another subject's "
                    "(two patient IDs map to one pseudonym)"
                )
        return subjects

    def _sent_before(
        self, device_ids: Sequence[int], shas: Sequence[bytes]
    ) -> set[tuple[int, bytes]]:
        """(device id, frame SHA-256) of the given frames a device already sent. A stored
        hash is its 32 bytes, or its hex text (stored before m011 or through the view)."""
        by_device: dict[int, list[bytes]] = {}
        for device_id, sha in zip(device_ids, shas, strict=True):
            by_device.setdefault(device_id, []).append(sha)
        seen: set[tuple[int, bytes]] = set()
        for device_id, dev_shas in by_device.items():
            for k in range(0, len(dev_shas), 250):
                part = dev_shas[k : k + 250]
                found = self.conn.execute(
                    "SELECT frame_sha256 FROM measurement_row WHERE device_id = ?"
                    f" AND frame_sha256 IN ({', '.join('?' for _ in part)},"
                    f" {', '.join('?' for _ in part)})",
                    (device_id, *part, *(h.hex() for h in part)),
                ).fetchall()
                seen.update(
                    (device_id, h if isinstance(h, bytes) else bytes.fromhex(h)) for (h,) in found
                )
        return seen

    def _insert(self, rows: _Rows) -> None:
        """Write a batch's rows (the caller holds the transaction)."""
        c = self.conn
        c.executemany(self.INSERT_MEASUREMENT, rows.measurements)
        c.executemany(
            "INSERT INTO impedance_row (measurement_id, segment, freq_khz, r_ohm, x_ohm,"
            " magnitude_only) VALUES (?, ?, ?, ?, ?, ?)",
            rows.impedances,
        )
        # new measurements (ids allocated above): nothing to replace, and a plain INSERT
        # skips REPLACE's conflict handling (40 % of the results' insert time)
        self.insert_result_tuples(rows.results, replace=False)
        c.executemany(
            "UPDATE raw_frame SET status = 'decoded', reason = NULL WHERE id = ?", rows.decoded
        )
        c.executemany(
            "UPDATE raw_frame SET status = 'duplicate', reason = ? WHERE id = ?", rows.dups
        )

    #: measurements go to the table ``measurement_row`` (m011): a time's text only where
    #: it is not the text of its epoch, as the ``measurement`` view shows it
    INSERT_MEASUREMENT = (
        "INSERT INTO measurement_row (id, raw_frame_id, device_id, subject_id, frame_sha256,"
        " device_clock, measured_at_epoch, received_at_epoch, sex, age_years, height_cm,"
        " weight_kg, value_keys, value_list, warnings, measured_at_utc, received_at_utc,"
        " device_values_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
        f" nullif(?, {utc_sql('?')}), nullif(?, {utc_sql('?')}), ?)"
    )

    #: segment_result's columns between measurement_id and computed_at_utc: the
    #: columns of the result record (``bia_acq.core.estimate.Results``)
    RESULT_COLUMNS = ROW_KEYS

    _RESULT_GETTER = operator.itemgetter(*RESULT_COLUMNS)

    #: results go to the table ``result`` (m009): the plain values, then the label ids
    INSERT_RESULT = (
        f"INSERT OR REPLACE INTO result ({', '.join(_RESULT_ROW[k] for k in _PLAIN + _LABELLED)})"
        f" VALUES ({', '.join('?' for _ in _RESULT_ROW)})"
    )

    def _result_rows(
        self, measurement_id: int, results: Iterable[dict[str, object]], now: str
    ) -> list[tuple[object, ...]]:
        get = self._RESULT_GETTER
        results = list(results)
        try:  # rows from Results carry every column
            return [(measurement_id, *get(r), now) for r in results]
        except KeyError:
            cols = self.RESULT_COLUMNS
            return [(measurement_id, *(r.get(k) for k in cols), now) for r in results]

    def insert_result_tuples(
        self, rows: Iterable[tuple[object, ...]], *, replace: bool = True
    ) -> None:
        """Rows of (measurement_id, *RESULT_COLUMNS, computed_at_utc) with their texts
        (``Results.tuples``), stored with label ids in one pass (a text's id is looked
        up, or added, the first time the batch has it); the caller holds the transaction.
        ``replace``: a stored result of the same measurement, segment, method and version
        is replaced (a recompute); else it is an error."""
        plain = operator.itemgetter(*_PLAIN)
        labelled = operator.itemgetter(*_LABELLED)
        label = _Labels(self.conn).__getitem__
        sql = self.INSERT_RESULT if replace else self.INSERT_RESULT.replace(" OR REPLACE", "", 1)
        self.conn.executemany(sql, ((*plain(r), *map(label, labelled(r))) for r in rows))

    def label_ids(self, texts: Iterable[str]) -> dict[str, int]:
        """The ``label`` id of each text, adding the new ones."""
        labels = _Labels(self.conn)
        return {t: int(labels[t] or 0) for t in texts}

    def record_method(self, method: Method, bands: Bands | None) -> None:
        """Upsert the method version and the bands its classifications use."""
        with self.db.atomic():
            self.conn.execute(METHOD_UPSERT, method_row(method, bands))
