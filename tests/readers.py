"""Databases for the reader tests, filled through the real path (codec → Ingest → Store).

``fill_clinic`` stores a healthy subject, one with generalised fluid overload and one
with a swollen right leg, all from the simulator's population model, and one
injury-recovery patient: a right leg with extra ECW (+25 % of the leg's own at the
first visit, ECW/TBW about +0.05) resolving with a two-week time constant
(half-life 9.7 days) over eight weeks of visits, while every other segment stays as
it was (``bia_acq.simulator.population``: R0 follows the leg's water).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from pathlib import Path

import numpy as np

from bia_acq.acquire import Batch, Ingest
from bia_acq.config import PortConfig
from bia_acq.core.methods import site_bands
from bia_acq.drivers import get_profile
from bia_acq.protocols.base import Chunk
from bia_acq.simulator.population import Change, Group, Subject, make_subject, reading_for
from bia_acq.store.db import open_writer
from bia_acq.store.writer import Store

RECOVERY_ID = "0000000000004711"
RECOVERY_DAYS = (0, 3, 7, 14, 21, 28, 42, 56)
T0 = dt.datetime(2026, 9, 1, 9, 30)

BASELINE = (0.43, 0.004)  # ECW/TBW mean and SD of the baseline (Hanai-BIS, healthy)
RECOVERY = Group(
    "injury recovery",
    ecw_tbw=BASELINE,
    changes=(
        Change("right_leg", (0.25, 0.0), course="resolving", half_life_days=14 * math.log(2)),
    ),
)
OTHERS = (
    Group("healthy", ecw_tbw=BASELINE),
    Group("fluid overload", ecw_tbw=BASELINE, changes=(Change("all", (0.09, 0.0)),)),
    Group("right-leg edema", ecw_tbw=BASELINE, changes=(Change("right_leg", (0.25, 0.0)),)),
)


#: issue 12: labels need a spectrum that determines R∞ (the MC-980's six frequencies),
#: an analyzer with a stated uncertainty and bands: the site's, as none is published
STATED = {"relative": 0.001, "absolute_ohm": 0.1, "source": "test fixture: a characterised unit"}
SITE_BANDS = {"hanai-bis": site_bands(0.44, 0.45)}


def fill_clinic(path: Path, seed: int = 7) -> dict[str, Subject]:
    """Store the recovery patient's visits and three other subjects; return subjects by ID."""
    profile = dataclasses.replace(get_profile("tanita-mc980"), uncertainty=STATED)
    codec = profile.codec()
    rng = np.random.default_rng(seed)
    patient = make_subject(rng, RECOVERY_ID, RECOVERY)
    others = [make_subject(rng, f"{2001 + i:016d}", g) for i, g in enumerate(OTHERS)]
    readings = [
        reading_for(patient, d, T0 + dt.timedelta(days=d), profile, rng)[0] for d in RECOVERY_DAYS
    ]
    readings += [reading_for(s, 0, T0, profile, rng)[0] for s in others]
    store = Store(open_writer(path, report_method="hanai-bis", bands=SITE_BANDS))
    port = PortConfig("ward-3", "loop://", profile.name, profile, profile.serial, "UTC")
    ingest = Ingest(store, "hanai-bis", profiles={profile.name: profile}, bands=SITE_BANDS)
    ingest.add_port(port)
    received = (T0 + dt.timedelta(days=60)).replace(tzinfo=dt.UTC).timestamp()
    for i, r in enumerate(readings):
        ingest.handle(
            Batch("ward-3", profile.name, [Chunk("frame", codec.encode(r))], received + i)
        )
    store.db.close()
    return {s.subject_id: s for s in [patient, *others]}
