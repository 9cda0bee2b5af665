"""Edema reports: a real subject history, rendered and loaded in headless Chromium."""

from __future__ import annotations

import itertools
import re
import stat
from pathlib import Path
from typing import Any

import pytest
from browser import check_page, print_pdf, screenshot
from conftest import run_cli
from readers import RECOVERY_DAYS, RECOVERY_ID, SITE_BANDS

from bia_acq.core.estimate import METHODS
from bia_acq.report.svg import BAND_FILL

NORMAL_MAX = SITE_BANDS["hanai-bis"].normal_max  # issue 12: the clinic's own bands


@pytest.fixture(scope="module")
def recovery_report(clinic_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "recovery.html"
    proc = run_cli("report", "--db", str(clinic_db), "--subject", RECOVERY_ID, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert RECOVERY_ID.encode() not in proc.stdout + proc.stderr  # the ID is never logged
    return out


def test_report_shows_the_leg_falling_back_into_the_normal_band(recovery_report: Path) -> None:
    html = recovery_report.read_text(encoding="utf-8")
    assert stat.S_IMODE(recovery_report.stat().st_mode) == 0o600
    assert RECOVERY_ID in html  # a clinic document names its patient
    # the right leg's points on the trend chart, oldest first
    leg = [
        float(v) for v in re.findall(r"<title>Right leg \d{4}-\d\d-\d\d: ([0-9.]+)</title>", html)
    ]
    assert len(leg) == len(RECOVERY_DAYS)
    assert leg[0] > NORMAL_MAX >= leg[-1]
    assert 'class="band band-normal"' in html and f"normal ≤ {NORMAL_MAX:.3f}" in html
    # latest-visit table and body outline say normal for the right leg
    row = re.search(r"<tr><td class=\"l\">Right leg</td>.*?</tr>", html)
    assert row and ">normal<" in row.group(0)
    assert 'data-segment="right_leg"' in html and "Right − left" in html
    version = METHODS["hanai-bis"].version
    assert f"hanai-bis v{version}" in html and "@media print" in html and "size: A4" in html


def test_report_is_self_contained(recovery_report: Path) -> None:
    html = recovery_report.read_text(encoding="utf-8")
    assert "<script" not in html.lower()
    assert "default-src 'none'" in html
    urls = set(re.findall(r"(?:https?:)?//[^\s\"'<>)]+", html))
    assert urls <= {"http://www.w3.org/2000/svg"}, urls  # an XML namespace, never fetched
    assert not re.search(r"\b(?:src|href)=\"(?!data:|index\.html|#)", html)


def test_report_loads_without_errors_and_renders_in_chromium(
    recovery_report: Path, tmp_path: Path
) -> None:
    from PIL import Image, ImageStat

    assert check_page(recovery_report) == []
    png = screenshot(recovery_report, tmp_path / "report.png")
    image = Image.open(png).convert("RGB")
    assert ImageStat.Stat(image.convert("L")).stddev[0] > 10  # not blank
    colours = dict((c, n) for n, c in image.getcolors(1 << 20) or [])
    green = tuple(int(BAND_FILL["normal"][i : i + 2], 16) for i in (1, 3, 5))
    assert colours.get(green, 0) > 5000  # the chart's normal band is drawn
    pdf = print_pdf(recovery_report, tmp_path / "report.pdf")
    pages = [int(n) for n in re.findall(rb"/Count (\d+)", pdf)]
    assert pdf.startswith(b"%PDF") and pages and max(pages) <= 3
    boxes = re.findall(rb"/MediaBox \[0 0 ([0-9.]+) ([0-9.]+)\]", pdf)
    assert boxes and all(  # A4: 210 x 297 mm = 595 x 842 points
        abs(float(w) - 595.3) < 1 and abs(float(h) - 841.9) < 1 for w, h in boxes
    )


def test_the_browser_check_catches_what_it_should(recovery_report: Path, tmp_path: Path) -> None:
    from PIL import Image, ImageStat

    bad = tmp_path / "bad.html"
    html = recovery_report.read_text(encoding="utf-8")
    bad.write_text(html.replace("<h1>", '<img src="https://example.invalid/x.png"><h1>', 1))
    assert any("example.invalid" in e for e in check_page(bad))
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><head></head><body></body></html>")
    assert check_page(blank) == []
    image = Image.open(screenshot(blank, tmp_path / "blank.png")).convert("L")
    assert ImageStat.Stat(image).stddev[0] < 1


def test_all_writes_one_page_per_subject_and_an_index(clinic_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    proc = run_cli("report", "--db", str(clinic_db), "--all", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    index = (out / "index.html").read_text(encoding="utf-8")
    links = re.findall(r'href="([^"]+\.html)"', index)
    assert len(links) == 4 and all((out / link).exists() for link in links)
    assert sorted(p.name for p in out.iterdir()) == sorted([*links, "index.html"])
    assert all(RECOVERY_ID not in name for name in links)  # file names are pseudonyms
    assert check_page(out / "index.html") == []


def test_report_mistakes_are_one_line_and_never_echo_the_id(
    clinic_db: Path, tmp_path: Path
) -> None:
    proc = run_cli("report", "--db", str(clinic_db), "--subject", "9999999999999999")
    assert proc.returncode == 2 and b"9999999999999999" not in proc.stderr
    assert proc.stderr.count(b"\n") == 1 and b"no subject" in proc.stderr
    proc = run_cli("report", "--db", str(clinic_db), "--all")
    assert proc.returncode == 2 and b"--out" in proc.stderr
    proc = run_cli("report", "--db", str(tmp_path / "none.db"), "--all", "--out", str(tmp_path))
    assert proc.returncode == 1 and b"does not exist" in proc.stderr


def test_text_from_the_device_is_escaped(clinic_db: Path) -> None:
    from bia_acq.report.data import find_subject, load_subject
    from bia_acq.report.html import render_subject
    from bia_acq.store.db import open_readonly

    conn = open_readonly(clinic_db)
    data = load_subject(conn, find_subject(conn, RECOVERY_ID))
    conn.close()
    data.external_id = '<script>alert("x")</script>&'
    html = render_subject(data, generated_utc="2026-11-24T00:00:00Z")
    assert (
        "<script" not in html and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in html
    )


def test_a_database_without_reader_views_is_refused_with_what_to_do(tmp_path: Path) -> None:
    import sqlite3

    old = tmp_path / "old.db"
    sqlite3.connect(old).execute(
        "CREATE TABLE measurement (id INTEGER PRIMARY KEY)"
    ).connection.close()
    for args in (["report", "--all", "--out", str(tmp_path / "r")], ["export", "--format", "csv"]):
        proc = run_cli(*args, "--db", str(old))
        assert (
            proc.returncode == 1
            and b"no reader views" in proc.stderr
            and b"bia-acq run" in proc.stderr
        )
        assert b"Traceback" not in proc.stderr


def test_ratios_are_written_with_the_digits_their_band_needs() -> None:
    from bia_acq.report.svg import decimals, limit_text, ratio_text

    limits = [0.44, 0.45]
    assert ratio_text(0.4312, limits) == "0.431"
    assert ratio_text(0.4503, limits) == "0.4503"  # edema, never "0.450" under "≤ 0.450"
    assert ratio_text(0.44996, limits) == "0.44996"  # not on the limit unless it is
    assert ratio_text(0.43996, limits) == "0.43996"  # normal: not "0.440" nor "0.4400"
    assert ratio_text(0.35996, [0.36, 0.39, 0.40]) == "0.35996"  # below a lower limit
    assert (limit_text(0.45), limit_text(0.4525)) == ("0.450", "0.4525")
    assert (decimals(0.02), decimals(0.005), decimals(0.025), decimals(5.0)) == (2, 3, 3, 0)


@pytest.mark.parametrize("values", [(0.426, 0.431), (0.40, 0.49), (0.3, 0.6), (0.4401, 0.4405)])
def test_trend_ticks_say_their_own_value_and_band_labels_stay_off_the_data(
    values: tuple[float, float],
) -> None:
    from bia_acq.report.svg import Series, trend_chart

    day = 86400.0
    series = [Series("Whole body", "#000", [(i * 7 * day, v) for i, v in enumerate(values)])]
    svg = trend_chart(series, 0.44, 0.45)
    ticks = re.findall(r'<text x="46" y="([0-9.]+)" text-anchor="end">([0-9.]+)</text>', svg)
    labels = [t for _, t in ticks]
    assert len(ticks) >= 3 and len(set(labels)) == len(labels), labels
    steps = {round(float(b) - float(a), 9) for a, b in itertools.pairwise(labels)}
    assert len(steps) == 1, labels  # evenly spaced values, none rounded onto another
    plot = re.search(r'<rect x="52" y="16" width="([0-9.]+)"', svg)
    assert plot is not None
    right_edge = 52 + float(plot.group(1))
    xs = [
        float(x)
        for pts in re.findall(r'points="([^"]+)"', svg)
        for x in re.findall(r"([0-9.]+),", pts)
    ]
    for x in re.findall(r'<text class="band-label" x="([0-9.]+)"', svg):
        assert float(x) > right_edge >= max(xs)


def test_every_table_column_has_a_header(recovery_report: Path) -> None:
    html = recovery_report.read_text(encoding="utf-8")
    headers = re.findall(r"<th[^>]*>(.*?)</th>", html)
    assert headers and all(h.strip() for h in headers), headers


def _report_png_script() -> Any:
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "docs" / "report_png.py"
    spec = importlib.util.spec_from_file_location("report_png", path)
    assert spec and spec.loader
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_docs_report_png_shows_the_page_its_documented_command_writes(tmp_path: Path) -> None:
    """The page docs/report_png.py photographs is the one docs/report.png was taken of
    (its fingerprint is in the PNG): no browser needed, so a stale picture fails anywhere."""
    script = _report_png_script()
    shipped = (script.DOCS / "report.png").read_bytes()
    page = script.page(tmp_path).read_text(encoding="utf-8")
    assert script.png_text(shipped)[script.FINGERPRINT] == script.fingerprint(page), (
        "docs/report.png is stale: run docs/report_png.py"
    )


def test_docs_report_png_is_what_its_documented_command_produces(tmp_path: Path) -> None:
    from browser import chromium
    from PIL import Image

    chromium()  # skips without a browser (CI requires one)
    script = _report_png_script()
    made = Image.open(script.main(tmp_path / "report.png")).convert("RGB")
    shipped = Image.open(script.DOCS / "report.png").convert("RGB")
    assert made.size == shipped.size
    assert made.tobytes() == shipped.tobytes(), "docs/report.png is stale: run docs/report_png.py"
