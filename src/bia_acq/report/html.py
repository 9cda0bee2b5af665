"""Self-contained HTML edema reports: no network, no scripts, charts inline as SVG, A4 print."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from html import escape
from typing import Any

from bia_acq import __version__
from bia_acq.report.data import SEGMENT_LABEL, SEGMENT_ORDER, SubjectData
from bia_acq.report.svg import (
    CLASS_COLOURS,
    Series,
    body_chart,
    limit_text,
    ratio_text,
    trend_chart,
)
from bia_acq.utc import utc_now

#: the page may load nothing from anywhere: styles inline, images as data: only, no scripts
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

SERIES_STYLE = {
    "whole_body": ("#000000", "", 3.0),
    "right_arm": ("#1f77b4", "", 1.8),
    "left_arm": ("#1f77b4", "5 3", 1.8),
    "trunk": ("#7f7f7f", "2 2", 1.5),
    "right_leg": ("#d62728", "", 1.8),
    "left_leg": ("#d62728", "5 3", 1.8),
}

STYLE = """
:root { color-scheme: light; }
body { font-family: "DejaVu Sans", Arial, sans-serif; font-size: 13px; color: #111;
       margin: 24px auto; max-width: 960px; padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 22px 0 8px; border-bottom: 1px solid #999; padding-bottom: 3px; }
.sub { color: #444; margin: 0 0 10px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0; }
th, td { border: 1px solid #bbb; padding: 3px 6px; text-align: right; }
th { background: #f0f0f0; }
td.l, th.l { text-align: left; }
dl.id { display: grid; grid-template-columns: max-content 1fr max-content 1fr; gap: 2px 14px; margin: 8px 0; }
dl.id dt { font-weight: bold; } dl.id dd { margin: 0; }
.cls { font-weight: bold; padding: 0 4px; border-radius: 3px; }
.row { display: flex; gap: 18px; align-items: flex-start; flex-wrap: wrap; }
.note { color: #444; font-size: 11px; }
.chart { break-inside: avoid; page-break-inside: avoid; }
svg { max-width: 100%; height: auto; }
footer { margin-top: 20px; color: #555; font-size: 11px; border-top: 1px solid #ccc; padding-top: 6px; }
a { color: #0b57d0; }
@page { size: A4; margin: 12mm; }
@media print {
  body { margin: 0; max-width: none; padding: 0; font-size: 10.5px; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  h2 { break-after: avoid; page-break-after: avoid; }
  table, .row { break-inside: avoid; page-break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
  .noprint { display: none; }
}
"""


def _num(v: Any, digits: int, signed: bool = False) -> str:
    if not isinstance(v, int | float) or not math.isfinite(v):
        return "–"
    v = round(v, digits) + 0.0  # no "-0.000"
    return f"{v:+.{digits}f}" if signed else f"{v:.{digits}f}"


def _when(epoch: Any) -> str:
    """A measurement time for people: date and minute, UTC."""
    if not isinstance(epoch, int | float):
        return "–"
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M")


def _cls(c: Any) -> str:
    name = str(c) if c else "unknown"
    stroke, fill = CLASS_COLOURS.get(name, CLASS_COLOURS["unknown"])
    return f'<span class="cls" style="color:{stroke};background:{fill}">{escape(name)}</span>'


def _fill(c: Any) -> str:
    return CLASS_COLOURS.get(str(c), CLASS_COLOURS["unknown"])[1] if c else "transparent"


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="robots" content="noindex">\n'
        f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"{body}\n</body></html>\n"
    )


def _footer(generated_utc: str) -> str:
    return (
        f"<footer>Generated {escape(generated_utc)} by bia-acq {escape(__version__)} from the "
        "database, opened read-only. Health data: store and share this document as a clinical "
        "record.</footer>"
    )


def utc_now_text() -> str:
    return utc_now("seconds")


def _ratio(v: Any, limits: Sequence[float | None]) -> str:
    """ECW/TBW as the bands read it: 3 decimals, more where a limit needs them."""
    if not isinstance(v, float) or not math.isfinite(v):
        return "–"
    return ratio_text(v, limits)


def _row_limits(r: dict[str, Any]) -> list[float | None]:
    return [r.get(k) for k in ("ecw_tbw_normal_min", "ecw_tbw_normal_max", "ecw_tbw_slight_max")]


def _identity(data: SubjectData) -> str:
    """Who, and what the report covers: the patient, the visits and the method's bands."""
    m, a, visits = data.method, data.attributes, data.visits
    first_t = _when(visits[0]["measured_at_epoch"]) if visits else "–"
    last_t = _when(visits[-1]["measured_at_epoch"]) if visits else "–"
    out = (
        "<h1>Edema report: ECW/TBW by bioimpedance</h1>"
        '<dl class="id">'
        f"<dt>Patient ID</dt><dd>{escape(data.external_id)}</dd>"
        f"<dt>Pseudonym</dt><dd>{escape(data.pseudonym)}</dd>"
        f"<dt>Sex</dt><dd>{escape(str(a.get('sex') or '–'))}</dd>"
        f"<dt>Age</dt><dd>{_num(a.get('age_years'), 0)} years</dd>"
        f"<dt>Height</dt><dd>{_num(a.get('height_cm'), 1)} cm</dd>"
        f"<dt>Weight</dt><dd>{_num(a.get('weight_kg'), 1)} kg (latest)</dd>"
        f"<dt>Visits</dt><dd>{len(visits)}: {first_t} to {last_t} UTC</dd>"
        f"<dt>Method</dt><dd>{escape(m.name + ' v' + m.version) if m else '–'}</dd>"
        "</dl>"
    )
    if m is not None and m.normal_max is not None:
        slight = f", slightly over ≤ {limit_text(m.slight_max)}" if m.slight_max is not None else ""
        out += (
            f'<p class="sub">Bands of {escape(m.name)} v{escape(m.version)}: normal ECW/TBW ≤ '
            f"{limit_text(m.normal_max)}{slight}, edema above ({escape(m.bands_source)}). A "
            "label is given only where the 95 % interval lies inside one band. ECW/TBW bands "
            "belong to the method that computed the ratio; do not compare with another "
            "method's cut-offs.</p>"
        )
    elif m is not None:  # issue 12: no published band
        out += (
            f'<p class="sub">ECW/TBW bands of {escape(m.name)} v{escape(m.version)}: '
            f"{escape(m.bands_source)}</p>"
        )
    return out


def _trend(data: SubjectData) -> str:
    """ECW/TBW of the whole body and each limb over time, on the method's bands."""
    m = data.method
    if m is None:
        return "<h2>ECW/TBW over time</h2>"
    series = [
        Series(
            label=SEGMENT_LABEL[seg],
            colour=SERIES_STYLE[seg][0],
            dash=SERIES_STYLE[seg][1],
            width=SERIES_STYLE[seg][2],
            points=[
                (r["measured_at_epoch"], r["ecw_tbw_ratio"])
                for r in data.trend.get(seg, [])
                if isinstance(r["ecw_tbw_ratio"], float)
            ],
        )
        for seg in SEGMENT_ORDER
        if data.trend.get(seg) and seg != "trunk"
    ]
    chart = trend_chart(
        series,
        m.normal_max,
        m.slight_max,
        title="ECW/TBW per segment over time, with the method's bands",
    )
    return (
        f'<h2>ECW/TBW over time</h2><div class="chart">{chart}</div>'
        '<p class="note">Whole body and limbs; the trunk is in the tables below (on '
        "analyzers without a trunk electrode it is derived from the hand-to-foot path and "
        "varies more).</p>"
    )


def _asymmetry(latest: dict[str, dict[str, Any]]) -> str:
    """Right against left for arms and legs at the latest visit."""
    rows = []
    for pair, right, left in (("Arms", "right_arm", "left_arm"), ("Legs", "right_leg", "left_leg")):
        r, lft = latest.get(right), latest.get(left)
        if not r or not lft:
            continue
        diff = r["ecw_tbw_ratio_minus_other_side"]
        if not isinstance(diff, float):
            side = "–"
        elif abs(diff) < 0.0005:
            side = "equal"
        else:
            side = "right higher" if diff > 0 else "left higher"
        rows.append(
            f'<tr><td class="l">{pair}</td><td>{_ratio(r["ecw_tbw_ratio"], _row_limits(r))}</td>'
            f"<td>{_ratio(lft['ecw_tbw_ratio'], _row_limits(lft))}</td>"
            f'<td>{_num(diff, 3, True)}</td><td class="l">{side}</td>'
            f"<td>{_num(lft['r0_other_side_over_this'], 3)}</td></tr>"
        )
    return (
        '<table><tr><th class="l">Pair</th><th>Right ECW/TBW</th><th>Left ECW/TBW</th>'
        '<th>Right − left</th><th class="l">Higher side</th><th>R0 right / R0 left</th></tr>'
        + "".join(rows)
        + "</table>"
        '<p class="note">A limb holding extra extracellular water has a higher ECW/TBW and a '
        "lower R0 than the other side.</p>"
    )


def _latest_visit(data: SubjectData) -> str:
    """The latest visit on the body outline, beside the left-right asymmetry."""
    wb = data.latest.get("whole_body")
    visits = data.visits
    when = _when(
        wb["measured_at_epoch"] if wb else visits[-1]["measured_at_epoch"] if visits else None
    )
    return (
        f"<h2>Latest visit ({when} UTC): segments and asymmetry</h2>"
        '<div class="row"><div class="chart">'
        + body_chart(data.latest, title="ECW/TBW per segment at the latest visit")
        + f'</div><div style="flex:1;min-width:300px">{_asymmetry(data.latest)}</div></div>'
    )


def _latest_values(latest: dict[str, dict[str, Any]]) -> str:
    """Each segment's latest result with units, band, classification and change."""
    rows = []
    for seg in SEGMENT_ORDER:
        r = latest.get(seg)
        if not r:
            continue
        rows.append(
            f'<tr><td class="l">{SEGMENT_LABEL[seg]}</td><td class="l">{_when(r["measured_at_epoch"])}</td>'
            f"<td>{_num(r['ecw_l'], 2)}</td><td>{_num(r['icw_l'], 2)}</td><td>{_num(r['tbw_l'], 2)}</td>"
            f"<td>{_ratio(r['ecw_tbw_ratio'], _row_limits(r))} <small>("
            f"{_num(r.get('ecw_tbw_low'), 3)}–{_num(r.get('ecw_tbw_high'), 3)})</small></td>"
            f"<td>≤ {limit_text(r['ecw_tbw_normal_max'])}</td>"
            f'<td class="l">{_cls(r["classification"])}</td>'
            f"<td>{_num(r['phase_angle_50khz_deg'], 1)}</td>"
            f"<td>{_num(r['baseline_ecw_tbw_ratio'], 3)}</td><td>{_num(r['ecw_tbw_ratio_change'], 3, True)}</td>"
            f'<td class="l">{escape(r["method"])} v{escape(r["method_version"])}</td></tr>'
        )
    return (
        "<h2>Latest values</h2>"
        '<table><tr><th class="l">Segment</th><th class="l">Measured (UTC)</th><th>ECW (L)</th>'
        "<th>ICW (L)</th><th>TBW (L)</th><th>ECW/TBW (95 % interval)</th><th>Normal</th>"
        '<th class="l">Classification</th><th>Phase angle 50 kHz (°)</th>'
        '<th>Baseline ECW/TBW</th><th>Change</th><th class="l">Method</th></tr>'
        + "".join(rows)
        + "</table>"
        '<p class="note">Baseline: the first measurement of this patient. Segment volumes '
        "(litres) are shown where the method computes them (– otherwise).</p>"
    )


def _visits(data: SubjectData) -> str:
    """Every visit's ECW/TBW per segment with its change from baseline, shaded by class."""
    m = data.method
    limits = [m.normal_max, m.slight_max] if m else []
    segs = [s for s in SEGMENT_ORDER if s in data.trend]
    head = "".join(f"<th>{SEGMENT_LABEL[s]}</th>" for s in segs)
    rows = []
    for v in data.visits:
        cells = "".join(
            f'<td style="background:{_fill(v.get(s + "_classification"))}">'
            f"{_ratio(v.get(s), limits)} <small>({_num(v.get(s + '_change'), 3, True)})</small></td>"
            for s in segs
        )
        rows.append(
            f'<tr><td class="l">{_when(v["measured_at_epoch"])}</td>'
            f"<td>{_num(v['days_since_baseline'], 0)}</td>{cells}</tr>"
        )
    return (
        "<h2>Change from baseline, visit by visit</h2>"
        f'<table><tr><th class="l">Measured (UTC)</th><th>Day</th>{head}</tr>'
        + "".join(rows)
        + "</table>"
        '<p class="note">ECW/TBW (change from baseline in brackets), shaded by the '
        "method's classification: green normal, amber slightly over, red edema.</p>"
    )


def render_subject(data: SubjectData, *, generated_utc: str, index_href: str | None = None) -> str:
    """One subject's edema report: who, the trend, the latest visit, its values, every visit."""
    m = data.method
    parts = []
    if index_href:
        parts.append(f'<p class="noprint"><a href="{escape(index_href)}">← all subjects</a></p>')
    parts += [
        _identity(data),
        _trend(data),
        _latest_visit(data),
        _latest_values(data.latest),
        _visits(data),
    ]
    if m is not None:
        parts.append(
            f'<p class="note">Method {escape(m.name)} v{escape(m.version)}: '
            f"{escape(m.description)}. Sources: {escape(m.citation)}. Bands: "
            f"{escape(m.bands_source)}.</p>"
        )
    parts.append(_footer(generated_utc))
    return _page(f"Edema report {data.pseudonym}", "\n".join(parts))


def render_index(
    subjects: Sequence[tuple[SubjectData, str]], *, generated_utc: str, db_name: str
) -> str:
    """The list of subjects with their latest whole-body and worst segment, linking to pages."""
    rows = []
    for data, href in subjects:
        wb = data.latest.get("whole_body")
        worst = max(
            (r for r in data.latest.values() if isinstance(r["ecw_tbw_ratio"], float)),
            key=lambda r: r["ecw_tbw_ratio"] - (r["ecw_tbw_normal_max"] or 0),
            default=None,
        )
        rows.append(
            f'<tr><td class="l"><a href="{escape(href)}">{escape(data.external_id)}</a></td>'
            f'<td class="l">{escape(data.pseudonym)}</td>'
            f'<td class="l">{_when(wb["measured_at_epoch"]) if wb else "–"}</td>'
            f"<td>{len(data.visits)}</td>"
            f"<td>{_ratio(wb['ecw_tbw_ratio'], _row_limits(wb)) if wb else '–'}</td>"
            f'<td class="l">{_cls(wb["classification"] if wb else None)}</td>'
            f'<td class="l">{escape(SEGMENT_LABEL.get(worst["segment"], "") if worst else "–")} '
            f"{_ratio(worst['ecw_tbw_ratio'], _row_limits(worst)) if worst else ''}</td></tr>"
        )
    body = (
        f'<h1>Edema reports</h1><p class="sub">{len(rows)} subject(s) in {escape(db_name)}</p>'
        '<table><tr><th class="l">Patient ID</th><th class="l">Pseudonym</th>'
        '<th class="l">Latest visit (UTC)</th><th>Visits</th><th>Whole-body ECW/TBW</th>'
        '<th class="l">Classification</th><th class="l">Segment highest in its band</th></tr>'
        + "".join(rows)
        + "</table>"
        + _footer(generated_utc)
    )
    return _page("Edema reports", body)
