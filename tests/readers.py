"""Databases for the reader tests, filled through the real path (codec → Ingest → Store).

``fill_clinic`` stores healthy, fluid-overload and right-leg-edema subjects from
the simulator's population model, and one injury-recovery patient: a right leg
whose extra ECW/TBW (+0.035 at the first visit, as the population model's
right-leg edema) decays with a two-week time constant over eight weeks of
visits, R0 recovering with it, while every other segment stays as it was.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from pathlib import Path

import numpy as np

from bia_acq.acquire import Batch, Ingest
from bia_acq.config import PortConfig
from bia_acq.core.hanai import rho, s_from_ecw_tbw
from bia_acq.drivers import get_profile
from bia_acq.protocols.base import Chunk
from bia_acq.simulator.population import SegmentTruth, Subject, make_subject, measure
from bia_acq.store.db import open_writer
from bia_acq.store.writer import Store

RECOVERY_ID = "0000000000004711"
RECOVERY_DAYS = (0, 3, 7, 14, 21, 28, 42, 56)
T0 = dt.datetime(2026, 9, 1, 9, 30)


def recovering(subject: Subject, days: float, tau_days: float = 14.0) -> Subject:
    """``subject`` (right-leg edema) ``days`` after the injury, the edema decaying."""
    left = subject.segments["left_leg"]
    f = math.exp(-days / tau_days)
    ratio = left.ecw_tbw_ratio + 0.035 * f
    r0 = left.r0_ohm * (1 - 0.15 * f)
    rho_e, rho_i = (float(v) for v in rho(np.asarray(subject.sex == "male")))
    s = float(s_from_ecw_tbw(ratio, rho_i / rho_e))
    right = SegmentTruth(r0, r0 / s, left.alpha, left.fc_khz, ratio)
    return dataclasses.replace(subject, segments={**subject.segments, "right_leg": right})


def fill_clinic(path: Path, seed: int = 7) -> dict[str, Subject]:
    """Store the recovery patient's visits and three other subjects; return subjects by ID."""
    profile = get_profile("tanita-mc780")
    codec = profile.codec()
    freqs = [float(f) for f in profile.options.get("frequencies_khz", [5, 50, 250])]
    segments = [
        str(s)
        for s in profile.options.get("segments", ["right_arm", "left_arm", "right_leg", "left_leg"])
    ]
    rng = np.random.default_rng(seed)
    patient = make_subject(rng, RECOVERY_ID, "right_leg_edema")
    others = [
        make_subject(rng, f"{2001 + i:016d}", c)
        for i, c in enumerate(("healthy", "fluid_overload", "right_leg_edema"))
    ]
    readings = [
        measure(recovering(patient, d), freqs, segments, rng, T0 + dt.timedelta(days=d), "MC-780")
        for d in RECOVERY_DAYS
    ]
    readings += [measure(s, freqs, segments, rng, T0, "MC-780") for s in others]
    store = Store(open_writer(path, report_method="hanai-bis"))
    port = PortConfig("ward-3", "loop://", profile.name, profile, profile.serial, "UTC")
    ingest = Ingest(store, "hanai-bis")
    ingest.add_port(port)
    received = (T0 + dt.timedelta(days=60)).replace(tzinfo=dt.UTC).timestamp()
    for i, r in enumerate(readings):
        ingest.handle(Batch("ward-3", profile.name, [Chunk("frame", codec.encode(r))], received + i))
    store.db.close()
    return {s.subject_id: s for s in [patient, *others]}
