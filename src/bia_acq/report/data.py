"""What a report shows, read from the views through a read-only connection."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

from bia_acq.errors import BiaError
from bia_acq.store import read
from bia_acq.store.db import subject_row
from bia_acq.store.writer import short_pseudonym

#: Segments in the order reports list them: pairs side by side.
SEGMENT_ORDER = ("whole_body", "right_arm", "left_arm", "trunk", "right_leg", "left_leg")
SEGMENT_LABEL = {s: s.replace("_", " ").capitalize() for s in SEGMENT_ORDER}


class SubjectNotFound(BiaError):
    """No subject matches; the message never repeats the ID (it is health data)."""

    exit_code = 2


@dataclass(frozen=True)
class MethodInfo:
    name: str
    version: str
    description: str
    citation: str
    normal_max: float | None  # None: no published band (issue 12)
    slight_max: float | None
    bands_source: str


@dataclass
class SubjectData:
    """One subject: identity, latest attributes, method, trend and latest rows per segment."""

    subject_id: int
    pseudonym: str
    external_id: str
    attributes: dict[str, Any]
    method: MethodInfo | None
    trend: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    latest: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def visits(self) -> list[dict[str, Any]]:
        """Distinct measurements, oldest first, with each segment's ratio by name."""
        by_id: dict[int, dict[str, Any]] = {}
        for seg, rows in self.trend.items():
            for r in rows:
                v = by_id.setdefault(
                    r["measurement_id"],
                    {
                        "measurement_id": r["measurement_id"],
                        "measured_at_utc": r["measured_at_utc"],
                        "measured_at_epoch": r["measured_at_epoch"],
                        "days_since_baseline": r["days_since_baseline"],
                    },
                )
                v[seg] = r["ecw_tbw_ratio"]
                v[seg + "_classification"] = r["classification"]
                v[seg + "_change"] = r["ecw_tbw_ratio_change"]
        return sorted(by_id.values(), key=lambda v: (v["measured_at_epoch"], v["measurement_id"]))


def require_reader_schema(conn: sqlite3.Connection, path: object) -> None:
    """Refuse, with what to do, a database written before the reader views existed."""
    if not read.has_reader_views(conn):
        raise BiaError(
            f"database {path} has no reader views (it is not a bia-acq database, or was "
            "written by an older bia-acq): if the service writes it, restart the service, which "
            "upgrades it (`systemctl restart bia-acq`, or `bia-acq run --config FILE`)"
        )


def find_subject(conn: sqlite3.Connection, key: str) -> int:
    """The subject.id whose patient ID or pseudonym is ``key``."""
    row = subject_row(conn, key)
    if row is None:
        raise SubjectNotFound(
            "no subject in this database has that patient ID or pseudonym "
            "(give the ID exactly as the analyzer sent it, leading zeros included, or the "
            "P-… pseudonym; `bia-acq subjects --db DATABASE` lists them)"
        )
    return int(row[0])


def subject_ids(conn: sqlite3.Connection) -> list[int]:
    """Subjects with at least one result of the reporting method, by pseudonym."""
    return read.reported_subject_ids(conn)


def _method(conn: sqlite3.Connection, name: str, version: str) -> MethodInfo | None:
    row = read.method(conn, name, version)
    return MethodInfo(*row) if row else None  # type: ignore[arg-type]


def load_subject(conn: sqlite3.Connection, subject_id: int) -> SubjectData:
    """Everything a report shows about one subject."""
    s = read.subject(conn, subject_id)
    if s is None:
        raise SubjectNotFound("no such subject")
    last = read.latest_attributes(conn, subject_id)
    data = SubjectData(
        subject_id=int(s["id"]),
        pseudonym=short_pseudonym(s["pseudonym"]),  # as the UI shows it
        external_id=s["external_id"],
        attributes=dict(last) if last else {},
        method=None,
    )
    for r in read.trend(conn, subject_id):
        data.trend.setdefault(r["segment"], []).append(dict(r))
    for r in read.latest(conn, subject_id):
        data.latest[r["segment"]] = dict(r)
    ref = data.latest.get("whole_body") or next(iter(data.latest.values()), None)
    if ref is not None:
        data.method = _method(conn, ref["method"], ref["method_version"])
    return data
