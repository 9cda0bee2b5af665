"""Regenerate docs/report.png: one simulated patient's edema report, in headless Chromium.

    .venv/bin/python docs/report_png.py            # writes docs/report.png
    .venv/bin/python docs/report_png.py OUT.png    # writes OUT.png

The patient comes from the shipped scenario ``leg-injury-resolving`` with ``--seed 1``:
exactly what ``bia-acq simulate --scenario leg-injury-resolving --seed 1`` sends (the
simulator's own population and codec), for 12 subjects × 6 weekly visits. Two things are
pinned so that the image is the same on every run: the analyzer clock (the last visit on
2026-11-02 09:30; the simulator puts it today) and the database's pseudonym key (a new
database draws a random one). The frames are stored by ``bia-acq import``, the page
written by ``bia-acq report`` and photographed by Chromium (``apt-get install -y
chromium``) at 900 × 1180 pixels: the top of the page, the generation time below it.
The PNG carries the SHA-256 of the page it shows (footer left out) in a tEXt chunk, so a
test can tell, without a browser, whether the picture still shows what the code writes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

SCENARIO = "leg-injury-resolving"
SEED = 1
SUBJECT = "1138000000000001"  # the first subject of SEED
MEASUREMENTS = 12 * 6  # the scenario's subjects × visits
LAST_VISIT = dt.datetime(2026, 11, 2, 9, 30)
PSEUDONYM_KEY = hashlib.sha256(b"bia-acq docs/report.png").hexdigest()
SIZE = "900,1180"
#: the PNG's tEXt keyword holding the fingerprint of the page it shows
FINGERPRINT = "bia-acq-report-sha256"
DOCS = Path(__file__).resolve().parent


def capture(path: Path) -> None:
    """The bytes the simulated analyzer sends, every visit, with the clock pinned."""
    from bia_acq.drivers import get_profile
    from bia_acq.simulator.device import VirtualAnalyzer

    sim = VirtualAnalyzer(get_profile("tanita-mc780"), seed=SEED, scenario=SCENARIO)
    frames = []
    for _ in range(MEASUREMENTS):
        reading, _truth = sim.population.next_measurement(LAST_VISIT)
        frames.append(sim.codec.encode(reading))
    path.write_bytes(b"".join(frames))


def bia_acq(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "bia_acq", *args], check=True, stdout=subprocess.DEVNULL)


def page(work: Path) -> Path:
    """The report page the picture shows, written into ``work``."""
    from bia_acq.store.db import open_writer

    db = open_writer(work / "report.db")  # a database with the pinned pseudonym key
    db.execute("UPDATE meta SET value = ? WHERE key = 'pseudonym_key'", [PSEUDONYM_KEY])
    db.conn.commit()
    db.close()
    capture(work / "capture.bin")
    bia_acq(
        "import",
        "--driver",
        "tanita-mc780",
        "--db",
        str(work / "report.db"),
        str(work / "capture.bin"),
    )
    out = work / "report.html"
    bia_acq("report", "--db", str(work / "report.db"), "--subject", SUBJECT, "--out", str(out))
    return out


def fingerprint(html: str) -> str:
    """SHA-256 of the page without its footer (the generation time and version)."""
    body = re.sub(r"<footer>.*?</footer>", "", html, flags=re.S)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def png_text(png: bytes) -> dict[str, str]:
    """The tEXt chunks of a PNG, keyword → text."""
    out, pos = {}, 8
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        if kind == b"tEXt":
            key, _, text = data.partition(b"\0")
            out[key.decode("latin-1")] = text.decode("latin-1")
        pos += 12 + length
    return out


def with_text(png: bytes, key: str, text: str) -> bytes:
    """``png`` with a tEXt chunk ``key`` = ``text`` after its header chunk (pixels unchanged)."""
    data = key.encode("latin-1") + b"\0" + text.encode("latin-1")
    chunk = struct.pack(">I", len(data)) + b"tEXt" + data
    chunk += struct.pack(">I", zlib.crc32(b"tEXt" + data))
    end_of_header = 8 + 12 + struct.unpack(">I", png[8:12])[0]
    return png[:end_of_header] + chunk + png[end_of_header:]


def main(out: Path) -> Path:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("report_png: chromium is not installed (apt-get install -y chromium)")
    with tempfile.TemporaryDirectory(prefix="bia-acq-report-png-") as tmp:
        work = Path(tmp)
        html = page(work)
        shot = work / "report.png"
        subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                f"--user-data-dir={work / 'chromium'}",
                f"--window-size={SIZE}",
                f"--screenshot={shot}",
                html.as_uri(),
            ],
            check=True,
            capture_output=True,
        )
        key = fingerprint(html.read_text(encoding="utf-8"))
        out.write_bytes(with_text(shot.read_bytes(), FINGERPRINT, key))
    return out


if __name__ == "__main__":
    print(main(Path(sys.argv[1]) if len(sys.argv) > 1 else DOCS / "report.png"))
