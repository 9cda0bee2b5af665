"""Shared fixtures: the published example frame, subprocess helpers, readings strategies."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st

from bia_acq.model import Impedance, Reading
from bia_acq.protocols.tanita import IMPEDANCE_PREFIX, MAGNITUDE_PREFIX, SEGMENT_SUFFIX

# No per-example wall-clock deadline: on a loaded 2-core CI machine it only makes
# tests flaky; speed is measured in bench/, never asserted in tests.
settings.register_profile("bia-acq", deadline=None)
settings.load_profile("bia-acq")

DATA = Path(__file__).parent / "data"

#: The synthetic MC-780 frame of the project's PROTOCOLS notes (checksum A7).
EXAMPLE_FRAME = (DATA / "mc780-example.txt").read_bytes()


def run_cli(
    *args: str,
    cwd: Path | None = None,
    input: bytes | None = None,
    timeout: float = 60,
    prefix: Sequence[str] = (),
):
    """Run ``python -m bia_acq ARGS`` as a real process (``prefix``: a command it runs under)."""
    return subprocess.run(
        [*prefix, sys.executable, "-m", "bia_acq", *args],
        cwd=cwd,
        input=input,
        capture_output=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def query(db: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    """Rows of ``sql`` on the SQLite file ``db`` (a connection of its own, closed)."""
    c = sqlite3.connect(db, timeout=10)
    try:
        return c.execute(sql, args).fetchall()
    finally:
        c.close()


def start_cli(*args: str, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """Start ``python -m bia_acq ARGS`` as a real process, its output in pipes."""
    return subprocess.Popen(
        [sys.executable, "-m", "bia_acq", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


@pytest.fixture(scope="session")
def clinic_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database with an injury-recovery patient and three others (see readers.py)."""
    from readers import fill_clinic

    path = tmp_path_factory.mktemp("clinic") / "clinic.db"
    fill_clinic(path)
    return path


@pytest.fixture
def example_frame() -> bytes:
    return EXAMPLE_FRAME


FREQS = sorted({f for _, f in IMPEDANCE_PREFIX.values()})
SEGMENTS = sorted(s.value for s in SEGMENT_SUFFIX.values())

#: control prefixes seen in real output (MC-780; BC-601 metric; weight-only frames)
CONTROLS = [
    (("0", "16"), ("~0", "1"), ("~1", "1"), ("~2", "1")),
    (("0", "16"), ("~0", "2"), ("~1", "2"), ("~2", "3"), ("~3", "4")),
    (("0", "16"), ("~0", "1")),
]

tenth = st.integers(min_value=1, max_value=20000).map(lambda v: v / 10)
neg_tenth = st.integers(min_value=-3000, max_value=-1).map(lambda v: v / 10)
text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E, blacklist_characters='"{'),
    max_size=20,
)


@st.composite
def readings(draw: st.DrawFn) -> Reading:
    """Readings a Tanita device could send (values at 0.1 resolution, none 'not measured')."""
    segs = draw(st.lists(st.sampled_from(SEGMENTS), unique=True, max_size=len(SEGMENTS)))
    freqs = draw(st.lists(st.sampled_from(FREQS), unique=True, min_size=1, max_size=len(FREQS)))
    points = tuple(
        Impedance(s, f, draw(tenth), draw(st.one_of(st.none(), neg_tenth)))
        for s in segs
        for f in freqs
    )
    keys = st.text(alphabet="ABCDEFGNOPSTUVWYZbdefghkmnoqstuvwxyz", min_size=2, max_size=3).filter(
        lambda k: (
            k
            not in {"MO", "SN", "ID", "GE", "AG", "Hm", "Wk", "Da", "DT", "DA", "TI", "Ti", "CS"}
            | {"Wp", "Ws", "Hf"}
            and not (
                len(k) == 2
                and k[0] in {*IMPEDANCE_PREFIX, *MAGNITUDE_PREFIX}
                and k[1] in SEGMENT_SUFFIX
            )
        )
    )
    values = draw(
        st.dictionaries(
            keys, st.one_of(st.integers(-999, 99999), neg_tenth, tenth, text), max_size=6
        )
    )
    when = draw(
        st.one_of(
            st.none(),
            st.datetimes(
                min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2099, 12, 31)
            ).map(lambda t: t.replace(second=0, microsecond=0)),
        )
    )
    return Reading(
        model=draw(st.one_of(st.none(), text)),
        serial_number=draw(st.one_of(st.none(), text)),
        subject_id=draw(st.one_of(st.none(), text)),
        measured_at=when,
        sex=draw(st.sampled_from([None, "male", "female"])),
        age_years=draw(st.one_of(st.none(), st.integers(0, 120))),
        height_cm=draw(st.one_of(st.none(), tenth)),
        weight_kg=draw(st.one_of(st.none(), tenth)),
        impedance=points,
        device_values=values,
        control=draw(st.sampled_from(CONTROLS)),
    )
