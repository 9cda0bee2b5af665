"""Simulated patients with a known fluid status, and the spectra a device would measure.

A **scenario** (YAML in ``config/scenarios/``, see :func:`load_scenario`) says
who the subjects are and how their body water changes from visit to visit. For
each subject and visit the model fixes the *true* ECW and ICW of every segment
(two arms, trunk, two legs, and the unmeasured head and neck) and of the whole
body, then builds the impedance spectra from them by inverting the core's own
equations, adds measurement noise and rounds to the device's 0.1 Ω:

* **Total body water** from Watson et al. 1980 (Am J Clin Nutr 33:27; no
  impedance involved), ECW = ECW/TBW × TBW for a baseline ratio drawn from the
  scenario (Hanai-BIS gives about 0.43 in healthy adults: PHYSIOLOGY notes [V]).
* **Segment water** shared by segment mass: upper extremity 5.0 %, lower
  extremity 16.1 %, trunk 49.7 %, head and neck 8.1 % of body mass (Dempster
  1955 as tabulated by Winter, *Biomechanics and Motor Control of Human
  Movement*, 1990). That water follows mass is a model assumption.
* **Whole-body R0** (hand to foot) from De Lorenzo's ECW equation solved for Re
  (:func:`bia_acq.core.hanai.ecw_de_lorenzo`), shared between arm, trunk and leg
  in series (arm ≈ 330 Ω, leg ≈ 270 Ω, trunk ≈ 30 Ω in a healthy man, trunk
  about 10 % of the path: PHYSIOLOGY notes).
* **R∞** from the segment's ECW/TBW through the inverse of Matthie's second
  generation relation (:func:`bia_acq.core.hanai.s_from_ecw_tbw`), so the core's
  method recovers the true ratio up to noise and the three-frequency fit.
* **Changes** (edema, overload, dehydration) add or remove ECW and ICW of the
  affected segments. Their R0 follows Hanai mixture theory at constant segment
  length, as in De Lorenzo's equation: V_ECW ∝ (√W/R0)^(2/3), so
  R0' = R0 · √(W'/W) · (V/V')^(3/2) with W the segment mass (1 L water = 1 kg).
  Unaffected segments keep their impedance: a lymphedematous limb lowers that
  limb's values only (PHYSIOLOGY notes).
* **Cole shape** per segment kind (:data:`COLE_SHAPE`): drawn around a joint fit of
  the real MC-780 capture (arms α ≈ 0.6, fc ≈ 55 kHz; legs α ≈ 0.78, fc ≈ 28 kHz;
  trunk fc ≈ 230 kHz), inside the NHANES 1999–2000 ranges (α 0.30–0.95, fc 2–456 kHz).
* **Electrodes** (:func:`measured`, a scenario's ``electrodes:``, on by default): a
  gain error per contact site, shared by the paths measured between the same
  electrodes, and the stray-capacitance "hook" as a time delay Td (29 ± 8 ns, fitted to
  the real MC-780 capture). ``electrodes: ideal`` turns both off.
* **Noise**: ``noise_rel`` (default 0.005: the size of the default stated
  uncertainty, docs/physiology.md) of |Z| and ``noise_ohm`` (default 0.2 Ω) on R
  and X, independent per point, then rounding to 0.1 Ω.

The per-scenario sources (dialysis overload, post-operative swelling,
lymphedema, pregnancy, dehydration) are cited in each scenario file.
"""

from __future__ import annotations

import datetime as dt
import importlib.resources
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bia_acq.core.cole import cole_impedance
from bia_acq.core.hanai import k_ecw, rho, s_from_ecw_tbw
from bia_acq.errors import ConfigError
from bia_acq.model import Impedance, Reading, Segment
from bia_acq.simulator.inbody import hand_to_foot_r50, result_sheet
from bia_acq.yamlfile import Doc, load, loads

if TYPE_CHECKING:
    from bia_acq.drivers import Profile

#: body segments the model tracks; ``head`` (head and neck) is never measured
PARTS = ("right_arm", "left_arm", "trunk", "right_leg", "left_leg", "head")
#: share of body mass (Dempster 1955, via Winter 1990)
MASS_SHARE = {"arm": 0.050, "leg": 0.161, "trunk": 0.497, "head": 0.081}
#: share of the hand-to-foot R0 per segment in a healthy adult (PHYSIOLOGY notes)
PATH_R0_SHARE = {"arm": 0.50, "trunk": 0.07, "leg": 0.43}

#: Cole shape per segment kind: (α range, fc range in kHz), drawn uniformly. From a
#: joint fit of the real MC-780 capture (tests/data/real/tanita-mc780-pc-mode.txt: six
#: paths at 5/50/250 kHz) by Cole arcs of the four limbs and the trunk seen through one
#: common time delay (:func:`measured`): arms α 0.60–0.62, fc 50–60 kHz; legs α 0.75–0.80,
#: fc 27–29 kHz; trunk α ≈ 1, fc ≈ 230 kHz; Td 29 ns (rms residual 1.4 Ω, against 2.4 Ω
#: for free arcs without a delay, which need arms with fc 130–210 kHz and α 0.45). Ranges
#: around those values, inside the NHANES 1999–2000 ranges (α 0.30–0.95, fc 2–456 kHz);
#: docs/physiology.md, "The simulator against real captures"
COLE_SHAPE = {
    "arm": ((0.55, 0.68), (40.0, 70.0)),
    "leg": ((0.70, 0.85), (22.0, 36.0)),
    "trunk": ((0.60, 0.90), (100.0, 250.0)),
    "head": ((0.60, 0.80), (40.0, 80.0)),
}

WHERE = (
    "all",
    "legs",
    "one_leg",
    "one_arm",
    "right_arm",
    "left_arm",
    "trunk",
    "right_leg",
    "left_leg",
)
COURSES = ("constant", "resolving", "varying", "growing")


def watson_tbw_l(male: bool, age: float, height_cm: float, weight_kg: float) -> float:
    """Watson et al. 1980 total body water (litres)."""
    if male:
        return 2.447 - 0.09516 * age + 0.1074 * height_cm + 0.3362 * weight_kg
    return -2.097 + 0.1069 * height_cm + 0.2466 * weight_kg


def _kind(part: str) -> str:
    return part.rsplit("_", 1)[-1]


# -- scenario files ------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """A change of body water in some segments, over the visits."""

    where: str
    ecw_fraction: tuple[float, float] = (0.0, 0.0)  # mean, SD: extra ECW / baseline ECW
    icw_fraction: tuple[float, float] = (0.0, 0.0)
    course: str = "constant"
    half_life_days: float = 7.0


@dataclass(frozen=True)
class Group:
    name: str
    share: float = 1.0
    sex: str = "any"
    age_years: tuple[float, float] = (18, 90)
    bmi: tuple[float, float] = (25.5, 3.5)  # mean, SD (clipped to 17-45)
    ecw_tbw: tuple[float, float] = (0.43, 0.008)
    changes: tuple[Change, ...] = ()


@dataclass(frozen=True)
class Electrodes:
    """Electrode and contact effects of a real measurement (:func:`measured`).

    ``td_ns``: the high-frequency "hook" as a time delay, mean and SD per measurement
    (ns); ``contact_gain``: SD of each contact site's frequency-independent gain error
    (a fraction). Defaults: :data:`ELECTRODES`; ``Electrodes((0, 0), 0)`` is the
    ideal analyzer.
    """

    td_ns: tuple[float, float] = (29.0, 8.0)
    contact_gain: float = 0.005

    @property
    def on(self) -> bool:
        return self.td_ns != (0.0, 0.0) or self.contact_gain > 0


#: the default: a time delay fitted to the real MC-780 capture (29 ns; its spread and the
#: contact gain are assumptions), docs/physiology.md "The simulator against real captures"
ELECTRODES = Electrodes()
#: no electrode effects: the ideal analyzer of the earlier simulator
IDEAL = Electrodes((0.0, 0.0), 0.0)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    groups: tuple[Group, ...]
    subjects: int = 20
    visits: int = 1
    visit_every_days: float = 0.0
    noise_ohm: float = 0.2
    noise_rel: float = 0.005
    sources: str = ""
    file: str = ""
    electrodes: Electrodes = ELECTRODES


SCENARIO_KEYS = (
    "name",
    "description",
    "sources",
    "subjects",
    "visits",
    "visit_every_days",
    "noise_ohm",
    "noise_rel",
    "electrodes",
    "groups",
)
GROUP_KEYS = ("name", "share", "sex", "age_years", "bmi", "ecw_tbw", "changes")
CHANGE_KEYS = ("where", "ecw_fraction", "icw_fraction", "course", "half_life_days")
ELECTRODE_KEYS = ("td_ns", "contact_gain")


def _number(doc: Doc, key: str, v: Any, lo: float, hi: float, example: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi:
        raise doc.error(
            key, f"expected a number from {lo:g} to {hi:g}, got {v!r}", f"e.g. {example}"
        )
    return float(v)


def _pair(doc: Doc, key: str, v: Any, lo: float, hi: float, example: str) -> tuple[float, float]:
    if not (isinstance(v, list) and len(v) == 2):
        raise doc.error(key, f"expected a pair [a, b], got {v!r}", f"e.g. {example}")
    return (
        _number(doc, f"{key}[0]", v[0], lo, hi, example),
        _number(doc, f"{key}[1]", v[1], lo, hi, example),
    )


def _choice(doc: Doc, key: str, v: Any, allowed: tuple[str, ...]) -> str:
    if v not in allowed:
        raise doc.error(key, f"expected one of {', '.join(allowed)}, got {v!r}")
    return str(v)


def parse_scenario(doc: Doc) -> Scenario:
    """Validate a scenario document; every mistake is one ConfigError line."""
    d = doc.data
    doc.check_keys("", d, SCENARIO_KEYS)
    if not isinstance(d.get("name"), str) or not d["name"]:
        raise doc.error("name", "missing or not text: every scenario needs a name")
    groups_raw = d.get("groups")
    if not isinstance(groups_raw, list) or not groups_raw:
        raise doc.error(
            "groups", "expected a list of at least one group", "see healthy-adults.yaml"
        )
    groups = []
    for i, g in enumerate(groups_raw):
        gk = f"groups[{i}]"
        if not isinstance(g, dict):
            raise doc.error(gk, "expected a mapping")
        doc.check_keys(gk, g, GROUP_KEYS)
        changes = []
        raw_changes = g.get("changes", [])
        if not isinstance(raw_changes, list):
            raise doc.error(f"{gk}.changes", "expected a list of changes")
        for j, c in enumerate(raw_changes):
            ck = f"{gk}.changes[{j}]"
            if not isinstance(c, dict):
                raise doc.error(ck, "expected a mapping")
            doc.check_keys(ck, c, CHANGE_KEYS)
            if "where" not in c:
                raise doc.error(ck, "missing 'where'", f"one of {', '.join(WHERE)}")
            changes.append(
                Change(
                    where=_choice(doc, f"{ck}.where", c["where"], WHERE),
                    ecw_fraction=_pair(
                        doc,
                        f"{ck}.ecw_fraction",
                        c.get("ecw_fraction", [0, 0]),
                        -0.5,
                        2,
                        "[0.3, 0.1]",
                    ),
                    icw_fraction=_pair(
                        doc, f"{ck}.icw_fraction", c.get("icw_fraction", [0, 0]), -0.5, 2, "[0, 0]"
                    ),
                    course=_choice(doc, f"{ck}.course", c.get("course", "constant"), COURSES),
                    half_life_days=_number(
                        doc, f"{ck}.half_life_days", c.get("half_life_days", 7.0), 0.01, 3650, "10"
                    ),
                )
            )
        age = _pair(doc, f"{gk}.age_years", g.get("age_years", [18, 90]), 18, 100, "[18, 90]")
        if age[0] > age[1]:
            raise doc.error(f"{gk}.age_years", "the first age must not exceed the second")
        groups.append(
            Group(
                name=str(g.get("name", f"group {i + 1}")),
                share=_number(doc, f"{gk}.share", g.get("share", 1.0), 1e-6, 1e6, "0.5"),
                sex=_choice(doc, f"{gk}.sex", g.get("sex", "any"), ("male", "female", "any")),
                age_years=age,
                bmi=_pair(doc, f"{gk}.bmi", g.get("bmi", [25.5, 3.5]), 0, 60, "[25.5, 3.5]"),
                ecw_tbw=_pair(
                    doc, f"{gk}.ecw_tbw", g.get("ecw_tbw", [0.43, 0.008]), 0, 0.7, "[0.43, 0.008]"
                ),
                changes=tuple(changes),
            )
        )
    for k in ("subjects", "visits"):
        v = d.get(k, 20 if k == "subjects" else 1)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise doc.error(k, f"expected a whole number of 1 or more, got {v!r}")
    return Scenario(
        name=d["name"],
        description=str(d.get("description", "")),
        groups=tuple(groups),
        subjects=int(d.get("subjects", 20)),
        visits=int(d.get("visits", 1)),
        visit_every_days=_number(
            doc, "visit_every_days", d.get("visit_every_days", 0), 0, 3650, "7"
        ),
        noise_ohm=_number(doc, "noise_ohm", d.get("noise_ohm", 0.2), 0, 100, "0.2"),
        noise_rel=_number(doc, "noise_rel", d.get("noise_rel", 0.005), 0, 0.2, "0.005"),
        sources=str(d.get("sources", "")),
        file=doc.file,
        electrodes=_electrodes(doc, d.get("electrodes", {})),
    )


def _electrodes(doc: Doc, e: Any) -> Electrodes:
    """``electrodes: ideal`` (none), or a mapping over the defaults (:data:`ELECTRODES`)."""
    if e == "ideal":
        return IDEAL
    if not isinstance(e, dict):
        raise doc.error(
            "electrodes", f"expected 'ideal' or a mapping, got {e!r}", "e.g. {td_ns: [29, 8]}"
        )
    doc.check_keys("electrodes", e, ELECTRODE_KEYS)
    return Electrodes(
        td_ns=_pair(
            doc, "electrodes.td_ns", e.get("td_ns", list(ELECTRODES.td_ns)), 0, 1000, "[29, 8]"
        ),
        contact_gain=_number(
            doc,
            "electrodes.contact_gain",
            e.get("contact_gain", ELECTRODES.contact_gain),
            0,
            0.2,
            "0.005",
        ),
    )


def builtin_scenarios() -> dict[str, Scenario]:
    out: dict[str, Scenario] = {}
    for entry in importlib.resources.files("bia_acq.scenarios").iterdir():
        if entry.name.endswith(".yaml"):
            doc = loads(entry.read_text(encoding="utf-8"), f"<built-in>/{entry.name}", "scenario")
            s = parse_scenario(doc)
            out[s.name] = s
    return out


def load_scenario(name_or_file: str | os.PathLike[str]) -> Scenario:
    """A built-in scenario by name, or a scenario file (ConfigError if neither)."""
    text = os.fspath(name_or_file)
    if text.endswith((".yaml", ".yml")) or os.sep in text:
        return parse_scenario(load(Path(text), "scenario"))
    known = builtin_scenarios()
    if text not in known:
        raise ConfigError(
            f"unknown scenario {text!r}",
            key="--scenario",
            fix=f"use one of: {', '.join(sorted(known))}, or a path to a scenario .yaml file",
        )
    return known[text]


# -- subjects and visits -------------------------------------------------------------


@dataclass(frozen=True)
class PartState:
    """True state of one segment at one visit."""

    ecw_l: float
    icw_l: float
    r0_ohm: float
    rinf_ohm: float
    alpha: float
    fc_khz: float

    @property
    def tbw_l(self) -> float:
        return self.ecw_l + self.icw_l


@dataclass
class Subject:
    """A simulated person: baseline body water per segment and their changes."""

    subject_id: str
    group: str
    sex: str
    age_years: int
    height_cm: float
    weight_kg: float  # baseline (without the changes)
    k_rho: float
    base: dict[str, PartState]
    changes: list[tuple[Change, tuple[str, ...], float, float]] = field(default_factory=list)

    @property
    def male(self) -> bool:
        return self.sex == "male"


def _targets(where: str, rng: np.random.Generator) -> tuple[str, ...]:
    if where == "all":
        return PARTS
    if where == "legs":
        return ("right_leg", "left_leg")
    if where in ("one_leg", "one_arm"):
        side = "right" if rng.random() < 0.5 else "left"
        return (f"{side}_{where.split('_')[1]}",)
    return (where,)


def make_subject(
    rng: np.random.Generator,
    subject_id: str,
    group: Group,
    *,
    sex: str | None = None,
    age_years: int | None = None,
    height_cm: float | None = None,
) -> Subject:
    """Draw a subject of ``group`` (demographics, baseline water, Cole shape, changes).

    ``sex``, ``age_years`` and ``height_cm`` fix those instead (what a polled
    device was told before it measures).
    """
    if sex is None:
        male = group.sex == "male" or (group.sex == "any" and bool(rng.random() < 0.5))
    else:
        male = sex == "male"
    sex = "male" if male else "female"
    age = (
        int(rng.integers(int(group.age_years[0]), int(group.age_years[1]) + 1))
        if age_years is None
        else age_years
    )
    height = (
        round(float(rng.normal(177 if male else 164, 7)), 1) if height_cm is None else height_cm
    )
    bmi = float(np.clip(rng.normal(*group.bmi), 17, 45))
    weight = round(bmi * (height / 100) ** 2, 1)
    tbw = watson_tbw_l(male, age, height, weight)
    ratio = float(np.clip(rng.normal(*group.ecw_tbw), 0.30, 0.60))
    ecw = ratio * tbw
    rho_e, rho_i = (float(v) for v in rho(male))
    k_rho = rho_i / rho_e
    # hand-to-foot R0 that De Lorenzo's equation turns back into this ECW
    r0_path = height**2 * np.sqrt(weight) / (ecw / float(k_ecw(rho_e))) ** 1.5
    base: dict[str, PartState] = {}
    for part in PARTS:
        kind = _kind(part)
        seg_ratio = float(np.clip(ratio + rng.normal(0, 0.004), 0.30, 0.60))
        seg_ecw = ecw * MASS_SHARE[kind]
        seg_icw = seg_ecw * (1 - seg_ratio) / seg_ratio
        r0 = r0_path * PATH_R0_SHARE.get(kind, 0.0) * float(rng.normal(1, 0.02))
        s = float(s_from_ecw_tbw(seg_ratio, k_rho))
        (a_lo, a_hi), (f_lo, f_hi) = COLE_SHAPE[kind]
        fc = float(rng.uniform(f_lo, f_hi))
        base[part] = PartState(seg_ecw, seg_icw, r0, r0 / s, float(rng.uniform(a_lo, a_hi)), fc)
    changes = []
    for c in group.changes:
        targets = _targets(c.where, rng)
        changes.append(
            (c, targets, float(rng.normal(*c.ecw_fraction)), float(rng.normal(*c.icw_fraction)))
        )
    return Subject(subject_id, group.name, sex, age, height, weight, k_rho, base, changes)


def _course(c: Change, day: float, rng: np.random.Generator) -> float:
    """How much of a change is present ``day`` days after the first visit."""
    if c.course == "resolving":
        return float(0.5 ** (day / c.half_life_days))
    if c.course == "growing":
        return float(1 - 0.5 ** ((day + c.half_life_days) / c.half_life_days))
    if c.course == "varying":
        return float(max(rng.normal(1.0, 0.35), 0.0))
    return 1.0


def visit_state(
    subject: Subject, day: float, rng: np.random.Generator
) -> tuple[dict[str, PartState], float]:
    """True segment states and body weight ``day`` days after the first visit."""
    extra_e = dict.fromkeys(PARTS, 0.0)
    extra_i = dict.fromkeys(PARTS, 0.0)
    for c, targets, fe, fi in subject.changes:
        amount = _course(c, day, rng)
        for t in targets:
            extra_e[t] += fe * amount * subject.base[t].ecw_l
            extra_i[t] += fi * amount * subject.base[t].icw_l
    weight = subject.weight_kg + sum(extra_e.values()) + sum(extra_i.values())
    out: dict[str, PartState] = {}
    for part, b in subject.base.items():
        e = max(b.ecw_l + extra_e[part], 0.05 * b.ecw_l)
        i = max(b.icw_l + extra_i[part], 0.05 * b.icw_l)
        mass = subject.weight_kg * MASS_SHARE[_kind(part)]
        new_mass = max(mass + (e - b.ecw_l) + (i - b.icw_l), 0.1 * mass)
        r0 = b.r0_ohm * np.sqrt(new_mass / mass) * (b.ecw_l / e) ** 1.5
        s = float(s_from_ecw_tbw(e / (e + i), subject.k_rho))
        out[part] = PartState(e, i, float(r0), float(r0 / s), b.alpha, b.fc_khz)
    return out, weight


def _volumes(parts: Mapping[str, PartState]) -> dict[str, float]:
    e = sum(p.ecw_l for p in parts.values())
    i = sum(p.icw_l for p in parts.values())
    return {"ecw_l": e, "icw_l": i, "tbw_l": e + i, "ecw_tbw_ratio": e / (e + i)}


#: the contact sites (hand and foot electrode pairs) whose voltage electrodes each path's
#: measurement uses in an 8-electrode analyzer: an arm between both hands, a leg between
#: both feet, a hand-to-foot path between its hand and foot, the trunk between the hand
#: and foot not carrying the current
VOLTAGE_SITES: Mapping[str, tuple[str, str]] = {
    "right_arm": ("RH", "LH"),
    "left_arm": ("LH", "RH"),
    "right_leg": ("RF", "LF"),
    "left_leg": ("LF", "RF"),
    "trunk": ("LH", "LF"),
    Segment.WHOLE_BODY_RIGHT: ("RH", "RF"),
    Segment.WHOLE_BODY_LEFT: ("LH", "LF"),
    Segment.LEG_TO_LEG: ("RF", "LF"),
    Segment.WHOLE_BODY: ("RH", "RF"),
}


def measured(
    z_by: Mapping[str, np.ndarray],
    f_hz: np.ndarray,
    electrodes: Electrodes,
    rng: np.random.Generator,
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """True path impedances as an analyzer with electrodes measures them.

    * **Contact gain**: a frequency-independent scale error (Aliau-Bonet &
      Pallàs-Areny, IEEE Trans Biomed Eng, IEEE Xplore 6293867, "On the effect of body capacitance
      to ground in tetrapolar bioimpedance measurements": body capacitance to ground and
      the electrodes' impedances give a gain error) per contact site, SD
      ``contact_gain``; a path's gain is 1 + the mean of its two voltage sites' errors
      (:data:`VOLTAGE_SITES`: paths that share sites share their error) + a path's own
      part of half that SD (its current electrodes).
    * **Hook**: the stray-capacitance artefact as the time delay of the Td compensation,
      Z·exp(−jωTd) (Buendia, Seoane & Gil-Pita 2010, J Phys Conf Ser 224:012126, and
      Meas Sci Technol 21:115802), one Td per measurement drawn from ``td_ns``; it turns
      the phase only, so |Z| is unchanged.

    Returns the measured impedances and what was drawn (Td in ns, gain per site).
    """
    if not electrodes.on:
        return dict(z_by), {}
    sd = electrodes.contact_gain
    site = {k: float(rng.normal(0, sd)) for k in ("RH", "LH", "RF", "LF")}
    td = max(float(rng.normal(*electrodes.td_ns)), 0.0) * 1e-9
    turn = np.exp(-1j * 2 * np.pi * f_hz * td)
    out = {}
    for name, z in z_by.items():
        a, b = VOLTAGE_SITES.get(name, ("RH", "RF"))
        gain = 1 + (site[a] + site[b]) / 2 + float(rng.normal(0, sd / 2))
        out[name] = z * gain * turn
    return out, {"td_ns": round(td * 1e9, 2), **{k: round(v, 5) for k, v in site.items()}}


def spectra(
    parts: Mapping[str, PartState],
    freqs_khz: list[float],
    segments: list[str],
    rng: np.random.Generator,
    noise_ohm: float,
    noise_rel: float = 0.0,
    electrodes: Electrodes = IDEAL,
    electrode_rng: np.random.Generator | None = None,
) -> tuple[list[Impedance], dict[str, float]]:
    """Noisy, 0.1 Ω-rounded impedance points per reported segment/path; phase at 50 kHz.

    ``electrodes`` adds contact and stray-capacitance effects (:func:`measured`), drawn
    from ``electrode_rng`` (default ``rng``)."""
    f_hz = np.asarray(freqs_khz, dtype=float) * 1e3
    z_by: dict[str, np.ndarray] = {
        n: np.asarray(cole_impedance(f_hz, p.r0_ohm, p.rinf_ohm, p.alpha, p.fc_khz * 1e3))
        for n, p in parts.items()
        if n != "head"
    }
    z_by[Segment.WHOLE_BODY_RIGHT] = z_by["right_arm"] + z_by["trunk"] + z_by["right_leg"]
    z_by[Segment.WHOLE_BODY_LEFT] = z_by["left_arm"] + z_by["trunk"] + z_by["left_leg"]
    z_by[Segment.LEG_TO_LEG] = z_by["right_leg"] + z_by["left_leg"]
    z_by[Segment.WHOLE_BODY] = z_by[Segment.WHOLE_BODY_RIGHT]
    z_by, _ = measured(z_by, f_hz, electrodes, electrode_rng or rng)
    points: list[Impedance] = []
    phase50: dict[str, float] = {}
    for seg in segments:
        if seg not in z_by:
            continue
        sd = np.hypot(noise_ohm, noise_rel * np.abs(z_by[seg]))
        z = z_by[seg] + rng.normal(0, 1, len(f_hz)) * sd + 1j * rng.normal(0, 1, len(f_hz)) * sd
        for f, zz in zip(freqs_khz, z, strict=True):
            points.append(
                Impedance(seg, float(f), round(float(zz.real), 1), round(float(zz.imag), 1))
            )
            if f == 50:
                phase50[seg] = round(float(np.degrees(np.arctan2(zz.imag, zz.real))), 1)
    return points, phase50


class Population:
    """An endless stream of measurements for one scenario and one device profile.

    Subjects come in cohorts of ``scenario.subjects``; a cohort is measured
    visit by visit (all subjects at visit 1, then visit 2, ...), then a new
    cohort with new IDs follows. The device clock of a visit is the send time
    shifted back so the last visit falls on today: visits lie
    ``visit_every_days`` apart in the device's clock.
    """

    def __init__(self, scenario: Scenario, profile: Profile, rng: np.random.Generator) -> None:
        self.scenario = scenario
        self.profile = profile
        self.rng = rng
        self.prefix = int(rng.integers(1000, 10000))  # IDs differ between seeds
        # electrode effects from their own stream: the subjects of a seed stay the same
        self.electrode_rng = rng.spawn(1)[0]
        self._numbered = 0
        self._stream = self._measurements()

    def _cohort(self) -> list[Subject]:
        sc = self.scenario
        shares = np.array([g.share for g in sc.groups], dtype=float)
        picks = self.rng.choice(len(sc.groups), size=sc.subjects, p=shares / shares.sum())
        out = []
        for gi in picks:
            self._numbered += 1
            sid = f"{self.prefix:04d}{self._numbered:012d}"
            out.append(make_subject(self.rng, sid, sc.groups[int(gi)]))
        return out

    def _measurements(self) -> Iterator[tuple[Subject, int, float]]:
        sc = self.scenario
        while True:
            cohort = self._cohort()
            for v in range(sc.visits):
                for subject in cohort:
                    yield subject, v + 1, v * sc.visit_every_days

    def measure_given(
        self, now: dt.datetime, subject_id: str, **given: Any
    ) -> tuple[Reading, dict[str, Any]]:
        """A measurement of a new subject with what a polled device was told.

        ``given`` fixes ``sex``, ``age_years`` and ``height_cm``; the rest (group,
        weight, body water) is drawn from the scenario as for any subject.
        """
        sc = self.scenario
        shares = np.array([g.share for g in sc.groups], dtype=float)
        group = sc.groups[int(self.rng.choice(len(sc.groups), p=shares / shares.sum()))]
        subject = make_subject(self.rng, subject_id, group, **given)
        return reading_for(
            subject, 0.0, now, self.profile, self.rng, noise_ohm=sc.noise_ohm, scenario=sc.name,
            noise_rel=sc.noise_rel, electrodes=sc.electrodes, electrode_rng=self.electrode_rng,
        )  # fmt: skip

    def next_measurement(self, now: dt.datetime) -> tuple[Reading, dict[str, Any]]:
        """The next Reading the device sends at ``now`` and its ground truth."""
        subject, visit, day = next(self._stream)
        sc = self.scenario
        span = (sc.visits - 1) * sc.visit_every_days
        when = now - dt.timedelta(days=span - day)
        return reading_for(
            subject, day, when, self.profile, self.rng, noise_ohm=sc.noise_ohm, visit=visit,
            scenario=sc.name, noise_rel=sc.noise_rel, electrodes=sc.electrodes,
            electrode_rng=self.electrode_rng,
        )  # fmt: skip


def reading_for(
    subject: Subject,
    day: float,
    when: dt.datetime,
    profile: Profile,
    rng: np.random.Generator,
    *,
    noise_ohm: float = 0.2,
    visit: int = 1,
    scenario: str = "",
    noise_rel: float = 0.0,
    electrodes: Electrodes = IDEAL,
    electrode_rng: np.random.Generator | None = None,
) -> tuple[Reading, dict[str, Any]]:
    """What ``profile``'s device reports for ``subject`` ``day`` days after the first visit.

    The spectra cover the profile's ``frequencies_khz`` × ``segments`` (from
    ``options``, overridden by the ``simulator:`` section; none if neither lists
    them). The ``simulator:`` section shapes the rest: ``model``;
    ``device_values`` (the keys of the device's own results this model sends, or
    a mapping of its keys to whole-body truth quantities such as ``ecw_l``;
    default: the Tanita set for the ``tanita`` protocol, none otherwise);
    ``ratio_offset`` shifts the true ECW/TBW onto the vendor's own scale for those
    figures; ``clock: false`` for devices without a clock; ``control`` (framing values).
    Returns the reading and its ground truth (:func:`truth_record`).
    """
    sim = profile.simulator
    opts = {**profile.options, **sim}  # the simulator section may override
    freqs = [float(f) for f in opts.get("frequencies_khz", [])]
    segments = [str(x) for x in opts.get("segments", [])]
    parts, weight = visit_state(subject, day, rng)
    points, phase50 = (
        spectra(parts, freqs, segments, rng, noise_ohm, noise_rel, electrodes, electrode_rng)
        if freqs
        else ([], {})
    )
    whole = _volumes(parts)
    values: dict[str, float | int | str] = {}
    if profile.protocol == "tanita" or "device_values" in sim:
        values = {
            "St": 0,
            "Bt": 0,
            "wW": round(whole["tbw_l"], 1),
            "wI": round(whole["icw_l"], 1),
            "wO": round(whole["ecw_l"], 1),
            "wo": round(100 * whole["ecw_tbw_ratio"], 1),
        }
        for seg, code in (
            ("right_leg", "pR"),
            ("left_leg", "pL"),
            ("right_arm", "pr"),
            ("left_arm", "pl"),
        ):
            if phase50.get(seg):
                values[code] = phase50[seg]
        own = sim.get("device_values")
        if isinstance(own, dict):  # the device's own keys -> true whole-body quantities
            # a vendor's algorithm has its own ECW/TBW scale: ``ratio_offset`` shifts the
            # truth (Hanai scale, about 0.43 in health) onto it, keeping TBW
            dev = dict(whole)
            off = float(sim.get("ratio_offset", 0.0))
            if off:
                dev["ecw_tbw_ratio"] = whole["ecw_tbw_ratio"] + off
                dev["ecw_l"] = dev["ecw_tbw_ratio"] * whole["tbw_l"]
                dev["icw_l"] = whole["tbw_l"] - dev["ecw_l"]
            values = {
                str(k): round(float(dev[str(q)]), 3 if "ratio" in str(q) else 1)
                for k, q in own.items()
            }
        elif own is not None:  # only what this model computes itself
            keep = {str(k) for k in own}
            values = {k: v for k, v in values.items() if k in keep}
    if sim.get("result_sheet") == "inbody":  # the rest of InBody's result columns
        sheet = inbody_columns(subject, parts, weight, sim)
        if "TBW" in values:  # the model names its water figure TBW: not twice
            sheet.pop("TBW (Total Body Water)")
        values = {**values, **{k: v for k, v in sheet.items() if k not in values}}
    control = tuple((str(k), str(v)) for k, v in sim.get("control", []) or [])
    reading = Reading(
        model=str(sim.get("model", profile.name)),
        subject_id=subject.subject_id,
        measured_at=None
        if sim.get("clock", True) is False
        else when.replace(second=0, microsecond=0),
        sex=subject.sex,
        age_years=subject.age_years,
        height_cm=subject.height_cm,
        weight_kg=round(weight, 1),
        impedance=tuple(points),
        device_values=values,
        control=control,
    )
    truth = truth_record(subject, visit, day, parts, weight, scenario)
    truth["electrodes"] = (
        {"td_ns": list(electrodes.td_ns), "contact_gain": electrodes.contact_gain}
        if electrodes.on
        else {}
    )
    return reading, truth


def inbody_columns(
    subject: Subject, parts: Mapping[str, PartState], weight_kg: float, sim: Mapping[str, Any]
) -> dict[str, float | int | str]:
    """InBody's result columns for this visit (:mod:`bia_acq.simulator.inbody`), with
    the ``InBody Type`` the profile's ``inbody_type`` names and segmental ECW/TBW on the
    vendor's scale (``ratio_offset``) where the model prints them (``segment_ratios``)."""
    values = result_sheet(
        sex=subject.sex,
        age_years=subject.age_years,
        height_cm=subject.height_cm,
        weight_kg=weight_kg,
        tbw_l=_volumes(parts)["tbw_l"],
        baseline_tbw_l=_volumes(subject.base)["tbw_l"],
        segment_tbw_l={p: s.tbw_l for p, s in parts.items() if p != "head"},
        segment_r0_ohm={p: s.r0_ohm for p, s in parts.items() if p != "head"},
        mass_share=MASS_SHARE,
        r50_ohm=hand_to_foot_r50(parts),
    )
    if sim.get("segment_ratios"):
        off = float(sim.get("ratio_offset", 0.0))
        for part, code in (("right_arm", "RA"), ("left_arm", "LA"), ("trunk", "TR"),
                           ("right_leg", "RL"), ("left_leg", "LL")):  # fmt: skip
            p = parts[part]
            values[f"ECW/TBW({code})"] = round(p.ecw_l / p.tbw_l + off, 3)
    if "inbody_type" in sim:
        values["InBody Type"] = int(sim["inbody_type"])
    return values


def truth_record(
    subject: Subject,
    visit: int,
    day: float,
    parts: Mapping[str, PartState],
    weight_kg: float,
    scenario: str,
) -> dict[str, Any]:
    """Ground truth as a JSON-able dict (one ``--truth`` line's ``truth``)."""
    whole = _volumes(parts)
    segs: dict[str, dict[str, float]] = {}
    for name, p in parts.items():
        segs[name] = {
            "ecw_l": p.ecw_l,
            "icw_l": p.icw_l,
            "tbw_l": p.tbw_l,
            "ecw_tbw_ratio": p.ecw_l / p.tbw_l,
            "r0_ohm": p.r0_ohm,
            "rinf_ohm": p.rinf_ohm,
            "alpha": p.alpha,
            "fc_khz": p.fc_khz,
        }
    return {
        "scenario": scenario,
        "group": subject.group,
        "subject_id": subject.subject_id,
        "visit": visit,
        "day": day,
        "sex": subject.sex,
        "age_years": subject.age_years,
        "height_cm": subject.height_cm,
        "weight_kg": weight_kg,
        "changes": [
            {"where": list(t), "ecw_fraction": fe, "icw_fraction": fi, "course": c.course}
            for c, t, fe, fi in subject.changes
        ],
        "whole_body": whole,
        **whole,  # the whole-body values at the top level too (ecw_l, ..., ecw_tbw_ratio)
        "segments": segs,
    }
