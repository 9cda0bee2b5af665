"""The work list: subjects the operator queues for polled analyzers.

A polled analyzer (Tanita PC mode) measures only when the PC sends the
subject's settings and a start command. The operator adds each subject
(``bia-acq worklist add``); the port's reader takes the oldest waiting entry
for its port (or for any port), marks it ``measuring``, runs the dialogue, and
the stored measurement is linked to that entry (``done``) or the entry is
marked ``failed`` with the reason. A measurement is therefore attributed to
the entry it was started for, never to whoever was measured last.

The rows are read and written by :mod:`bia_acq.store.worklist` (re-exported
here); this module keeps what a measurement's reading owes the entry.
"""

from __future__ import annotations

import dataclasses

from bia_acq.model import Reading
from bia_acq.store.worklist import (
    STATUSES,
    Entry,
    add,
    claim,
    claim_next,
    clear,
    entries,
    fail,
    get,
    has_waiting,
    mark_done,
    release_stale,
)

__all__ = [
    "STATUSES",
    "Entry",
    "add",
    "attribute",
    "claim",
    "claim_next",
    "clear",
    "entries",
    "fail",
    "get",
    "has_waiting",
    "mark_done",
    "release_stale",
]


def attribute(reading: Reading, entry: Entry) -> tuple[Reading, list[str]]:
    """The reading as measured for ``entry``: its subject, and warnings where the device differs.

    The work list is what the operator said about this measurement; the device
    echoes the settings it was sent, so a difference means a wrong setting on
    the device and is reported, not silently taken.
    """
    warnings: list[str] = []
    sent = reading.subject_id
    if sent is not None and sent.strip("0 ") and sent != entry.external_id:
        warnings.append(
            f"the analyzer's subject ID differs from work-list entry {entry.id}'s; "
            "stored for the work-list subject"
        )
    for attr, mine in (
        ("sex", entry.sex),
        ("age_years", entry.age_years),
        ("height_cm", entry.height_cm),
    ):
        theirs = getattr(reading, attr)
        if theirs is not None and theirs != mine:
            warnings.append(
                f"{attr} from the analyzer ({theirs}) differs from the work list ({mine})"
            )
    fixed = dataclasses.replace(
        reading,
        subject_id=entry.external_id,
        sex=reading.sex or entry.sex,
        age_years=reading.age_years if reading.age_years is not None else entry.age_years,
        height_cm=reading.height_cm if reading.height_cm is not None else entry.height_cm,
    )
    return fixed, warnings
