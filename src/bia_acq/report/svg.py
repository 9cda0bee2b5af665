"""Inline SVG charts drawn here, no libraries: the ECW/TBW trend with the method's bands,
and the latest visit on a body outline. Every text is escaped; every number is finite."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

#: classification → (stroke, fill); the text always says the class too (not colour alone)
CLASS_COLOURS = {
    "normal": ("#2e7d32", "#c8e6c9"),
    "slightly over": ("#b26a00", "#ffe0a3"),
    "edema": ("#c62828", "#ffcdd2"),
    "unknown": ("#757575", "#eeeeee"),
}
BAND_FILL = {"normal": "#e8f5e9", "slightly over": "#fff4d6", "edema": "#fde7e7"}


@dataclass(frozen=True)
class Series:
    label: str
    colour: str
    points: Sequence[tuple[float, float]]  # (epoch seconds, ECW/TBW)
    dash: str = ""
    width: float = 2.0


def _f(v: float) -> str:
    return f"{v:.1f}"


def _date(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d")


def decimals(step: float, least: int = 0) -> int:
    """Digits after the point that write multiples of ``step`` exactly (0.005: 3; 0.02: 2)."""
    for d in range(least, 10):
        if abs(round(step, d) - step) <= abs(step) * 1e-9:
            return d
    return 10


def limit_text(limit: float | None) -> str:
    """A band limit: 3 decimals, more if the limit has them (0.45 → 0.450, 0.4525 → 0.4525);
    '–' where there is none (no published band)."""
    if limit is None:
        return "–"
    return f"{limit:.{decimals(limit, 3)}f}"


def ratio_text(value: float, limits: Sequence[float | None] = ()) -> str:
    """ECW/TBW with 3 decimals, or more where 3 would put it on the other side of a limit.

    Bands are "≤ limit" (and "below normal" under a lower limit): 0.4503 is above 0.450,
    so it is written 0.4503, never "0.450" next to "edema" under a band that says
    "slightly over ≤ 0.450". The written value is on the same side of every limit, and
    equal to one only when it is.
    """
    for d in range(3, 10):
        shown = round(value, d)
        if all(
            (shown <= lim) == (value <= lim) and (shown < lim) == (value < lim)
            for lim in limits
            if lim is not None
        ):
            return f"{value:.{d}f}"
    return repr(value)


def _nice_step(span: float, target: int) -> float:
    raw = span / max(target, 1)
    mag = 10 ** math.floor(math.log10(raw))
    return float(next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw))


@dataclass(frozen=True)
class Frame:
    """The plot area of a chart and the value and time ranges it shows."""

    left: float
    top: float
    width: float
    height: float
    lo: float
    hi: float
    t0: float
    t1: float

    def x(self, t: float) -> float:
        return self.left + (t - self.t0) / (self.t1 - self.t0) * self.width

    def y(self, v: float) -> float:
        return (
            self.top + (self.hi - min(max(v, self.lo), self.hi)) / (self.hi - self.lo) * self.height
        )


def _value_axis(f: Frame, step: float) -> list[str]:
    """Grid lines and labels on multiples of ``step``, with the decimals the step needs."""
    digits = decimals(step)
    out = []
    for i in range(round((f.hi - f.lo) / step) + 1):
        v = f.lo + i * step
        yy = f.y(v)
        out.append(
            f'<line x1="{f.left}" x2="{f.left + f.width}" y1="{_f(yy)}" y2="{_f(yy)}" '
            'stroke="#ccc" stroke-width="0.5"/>'
        )
        out.append(
            f'<text x="{f.left - 6}" y="{_f(yy + 4)}" text-anchor="end">{v:.{digits}f}</text>'
        )
    return out


def _time_axis(f: Frame) -> list[str]:
    """Date ticks at whole UTC days, a round number of days apart."""
    tick_days = max(1, round(_nice_step((f.t1 - f.t0) / 86400, 5)))
    out = []
    t = float(math.ceil(f.t0 / 86400) * 86400)
    bottom = f.top + f.height
    while t <= f.t1:
        xx = f.x(t)
        out.append(
            f'<line x1="{_f(xx)}" x2="{_f(xx)}" y1="{bottom}" y2="{bottom + 4}" stroke="#333"/>'
        )
        out.append(f'<text x="{_f(xx)}" y="{bottom + 16}" text-anchor="middle">{_date(t)}</text>')
        t += tick_days * 86400
    return out


def _bands(f: Frame, normal_max: float | None, slight_max: float | None) -> list[str]:
    """The method's bands shaded in the plot, each labelled in the margin right of it.

    Labels sit outside the plot so no data line is ever drawn over them; each is at its
    band's middle, moved apart where bands are too thin for a line of text each.
    """
    bands: list[tuple[str, float, float, str]] = []  # none without a band (issue 12)
    if normal_max is not None:
        top = slight_max if slight_max is not None else normal_max
        bands.append(("normal", f.lo, normal_max, f"normal ≤ {limit_text(normal_max)}"))
        if slight_max is not None:
            bands.append(
                (
                    "slightly over",
                    normal_max,
                    slight_max,
                    f"slightly over ≤ {limit_text(slight_max)}",
                )
            )
        bands.append(("edema", top, f.hi, f"edema > {limit_text(top)}"))
    out, labels = [], []
    for name, a, b, label in bands:
        if b <= f.lo or a >= f.hi:
            continue
        ya, yb = f.y(max(a, f.lo)), f.y(min(b, f.hi))
        out.append(
            f'<rect class="band band-{name.replace(" ", "-")}" x="{f.left}" y="{_f(yb)}" '
            f'width="{f.width}" height="{_f(ya - yb)}" fill="{BAND_FILL[name]}"/>'
        )
        labels.append(((ya + yb) / 2 + 4, name, label))
    labels.sort()  # top to bottom; then push apart, 13 px a line
    ys = [y for y, _, _ in labels]
    for i in range(1, len(ys)):
        ys[i] = max(ys[i], ys[i - 1] + 13)
    for y, (_, name, label) in zip(ys, labels, strict=True):
        out.append(
            f'<text class="band-label" x="{f.left + f.width + 8}" y="{_f(y)}" '
            f'fill="{CLASS_COLOURS[name][0]}">{escape(label)}</text>'
        )
    return out


def _series(f: Frame, s: Series) -> list[str]:
    """One series: its line and a point per value, each point titled with date and value."""
    pts = [(t, v) for t, v in s.points if math.isfinite(v)]
    if not pts:
        return []
    path = " ".join(f"{_f(f.x(t))},{_f(f.y(v))}" for t, v in pts)
    dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
    out = [
        f'<polyline class="series" points="{path}" fill="none" stroke="{s.colour}" '
        f'stroke-width="{s.width}"{dash}/>'
    ]
    for t, v in pts:
        out.append(
            f'<circle cx="{_f(f.x(t))}" cy="{_f(f.y(v))}" r="3" fill="{s.colour}">'
            f"<title>{escape(s.label)} {_date(t)}: {v:.3f}</title></circle>"
        )
    return out


def _legend(series: Sequence[Series], left: float, y: float) -> list[str]:
    """A row of line samples with their labels, under the chart."""
    out, x = [], left
    for s in series:
        if not any(math.isfinite(v) for _, v in s.points):
            continue
        dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
        out.append(
            f'<line x1="{_f(x)}" x2="{_f(x + 22)}" y1="{_f(y)}" y2="{_f(y)}" '
            f'stroke="{s.colour}" stroke-width="{s.width}"{dash}/>'
        )
        out.append(f'<text x="{_f(x + 28)}" y="{_f(y + 4)}">{escape(s.label)}</text>')
        x += 28 + 7 * len(s.label) + 18
    return out


def trend_chart(
    series: Sequence[Series],
    normal_max: float | None,
    slight_max: float | None,
    *,
    width: int = 720,
    height: int = 320,
    title: str = "ECW/TBW over time",
) -> str:
    """Lines of ECW/TBW over time on the method's bands (normal, slightly over, edema)."""
    pts = [p for s in series for p in s.points if math.isfinite(p[1])]
    if not pts:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} 60" '
            f'width="{width}" height="60"><title>{escape(title)}</title>'
            '<text x="10" y="35" font-size="14">No ECW/TBW values to plot.</text></svg>'
        )
    left, right, top, bottom = 52, 130, 16, 62
    values = [v for _, v in pts]
    top_band = slight_max if slight_max is not None else normal_max
    lo = min([*values, *([normal_max - 0.03] if normal_max is not None else [])])
    hi = max([*values, *([top_band + 0.02] if top_band is not None else [])])
    if hi - lo < 0.02:
        lo, hi = lo - 0.01, hi + 0.01
    step = _nice_step(hi - lo, 6)
    lo, hi = math.floor(lo / step) * step, math.ceil(hi / step) * step
    t0, t1 = min(t for t, _ in pts), max(t for t, _ in pts)
    if t1 - t0 < 86400:
        t0, t1 = t0 - 86400, t1 + 86400
    pad = (t1 - t0) * 0.04
    f = Frame(left, top, width - left - right, height - top - bottom, lo, hi, t0 - pad, t1 + pad)
    mid = top + f.height / 2
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" font-family="sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
        *_bands(f, normal_max, slight_max),
        *_value_axis(f, step),
        *_time_axis(f),
        f'<rect x="{left}" y="{top}" width="{f.width}" height="{f.height}" fill="none" '
        'stroke="#333"/>',
        f'<text x="14" y="{mid}" transform="rotate(-90 14 {mid})" text-anchor="middle">'
        "ECW/TBW</text>",
        f'<text x="{left + f.width / 2}" y="{top + f.height + 32}" text-anchor="middle">'
        "date (UTC)</text>",
    ]
    for s in series:
        out += _series(f, s)
    out += _legend(series, left, height - 10)
    out.append("</svg>")
    return "\n".join(out)


# body outline, seen from the front: the patient's right is on the viewer's left
_BODY = {
    "right_arm": (92, 78, 24, 150),
    "left_arm": (244, 78, 24, 150),
    "trunk": (122, 72, 116, 150),
    "right_leg": (128, 228, 48, 170),
    "left_leg": (184, 228, 48, 170),
}
_LABEL_AT = {
    "right_arm": (84, 150, "end"),
    "left_arm": (276, 150, "start"),
    "trunk": (180, 150, "middle"),
    "right_leg": (120, 330, "end"),
    "left_leg": (240, 330, "start"),
}


def _limits(row: Mapping[str, Any]) -> list[float | None]:
    """The band limits a result row was classified by (those it carries)."""
    return [row.get(k) for k in ("ecw_tbw_normal_min", "ecw_tbw_normal_max", "ecw_tbw_slight_max")]


def body_chart(latest: Mapping[str, Mapping[str, Any]], *, title: str) -> str:
    """Segments coloured by classification with their ECW/TBW, on a body outline."""
    width, height = 360, 430
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        '<circle cx="180" cy="42" r="26" fill="#f5f5f5" stroke="#555"/>',
        '<text x="40" y="20" font-weight="bold">R</text>',
        '<text x="312" y="20" font-weight="bold">L</text>',
    ]
    for seg, (bx, by, bw, bh) in _BODY.items():
        row = latest.get(seg)
        cls = str(row["classification"]) if row else "unknown"
        stroke, fill = CLASS_COLOURS.get(cls, CLASS_COLOURS["unknown"])
        ratio = row["ecw_tbw_ratio"] if row else None
        out.append(
            f'<rect class="segment" data-segment="{seg}" x="{bx}" y="{by}" width="{bw}" '
            f'height="{bh}" rx="10" fill="{fill}" stroke="{stroke}" stroke-width="2">'
            f"<title>{seg.replace('_', ' ')}: {escape(cls)}</title></rect>"
        )
        lx, ly, anchor = _LABEL_AT[seg]
        text = ratio_text(ratio, _limits(row)) if row and isinstance(ratio, float) else "n/a"
        out.append(
            f'<text x="{lx}" y="{ly}" text-anchor="{anchor}" font-weight="bold" '
            f'fill="{stroke}">{text}</text>'
        )
        out.append(
            f'<text x="{lx}" y="{ly + 15}" text-anchor="{anchor}" fill="{stroke}">'
            f"{escape(cls)}</text>"
        )
    wb = latest.get("whole_body")
    if wb and isinstance(wb.get("ecw_tbw_ratio"), float):
        stroke = CLASS_COLOURS.get(str(wb["classification"]), CLASS_COLOURS["unknown"])[0]
        out.append(
            f'<text x="180" y="{height - 8}" text-anchor="middle" fill="{stroke}">'
            f"Whole body {ratio_text(wb['ecw_tbw_ratio'], _limits(wb))} "
            f"({escape(str(wb['classification']))})</text>"
        )
    out.append("</svg>")
    return "\n".join(out)
