"""Reports and exports on the central database: ``--db postgresql://…``.

The readers (:mod:`bia_acq.store.read`) query the views and a few tables of a
PC's database through a :class:`sqlite3.Connection`. On the central database the
schema ``bia_acq_read`` has views named like those tables (``measurement``,
``device``, ``subject``, ``impedance``, ``method``, ``meta``) with the ids the
central views show (a measurement's across sites, a subject's person), so the same
SQL gives the same output, over every site. :class:`Connection` is the little of
the sqlite3 interface the readers use, over psycopg: ``?`` parameters, rows by
index and by name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from bia_acq.errors import BiaError

URL_SCHEMES = ("postgresql://", "postgres://")
READ_SCHEMA = "bia_acq_read"


class CentralURL(str):
    """A ``--db`` that names a central database; ``.name`` is the database's name."""

    __slots__ = ()

    @property
    def name(self) -> str:
        return self.rsplit("/", 1)[-1].split("?", 1)[0] or "postgres"


def database_arg(text: str) -> Path | CentralURL:
    """argparse type of ``--db``: a SQLite file, or a libpq URL of the central database."""
    return CentralURL(text) if text.startswith(URL_SCHEMES) else Path(text)


def is_central(db: object) -> bool:
    return isinstance(db, CentralURL)


class Row(tuple[Any, ...]):
    """A row by index or column name, like :class:`sqlite3.Row` (``dict(row)`` works)."""

    _names: tuple[str, ...]

    def keys(self) -> tuple[str, ...]:
        return self._names

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._names.index(key))
        return tuple.__getitem__(self, key)


class Cursor:
    def __init__(self, rows: list[Row]) -> None:
        self._rows = rows

    def fetchone(self) -> Row | None:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[Row]:
        return self._rows

    def __iter__(self) -> Iterator[Row]:
        return iter(self._rows)


_PARAM = re.compile(r"\?")


class Connection:
    """The part of :class:`sqlite3.Connection` the readers use, on the central database."""

    def __init__(self, url: str) -> None:
        try:
            import psycopg
        except ImportError:
            from bia_acq.errors import ConfigError

            raise ConfigError(
                "psycopg is not installed", fix="pip install 'bia-acq[central]'"
            ) from None
        try:
            self._conn = psycopg.connect(
                url,
                connect_timeout=30,
                application_name="bia-acq reader",
                options=f"-c search_path={READ_SCHEMA},bia_acq",
                autocommit=True,
            )
        except psycopg.Error as exc:
            lines = str(exc).strip().splitlines()
            raise BiaError(
                f"cannot read the central database {url}: {lines[0] if lines else exc} "
                "(check the URL, the reporting role and its password in ~/.pgpass)"
            ) from None
        self._conn.read_only = True
        self.row_factory: object = None  # the readers set it; rows are always Row

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        cur = self._conn.execute(_PARAM.sub("%s", sql.replace("%", "%%")), list(params))
        if cur.description is None:
            return Cursor([])
        names = tuple(d.name for d in cur.description)
        rows = []
        for values in cur.fetchall():
            r = Row(values)
            r._names = names
            rows.append(r)
        return Cursor(rows)

    def close(self) -> None:
        self._conn.close()


def open_reader(db: Path | CentralURL) -> Any:
    """A read-only connection for reports and exports: the SQLite file, or the central
    database's reader schema."""
    if is_central(db):
        return Connection(str(db))
    from bia_acq.store.db import open_readonly

    return open_readonly(db)
