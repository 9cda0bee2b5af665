"""Issue 11: random bytes and random-but-valid-looking frames of every codec through
framer → journal → decode → estimate → store, into a real SQLite file.

Properties: no exception escapes the writer's path, no non-finite number lands in
any table, and every input byte is journaled (as a frame, junk or truncated chunk).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from test_reliability import assert_all_finite, tanita

from bia_acq.acquire import Batch, Ingest, PortRuntime
from bia_acq.drivers import builtin_profiles
from bia_acq.model import Impedance, Reading
from bia_acq.store.db import open_writer
from bia_acq.store.writer import Store

#: one profile per protocol codec
PROFILES = {p.protocol: p for p in sorted(builtin_profiles().values(), key=lambda p: p.name)}
CODECS = sorted(PROFILES)

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e4, max_value=1e4),
    st.integers(min_value=-(10**30), max_value=10**30),
)
SEGMENTS = ["whole_body", "right_arm", "left_arm", "trunk", "right_leg", "left_leg"]


@st.composite
def wild_readings(draw: st.DrawFn) -> Reading:
    """Readings with any number anywhere: what a device on a bad firmware day sends."""
    points = []
    for seg in draw(st.lists(st.sampled_from(SEGMENTS), unique=True, max_size=3)):
        for f in draw(
            st.lists(st.sampled_from([1.0, 5.0, 50.0, 250.0, 500.0]), unique=True, max_size=3)
        ):
            points.append(Impedance(seg, f, draw(numbers), draw(st.one_of(st.none(), numbers))))
    return Reading(
        model="X",
        subject_id=draw(st.one_of(st.none(), st.text("0123456789AZ", min_size=1, max_size=18))),
        measured_at=draw(
            st.one_of(st.none(), st.datetimes(dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31)))
        ),
        sex=draw(st.sampled_from([None, "male", "female"])),
        age_years=draw(st.one_of(st.none(), st.integers(-(10**22), 10**22))),
        height_cm=draw(st.one_of(st.none(), numbers)),
        weight_kg=draw(st.one_of(st.none(), numbers)),
        impedance=tuple(points),
    )


_PIPES: dict[Path, Pipeline] = {}


def _pipeline(tmp_path: Path, protocol: str) -> Pipeline:
    """One database per test and codec, shared by its examples (opening one costs)."""
    path = tmp_path / f"{protocol}.db"
    if path not in _PIPES:
        _PIPES[path] = Pipeline(path, protocol)
    return _PIPES[path]


@pytest.fixture(autouse=True)
def _close_pipelines() -> Iterator[None]:
    yield
    for pipe in _PIPES.values():
        pipe.store.db.close()
    _PIPES.clear()


class Pipeline:
    """The writer's path (as ``bia-acq import`` and the service use it) on a real file."""

    def __init__(self, path: Path, protocol: str) -> None:
        profile = PROFILES[protocol]
        self.store = Store(open_writer(path, report_method="hanai-bis"))
        self.ingest = Ingest(self.store, "hanai-bis", profiles={profile.name: profile})
        self.rt = PortRuntime("fuzz", profile.name, profile.codec(), None, live=False)
        self.ingest.ports["fuzz"] = self.rt
        self.sent = 0
        self.path = path

    def feed(self, data: bytes) -> None:
        framer = self.rt.codec.framer()
        chunks = framer.feed(data, 0.0) + framer.flush("end of input")
        self.sent += len(data)
        self.ingest.handle(Batch("fuzz", self.rt.driver, chunks, 1.7e9))

    def check(self, path: Path) -> None:
        c = sqlite3.connect(path)
        try:
            (journaled,) = c.execute(
                "SELECT coalesce(sum(length(data)), 0) FROM raw_frame"
            ).fetchone()
            assert journaled == self.sent
            assert c.execute(
                "SELECT count(*) FROM raw_frame WHERE status = 'pending'"
            ).fetchone() == (0,)
        finally:
            c.close()
        assert_all_finite(path)


@pytest.mark.parametrize("protocol", CODECS)
@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400))
def test_random_bytes_never_escape_and_are_all_journaled(
    tmp_path: Path, protocol: str, data: bytes
) -> None:
    pipe = _pipeline(tmp_path, protocol)
    pipe.feed(data)
    pipe.check(pipe.path)


@pytest.mark.parametrize("protocol", CODECS)
@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(reading=wild_readings())
@example(reading=Reading(model="X", age_years=10**20, weight_kg=70.0))
@example(
    reading=Reading(
        model="X", weight_kg=70.0, impedance=(Impedance("right_arm", 50.0, 1e200, -1e200),)
    )
)
def test_valid_looking_frames_with_wild_values_are_stored_or_rejected(
    tmp_path: Path, protocol: str, reading: Reading
) -> None:
    codec = PROFILES[protocol].codec()
    try:
        frame = codec.encode(reading)
    except (ValueError, TypeError, OverflowError, KeyError, AssertionError):
        assume(False)  # the codec cannot say this at all
    pipe = _pipeline(tmp_path, protocol)
    pipe.feed(frame)
    pipe.feed(tanita() if protocol == "tanita" else frame)  # the writer goes on
    pipe.check(pipe.path)
