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


def _nice_step(span: float, target: int) -> float:
    raw = span / max(target, 1)
    mag = 10 ** math.floor(math.log10(raw))
    return float(next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw))


def trend_chart(
    series: Sequence[Series],
    normal_max: float | None,
    slight_max: float | None,
    *,
    width: int = 720,
    height: int = 300,
    title: str = "ECW/TBW over time",
) -> str:
    """Lines of ECW/TBW over time on the method's bands (normal, slightly over, edema)."""
    pts = [p for s in series for p in s.points if math.isfinite(p[1])]
    left, right, top, bottom = 52, 150, 16, 40
    pw, ph = width - left - right, height - top - bottom
    if not pts:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} 60" '
            f'width="{width}" height="60"><title>{escape(title)}</title>'
            '<text x="10" y="35" font-size="14">No ECW/TBW values to plot.</text></svg>'
        )
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
    t0, t1 = t0 - pad, t1 + pad

    def x(t: float) -> float:
        return left + (t - t0) / (t1 - t0) * pw

    def y(v: float) -> float:
        return top + (hi - min(max(v, lo), hi)) / (hi - lo) * ph

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" font-family="sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
    ]
    bands = []  # none without a published (or site) band: issue 12
    if normal_max is not None and top_band is not None:
        bands.append(("normal", lo, normal_max, f"normal ≤ {normal_max:.3f}"))
        if slight_max is not None:
            bands.append(
                ("slightly over", normal_max, slight_max, f"slightly over ≤ {slight_max:.3f}")
            )
        bands.append(("edema", top_band, hi, f"edema > {top_band:.3f}"))
    for name, a, b, label in bands:
        if b <= lo or a >= hi:
            continue
        ya, yb = y(max(a, lo)), y(min(b, hi))
        out.append(
            f'<rect class="band band-{name.replace(" ", "-")}" x="{left}" y="{_f(yb)}" '
            f'width="{pw}" height="{_f(ya - yb)}" fill="{BAND_FILL[name]}"/>'
        )
        out.append(
            f'<text x="{left + pw - 4}" y="{_f(yb + 12)}" text-anchor="end" '
            f'fill="{CLASS_COLOURS[name][0]}">{escape(label)}</text>'
        )
    v = lo
    while v <= hi + step / 2:
        yy = y(v)
        out.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{_f(yy)}" y2="{_f(yy)}" stroke="#ccc" '
            'stroke-width="0.5"/>'
        )
        out.append(f'<text x="{left - 6}" y="{_f(yy + 4)}" text-anchor="end">{v:.2f}</text>')
        v += step
    days = (t1 - t0) / 86400
    tick_days = max(1, round(_nice_step(days, 5)))
    first = math.ceil(t0 / 86400) * 86400
    t = float(first)
    while t <= t1:
        xx = x(t)
        out.append(
            f'<line x1="{_f(xx)}" x2="{_f(xx)}" y1="{top + ph}" y2="{top + ph + 4}" stroke="#333"/>'
        )
        out.append(f'<text x="{_f(xx)}" y="{top + ph + 16}" text-anchor="middle">{_date(t)}</text>')
        t += tick_days * 86400
    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>')
    out.append(
        f'<text x="14" y="{top + ph / 2}" transform="rotate(-90 14 {top + ph / 2})" '
        'text-anchor="middle">ECW/TBW</text>'
    )
    out.append(f'<text x="{left + pw / 2}" y="{height - 6}" text-anchor="middle">date (UTC)</text>')
    for i, s in enumerate(series):
        spts = [(x(t), y(v)) for t, v in s.points if math.isfinite(v)]
        if not spts:
            continue
        path = " ".join(f"{_f(a)},{_f(b)}" for a, b in spts)
        dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
        out.append(
            f'<polyline class="series" points="{path}" fill="none" stroke="{s.colour}" '
            f'stroke-width="{s.width}"{dash}/>'
        )
        for (a, b), (tt, vv) in zip(
            spts, [p for p in s.points if math.isfinite(p[1])], strict=True
        ):
            out.append(
                f'<circle cx="{_f(a)}" cy="{_f(b)}" r="3" fill="{s.colour}">'
                f"<title>{escape(s.label)} {_date(tt)}: {vv:.3f}</title></circle>"
            )
        ly = top + 10 + i * 16
        lx = left + pw + 12
        out.append(
            f'<line x1="{lx}" x2="{lx + 22}" y1="{ly}" y2="{ly}" stroke="{s.colour}" '
            f'stroke-width="{s.width}"{dash}/>'
        )
        out.append(f'<text x="{lx + 28}" y="{ly + 4}">{escape(s.label)}</text>')
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
        text = f"{ratio:.3f}" if isinstance(ratio, float) else "n/a"
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
            f"Whole body {wb['ecw_tbw_ratio']:.3f} ({escape(str(wb['classification']))})</text>"
        )
    out.append("</svg>")
    return "\n".join(out)
