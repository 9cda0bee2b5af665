"""Subjects' baselines: the measurement a subject's changes are measured from.

A clinician's choice is a row of ``subject_baseline``; without one the subject's
first measurement is the baseline (the views do the same).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from sqlite_utils import Database

from bia_acq.errors import ConfigError
from bia_acq.utc import utc_now


@dataclass(frozen=True)
class Baseline:
    """A subject's chosen baseline measurement (or None) and first measurement (or None)."""

    chosen: int | None
    first: int | None


def choose(db: Database, subject_id: int, measurement_id: int, pseudonym: str) -> None:
    """Make ``measurement_id`` the subject's baseline; a ``--measurement`` ConfigError if it
    is not one of the subject's measurements."""
    conn = db.conn
    with db.atomic():
        if not conn.execute(
            "SELECT 1 FROM measurement WHERE id = ? AND subject_id = ?",
            (measurement_id, subject_id),
        ).fetchone():
            raise ConfigError(
                f"--measurement: measurement {measurement_id} is not one of {pseudonym}'s",
                fix="pick one of this subject's measurement ids",
            )
        conn.execute(
            "INSERT INTO subject_baseline (subject_id, measurement_id, chosen_at_utc)"
            " VALUES (?, ?, ?) ON CONFLICT (subject_id) DO UPDATE SET"
            " measurement_id = excluded.measurement_id, chosen_at_utc = excluded.chosen_at_utc",
            (subject_id, measurement_id, utc_now()),
        )


def clear(db: Database, subject_id: int) -> None:
    """Go back to the first measurement as the subject's baseline."""
    with db.atomic():
        db.conn.execute("DELETE FROM subject_baseline WHERE subject_id = ?", (subject_id,))


def baseline(conn: sqlite3.Connection, subject_id: int) -> Baseline:
    chosen = conn.execute(
        "SELECT measurement_id FROM subject_baseline WHERE subject_id = ?", (subject_id,)
    ).fetchone()
    first = conn.execute(
        "SELECT id FROM measurement WHERE subject_id = ?"
        " ORDER BY COALESCE(measured_at_epoch, received_at_epoch), id LIMIT 1",
        (subject_id,),
    ).fetchone()
    return Baseline(int(chosen[0]) if chosen else None, int(first[0]) if first else None)
