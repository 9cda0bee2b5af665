"""Stored estimates against the simulator's ground truth: Bland–Altman per method and segment.

Each stored measurement is matched to the ``--truth`` record it came from by
subject ID, device clock and the impedances themselves (all three must agree,
so a replayed or re-sent frame cannot match the wrong record). For every
method and version found in ``segment_result`` and every segment, the
differences estimate − truth give the bias and the limits of agreement
bias ± 1.96 SD (Bland & Altman, Lancet 1986;i:307), for ECW/TBW and, where
the method gives them, for ECW, ICW and TBW in litres.

Labels (issue 12: every label earned): per method and segment, the share of
rows labelled with a band word (normal, slightly over, edema, below normal),
the share of those that are **wrong** (the true ratio lies in another band of
the same bands: the method's own, or the site's passed as ``bands``), and the
shares labelled indeterminate, not applicable and no published band. Where
the database holds the limb asymmetry label, the leg-injury check: the share of
subjects whose changed leg is labelled asymmetric at their first visit.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bia_acq.core.estimate import METHODS
from bia_acq.core.methods import EARNED, Bands
from bia_acq.errors import BiaError, ConfigError
from bia_acq.simulator.population import Scenario

_SHARES = ("earned", "wrong", "indeterminate", "not applicable", "no band")

QUANTITIES = (
    ("ECW/TBW", "ecw_tbw_ratio"),
    ("ECW L", "ecw_l"),
    ("ICW L", "icw_l"),
    ("TBW L", "tbw_l"),
)


@dataclass(frozen=True)
class Row:
    method: str
    version: str
    segment: str
    quantity: str
    n: int
    bias: float
    sd: float
    loa_low: float
    loa_high: float
    class_correct: float | None  # share of earned labels that match the truth, ECW/TBW rows
    class_n: int
    #: ECW/TBW rows: shares of all labelled rows (earned, wrong, indeterminate,
    #: not applicable, no published band); None on the other quantities
    labels: dict[str, float] | None = None
    class_n_all: int = 0  # rows labelled (ECW/TBW rows)


@dataclass
class Report:
    truth_records: int
    measurements: int
    matched: int
    unmatched_measurements: int
    not_stored: int
    not_stored_damaged: int
    rows: list[Row]
    #: per method: subjects whose changed limb is labelled asymmetric at the first visit
    asymmetry_first_visit: dict[str, dict[str, int]] | None = None
    #: per scenario of the truth file and method: n and the label shares of all its rows
    #: (segments and whole body), and how the scenario simulated the electrodes
    scenario_shares: dict[str, dict[str, Any]] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in asdict(self).items() if k != "rows"},
            "rows": [asdict(r) for r in self.rows],
        }

    def table(self) -> str:
        lines = [
            f"truth records: {self.truth_records}; stored measurements: {self.measurements}; "
            f"matched: {self.matched}; stored but not in the truth file: "
            f"{self.unmatched_measurements}; sent but not stored: {self.not_stored} "
            f"({self.not_stored_damaged} damaged on purpose by faults)",
            "",
            f"{'method':<20} {'segment':<11} {'quantity':<8} {'n':>5} {'bias':>8} {'SD':>7} "
            f"{'limits of agreement':>21} {'class ok':>8}",
        ]
        for r in self.rows:
            digits = 4 if r.quantity == "ECW/TBW" else 2
            cls = f"{100 * r.class_correct:7.1f}%" if r.class_correct is not None else f"{'':>8}"
            loa = f"{r.loa_low:+.{digits}f} .. {r.loa_high:+.{digits}f}"
            lines.append(
                f"{r.method + ' v' + r.version:<20} {r.segment:<11} {r.quantity:<8} {r.n:>5} "
                f"{r.bias:>+8.{digits}f} {r.sd:>7.{digits}f} {loa:>21} {cls}".rstrip()
            )
        lines += ["", "labels of ECW/TBW, share of rows:", self.label_table()]
        if self.scenario_shares:
            lines += ["", "per scenario, all rows of a method:", self.scenario_table()]
        for method, a in (self.asymmetry_first_visit or {}).items():
            lines.append(
                f"first-visit asymmetry ({method}): the changed limb labelled asymmetric in "
                f"{a['flagged']} of {a['subjects']} subjects"
            )
        return "\n".join(lines)

    def label_table(self) -> str:
        """Per method and segment: n and the shares earned, wrong, indeterminate,
        not applicable, no published band (markdown)."""
        out = [
            "| method | segment | n | earned | wrong | indeterminate | not applicable | no band |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in self.rows:
            if r.labels is None:
                continue
            sh = r.labels
            out.append(
                f"| {r.method} v{r.version} | {r.segment} | {r.class_n_all} | "
                + " | ".join(
                    f"{100 * sh[k]:.0f} %"
                    for k in ("earned", "wrong", "indeterminate", "not applicable", "no band")
                )
                + " |"
            )
        return "\n".join(out)

    def scenario_table(self) -> str:
        """Per scenario and method: the shares of all its rows' labels (markdown)."""
        out = [
            "| scenario | electrodes | method | n | earned | wrong | indeterminate "
            "| not applicable | no band |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name, d in (self.scenario_shares or {}).items():
            for method, sh in d["methods"].items():
                out.append(
                    f"| {name} | {d['electrodes']} | {method} | {sh['n']} | "
                    + " | ".join(f"{100 * sh[k]:.0f} %" for k in _SHARES)
                    + " |"
                )
        return "\n".join(out)


def _electrodes_text(e: object) -> str:
    """A truth record's electrode effects in words."""
    if not isinstance(e, dict):
        return "not recorded"
    if not e:
        return "ideal"
    td, gain = e.get("td_ns", [0, 0]), e.get("contact_gain", 0)
    return f"Td {td[0]:g} ± {td[1]:g} ns, contact gain {100 * float(gain):g} %"


def read_truth(path: Path) -> list[dict[str, Any]]:
    """The records of a ``--truth`` file; ConfigError naming the line if one is not JSON."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("truth file not found", file=str(path), fix="check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read the truth file: {exc}",
            file=str(path),
            fix="pass the file `bia-acq simulate --truth` wrote",
        ) from None
    out = []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            if not isinstance(rec["reading"]["impedance"], list) or not isinstance(
                rec["truth"]["segments"], dict
            ):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise ConfigError(
                "not a truth record (JSON with 'reading' and 'truth')",
                file=str(path),
                line=i,
                fix="pass the file `bia-acq simulate --truth` wrote",
            ) from None
        out.append(rec)
    return out


def _key_points(
    points: Iterable[Sequence[Any]],
) -> tuple[tuple[str, float, float, float | None], ...]:
    return tuple(
        sorted(
            (str(s), float(f), float(r), None if x is None else float(x)) for s, f, r, x in points
        )
    )


def _stats(d: np.ndarray) -> tuple[float, float]:
    bias = float(d.mean())
    sd = float(d.std(ddof=1)) if len(d) > 1 else 0.0
    return bias, sd


def validate(
    truth: list[dict[str, Any]],
    conn: sqlite3.Connection,
    bands: dict[str, Bands] | None = None,
) -> Report:
    """Match stored measurements to truth records and compute the agreement table.

    ``bands``: the site's bands per method (as configured), judged instead of the
    method's own."""
    by_key: dict[tuple[str | None, str | None], list[int]] = defaultdict(list)
    truth_points = []
    for i, rec in enumerate(truth):
        rd = rec["reading"]
        by_key[(rd.get("subject_id"), rd.get("measured_at"))].append(i)
        truth_points.append(
            _key_points(
                (z["segment"], z["freq_khz"], z["r_ohm"], z["x_ohm"]) for z in rd["impedance"]
            )
        )
    points: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    for mid, seg, f, r, x in conn.execute(
        "SELECT measurement_id, segment, freq_khz, r_ohm, x_ohm FROM impedance"
    ):
        points[mid].append((seg, f, r, x))
    used: set[int] = set()
    match: dict[int, int] = {}
    measurements = conn.execute(
        "SELECT m.id, s.external_id, m.device_clock FROM measurement m "
        "LEFT JOIN subject s ON s.id = m.subject_id ORDER BY m.id"
    ).fetchall()
    for mid, ext, clock in measurements:
        key = _key_points(points.get(mid, []))
        for i in by_key.get((ext, clock), []):
            if i not in used and truth_points[i] == key:
                used.add(i)
                match[mid] = i
                break
    # (method, version, segment, quantity) -> lists of (estimate, truth); classes
    pairs: dict[tuple[str, str, str, str], list[tuple[float, float]]] = defaultdict(list)
    classes: dict[tuple[str, str, str], list[bool]] = defaultdict(list)
    kinds: dict[tuple[str, str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    has_asym = "asymmetry" in {
        r[1] for r in conn.execute("PRAGMA table_info(segment_result)").fetchall()
    }
    asym_col = "asymmetry" if has_asym else "NULL"
    asym: dict[str, dict[str, int]] = defaultdict(lambda: {"subjects": 0, "flagged": 0})
    scen: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    scen_electrodes: dict[str, str] = {}
    for mid, method, version, seg, *vals, cls, asym_label in conn.execute(
        "SELECT measurement_id, method, method_version, segment, ecw_tbw_ratio, ecw_l, icw_l, "
        f"tbw_l, classification, {asym_col} FROM segment_result ORDER BY measurement_id"
    ):
        if mid not in match:
            continue
        t = truth[match[mid]]["truth"]
        true_seg = t["whole_body"] if seg == "whole_body" else t["segments"].get(seg)
        if true_seg is None:
            continue
        for (label, col), est in zip(QUANTITIES, vals, strict=True):
            tv = true_seg.get(col)
            if est is not None and tv is not None and math.isfinite(est):
                pairs[(method, version, seg, label)].append((float(est), float(tv)))
        m = METHODS.get(method)
        band = (bands or {}).get(method, m.bands if m is not None else None)
        scenario = str(t.get("scenario") or "(unnamed)")
        scen_electrodes.setdefault(scenario, _electrodes_text(t.get("electrodes")))
        k = kinds[(method, version, seg)]
        ks = scen[(scenario, f"{method} v{version}")]
        if cls in EARNED:
            kind = "earned"
            if band is not None and method != "device":
                ok = str(band.band(true_seg["ecw_tbw_ratio"])) == cls
                classes[(method, version, seg)].append(ok)
                k["wrong"] += not ok
                ks["wrong"] += not ok
        elif cls == "indeterminate":
            kind = "indeterminate"
        elif cls == "no published band":
            kind = "no band"
        else:
            kind = "not applicable"
        for cnt in (k, ks):
            cnt["n"] += 1
            cnt[kind] += 1
        rec = truth[match[mid]]["truth"]
        changed = {p for c in rec.get("changes", []) for p in c.get("where", [])}
        if has_asym and rec.get("visit") == 1 and seg in changed and len(changed) == 1:
            entry = asym[method]
            entry["subjects"] += 1
            entry["flagged"] += asym_label == "asymmetric"
    order = {
        s: i
        for i, s in enumerate(
            ("right_arm", "left_arm", "trunk", "right_leg", "left_leg", "whole_body")
        )
    }
    q_order = {label: i for i, (label, _) in enumerate(QUANTITIES)}
    rows = []
    for (method, version, seg, label), pv in sorted(
        pairs.items(),
        key=lambda kv: (kv[0][0], kv[0][1], order.get(kv[0][2], 99), q_order[kv[0][3]]),
    ):
        a = np.asarray(pv, dtype=float)
        bias, sd = _stats(a[:, 0] - a[:, 1])
        c = classes.get((method, version, seg), []) if label == "ECW/TBW" else []
        kk = kinds.get((method, version, seg)) if label == "ECW/TBW" else None
        shares = {q: kk.get(q, 0) / kk["n"] for q in _SHARES} if kk and kk.get("n") else None
        rows.append(
            Row(
                method, version, seg, label, len(a), bias, sd, bias - 1.96 * sd, bias + 1.96 * sd,
                (sum(c) / len(c)) if c else None, len(c), shares, kk["n"] if kk else 0,
            )
        )  # fmt: skip
    missing = [i for i in range(len(truth)) if i not in used]
    return Report(
        truth_records=len(truth),
        measurements=len(measurements),
        matched=len(match),
        unmatched_measurements=len(measurements) - len(match),
        not_stored=len(missing),
        not_stored_damaged=sum(1 for i in missing if truth[i].get("intact") is False),
        rows=rows,
        asymmetry_first_visit={m: dict(a) for m, a in asym.items()} if asym else None,
        scenario_shares={
            name: {
                "electrodes": elec,
                "methods": {
                    method: {"n": cnt["n"], **{q: cnt.get(q, 0) / cnt["n"] for q in _SHARES}}
                    for (sc_name, method), cnt in sorted(scen.items())
                    if sc_name == name
                },
            }
            for name, elec in scen_electrodes.items()
        }
        or None,
    )


def validate_files(
    truth_path: Path, conn: sqlite3.Connection, bands: dict[str, Bands] | None = None
) -> Report:
    truth = read_truth(truth_path)
    report = validate(truth, conn, bands)
    if report.matched == 0:
        raise BiaError(
            f"no stored measurement matches {truth_path} ({report.truth_records} truth records, "
            f"{report.measurements} measurements): was the database filled from this simulator run?"
        )
    return report


# -- real analyzers: the device's own figures against every applicable method --------------


@dataclass(frozen=True)
class CaptureRow:
    capture: str
    model: str
    method: str
    ecw_l: float
    tbw_l: float
    ratio: float
    ratio_low: float
    ratio_high: float
    label: str
    status: str


def real_capture_rows(captures: Sequence[tuple[str, str, Path]]) -> list[CaptureRow]:
    """Every method's whole-body result on each real capture that carries the device's
    own water figures: ``captures`` are (name, driver profile, file)."""
    from bia_acq.core.estimate import estimate
    from bia_acq.core.methods import device_figures
    from bia_acq.drivers import get_profile

    out: list[CaptureRow] = []
    for name, profile, path in captures:
        codec = get_profile(profile).codec()
        framer = codec.framer()
        readings = [
            codec.decode(c.data)
            for c in [*framer.feed(path.read_bytes()), *framer.flush()]
            if c.kind == "frame"
        ]
        for rd in readings:
            if not device_figures(rd.device_values, rd.model or "")[0]:
                continue
            for method in METHODS:
                res = estimate([rd], method)
                assert res.volumes is not None
                lo, hi = res.volumes.interval("ratio")
                out.append(
                    CaptureRow(
                        name,
                        rd.model or profile,
                        method,
                        float(res.ecw_l[0, -1]),
                        float(res.tbw_l[0, -1]),
                        float(res.ecw_tbw_ratio[0, -1]),
                        float(lo[0, -1]),
                        float(hi[0, -1]),
                        str(res.classification[0, -1]),
                        str(res.fit_status[0][-1]),
                    )
                )
    return out


def _f(v: float, digits: int) -> str:
    return f"{v:.{digits}f}" if math.isfinite(v) else "–"


def capture_table(rows: Sequence[CaptureRow]) -> str:
    """Markdown: device value, each method with its interval, the differences (TBW and
    ECW/TBW) from the device, the label."""
    lines = [
        "| capture | method | ECW L | TBW L | TBW − device | ECW/TBW (95 % interval) | − device"
        " | label |",
        "|---|---|---|---|---|---|---|---|",
    ]
    device = {r.capture: r for r in rows if r.method == "device"}
    for r in rows:
        d = device.get(r.capture)
        ours = d is not None and r.method != "device"
        diff = r.ratio - d.ratio if ours and d is not None else float("nan")
        dtbw = r.tbw_l - d.tbw_l if ours and d is not None else float("nan")
        iv = (
            f"{_f(r.ratio, 3)} ({_f(r.ratio_low, 3)}–{_f(r.ratio_high, 3)})"
            if math.isfinite(r.ratio)
            else "–"
        )
        lines.append(
            f"| {r.capture} ({r.model}) | {r.method} | {_f(r.ecw_l, 1)} | {_f(r.tbw_l, 1)} | "
            f"{'+' if dtbw > 0 else ''}{_f(dtbw, 1)} | "
            f"{iv} | {'+' if diff > 0 else ''}{_f(diff, 3)} | {r.label} |"
        )
    return "\n".join(lines)


# -- label shares per scenario, in memory (the same core path `run` takes) ----------------


def scenario_label_shares(
    scenario: str | Scenario,
    profile: str,
    subjects: int,
    *,
    seed: int = 12,
    bands: dict[str, Bands] | None = None,
) -> dict[str, Any]:
    """Simulate ``subjects`` cohorts' visits of a scenario on a profile, estimate every
    method and count the labels against the truth.

    Returns per method: for all segments together, the shares of rows labelled
    edema, wrong (a band word other than the truth's band under the same bands),
    indeterminate, not applicable and no published band; the same for the trunk
    alone; and (scenarios with one changed limb) the share of subjects whose
    changed limb is labelled asymmetric at the first visit, and whose R0 change
    from the first visit exceeds the MDC at the last.
    """
    import dataclasses
    import datetime as dt

    from bia_acq.core.compare import change_labels, mdc95
    from bia_acq.core.estimate import RESULT_SEGMENTS, estimate
    from bia_acq.drivers import get_profile
    from bia_acq.simulator.population import Population, load_scenario

    base = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    sc = dataclasses.replace(base, subjects=subjects)
    prof = get_profile(profile)
    pop = Population(sc, prof, np.random.default_rng(seed))
    now = dt.datetime(2026, 12, 1, 9, 0)
    pairs = [pop.next_measurement(now) for _ in range(subjects * sc.visits)]
    readings = [r for r, _ in pairs]
    truths = [t for _, t in pairs]
    seg_names = [s.value for s in RESULT_SEGMENTS]
    out: dict[str, Any] = {"scenario": sc.name, "profile": profile, "n": len(readings)}
    for method in METHODS:
        res = estimate(readings, method, bands)
        m = METHODS[method]
        band = (bands or {}).get(method, m.bands)
        counts: dict[str, dict[str, int]] = {
            w: defaultdict(int) for w in ("all", "trunk", "whole_body")
        }
        for i, t in enumerate(truths):
            for j, seg in enumerate(seg_names):
                cls = str(res.classification[i, j])
                true = t["whole_body"] if seg == "whole_body" else t["segments"][seg]
                for where in ("all", seg):
                    if where not in counts:
                        continue
                    c = counts[where]
                    c["n"] += 1
                    c[cls] += 1
                    if cls in EARNED and band is not None and method != "device":
                        c["wrong"] += str(band.band(true["ecw_tbw_ratio"])) != cls
        out[method] = {
            where: {
                k: c[k] / c["n"]
                for k in (
                    "edema",
                    "wrong",
                    "indeterminate",
                    "not applicable",
                    "no published band",
                    "normal",
                )
            }
            | {"n": c["n"]}
            for where, c in counts.items()
            if c["n"]
        }
        # one changed limb: flagged by asymmetry at the first visit; change at the last
        flagged = subjects_one = recovered = with_r0 = 0
        assert res.asymmetry is not None and res.r0_high_ohm is not None
        sd = (res.r0_high_ohm - res.r0_low_ohm) / (2 * 1.959964)  # type: ignore[operator]
        first: dict[str, int] = {}
        last: dict[str, int] = {}
        for i, t in enumerate(truths):
            first.setdefault(t["subject_id"], i)
            last[t["subject_id"]] = i
        for sid, i in first.items():
            changed = {p for c in truths[i]["changes"] for p in c["where"]}
            if len(changed) != 1 or not changed <= {
                "right_arm",
                "left_arm",
                "right_leg",
                "left_leg",
            }:
                continue
            j = seg_names.index(changed.pop())
            subjects_one += 1
            flagged += res.asymmetry[i, j] == "asymmetric"
            k = last[sid]
            if k != i:
                d = res.r0_ohm[k, j] - res.r0_ohm[i, j]
                with_r0 += bool(np.isfinite(d))
                recovered += str(change_labels(d, mdc95(sd[k, j], sd[i, j]))) == "increased"
        if subjects_one:
            out[method]["asymmetry"] = {
                "subjects": subjects_one,
                "flagged_first_visit": flagged / subjects_one,
                # of the subjects with an R0 at both visits (methods without a Cole fit: none)
                "r0_recovered_beyond_mdc": recovered / with_r0 if with_r0 else None,
            }
    return out


def shares_table(results: Sequence[dict[str, Any]], methods: Sequence[str] | None = None) -> str:
    """Markdown table of :func:`scenario_label_shares` results (all segments; trunk;
    first-visit asymmetry of the changed limb)."""
    lines = [
        "| scenario | analyzer | method | n | edema | wrong | indeterminate | not applicable "
        "| no band | trunk edema | changed limb asymmetric at visit 1 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def pct(x: float | None) -> str:
        return "–" if x is None else f"{100 * x:.0f} %"

    for r in results:
        for m in methods or METHODS:
            d = r.get(m)
            if not isinstance(d, dict):
                continue
            a, t = d["all"], d.get("trunk", {})
            asym = d.get("asymmetry")
            lines.append(
                f"| {r['scenario']} | {r['profile']} | {r.get('label', m)} | {a['n']} | "
                f"{pct(a['edema'])} | {pct(a['wrong'])} | {pct(a['indeterminate'])} | "
                f"{pct(a['not applicable'])} | {pct(a['no published band'])} | "
                f"{pct(t.get('edema'))} | "
                f"{pct(asym['flagged_first_visit']) if asym else '–'} |"
            )
    return "\n".join(lines)
