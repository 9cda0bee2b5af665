"""Folder sources: LookinBody exports ingested by a real `bia-acq run`, once, across restarts."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest
from conftest import run_cli

from bia_acq.config import load_config
from bia_acq.errors import ConfigError

DATA = Path(__file__).parent / "data"
EXPORT = (DATA / "lookinbody-export.csv").read_bytes()
HEADER, ROW1, ROW2 = (line + b"\n" for line in EXPORT.split(b"\n")[:3])


def _config(tmp_path: Path, folder: Path) -> Path:
    cfg = tmp_path / "bia-acq.yaml"
    cfg.write_text(
        "database: acq.db\n"
        "folders:\n"
        f"  - {{path: {folder}, driver: inbody-lookinbody-csv, poll_seconds: 0.2, name: inbody}}\n"
    )
    return cfg


def _counts(db_path: Path) -> tuple[int, list[tuple[str, str, int]]]:
    db = sqlite3.connect(db_path)
    try:
        n = db.execute("SELECT count(*) FROM measurement").fetchone()[0]
        kinds = db.execute(
            "SELECT kind, status, count(*) FROM raw_frame GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()
        return n, kinds
    finally:
        db.close()


def test_exports_are_ingested_once_across_restarts_and_never_touched(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    export = folder / "inbody-2026-11.csv"
    export.write_bytes(HEADER + ROW1)
    (folder / "notes.txt").write_text("not an export")  # not matching *.csv: ignored
    cfg = _config(tmp_path, folder)

    first = run_cli("run", "--config", str(cfg), "--count", "1", timeout=60)
    assert first.returncode == 0, first.stderr.decode()
    assert "port=inbody" in first.stdout.decode()

    # the clinic's software appends a row and a damaged one; the service restarts
    bad = ROW2.replace(b",F,", b",?,")
    with export.open("ab") as fh:
        fh.write(ROW2 + bad)
    second = run_cli("run", "--config", str(cfg), "--count", "1", timeout=60)
    assert second.returncode == 0, second.stderr.decode()

    # a third start with nothing new stores nothing and journals nothing
    third = run_cli("run", "--config", str(cfg), "--duration", "1.5", timeout=60)
    assert third.returncode == 0 and third.stdout == b""
    n, kinds = _counts(tmp_path / "acq.db")
    assert n == 2
    # the header line journaled once for the file, each row a frame
    assert kinds == [("frame", "decoded", 2), ("frame", "rejected", 1), ("junk", "discarded", 1)]
    assert export.read_bytes() == HEADER + ROW1 + ROW2 + bad  # never changed
    assert sorted(p.name for p in folder.iterdir()) == ["inbody-2026-11.csv", "notes.txt"]

    db = sqlite3.connect(tmp_path / "acq.db")
    (offset,) = db.execute("SELECT offset_bytes FROM source_file").fetchone()
    assert offset == len(export.read_bytes())
    ids = [r[0] for r in db.execute("SELECT external_id FROM subject ORDER BY id")]
    assert ids == ["0000000042", "0000000043"]
    segs = db.execute(
        "SELECT count(*), sum(magnitude_only) FROM impedance i JOIN measurement m"
        " ON m.id = i.measurement_id WHERE m.id = 1"
    ).fetchone()
    assert segs == (30, 15)  # 5 segments x 6 frequencies; |Z| only at 1, 500, 1000 kHz
    trunk_grade, trunk_r0 = db.execute(
        "SELECT fit_grade, r0_ohm FROM segment_result WHERE measurement_id = 1"
        " AND segment = 'trunk' AND method = 'hanai-bis'"
    ).fetchone()
    # InBody's own trunk impedance goes through the core (three complex points: a value
    # with its interval, not applicable for a label: issue 12)
    assert trunk_grade in ("good", "fair") and trunk_r0 is not None
    (reason,) = db.execute("SELECT reason FROM raw_frame WHERE status = 'rejected'").fetchone()
    assert "unknown sex" in reason
    db.close()


def test_a_replaced_export_is_reread_but_nothing_is_stored_twice(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    export = folder / "all.csv"
    export.write_bytes(HEADER + ROW1)
    cfg = _config(tmp_path, folder)
    assert run_cli("run", "--config", str(cfg), "--count", "1").returncode == 0
    # LookinBody writes a new file with every row again (new inode, same path)
    tmp = folder / "all.csv.new"
    tmp.write_bytes(HEADER + ROW1 + ROW2)
    os.replace(tmp, export)
    proc = run_cli("run", "--config", str(cfg), "--count", "1")
    assert proc.returncode == 0, proc.stderr.decode()
    n, kinds = _counts(tmp_path / "acq.db")
    assert n == 2
    # each file's header journaled once (the replaced file is a new file)
    assert kinds == [("frame", "decoded", 2), ("frame", "duplicate", 1), ("junk", "discarded", 2)]


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("{path: x, driver: nope}", "folders[0].driver: unknown driver 'nope'"),
        ("{driver: inbody-lookinbody-csv}", "folders[0]: missing 'path'"),
        ("{path: x, driver: inbody-lookinbody-csv, poll_seconds: 0}", "folders[0].poll_seconds"),
        ("{path: x, driver: inbody-lookinbody-csv, pol_seconds: 1}", "did you mean 'poll_seconds'"),
        ("{path: cfg.yaml, driver: inbody-lookinbody-csv}", "is not a folder"),
        ("{path: x, driver: inbody-lookinbody-csv, pattern: a/b}", "folders[0].pattern"),
    ],
)
def test_folder_config_mistakes_are_one_line(tmp_path: Path, item: str, message: str) -> None:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"folders:\n  - {item}\n")
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    text = str(info.value)
    assert message in text and "\n" not in text and f"{cfg}:2" in text


def test_folder_and_port_names_must_differ(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        "ports:\n  - {url: /dev/ttyUSB0, driver: tanita-mc780, name: a}\n"
        "folders:\n  - {path: x, driver: inbody-lookinbody-csv, name: a}\n"
    )
    with pytest.raises(ConfigError, match="used twice"):
        load_config(cfg)


def test_a_last_row_without_line_end_waits_one_quiet_poll(tmp_path: Path) -> None:
    import queue
    import threading

    from bia_acq.config import FolderConfig
    from bia_acq.drivers import get_profile
    from bia_acq.folder import FolderReader

    profile = get_profile("inbody-lookinbody-csv")
    out: queue.Queue = queue.Queue()
    reader = FolderReader(
        FolderConfig("f", tmp_path, profile.name, profile, 0.1), out, threading.Event()
    )
    export = tmp_path / "a.csv"
    export.write_bytes(HEADER + ROW1.rstrip(b"\r\n"))
    reader.scan()
    assert out.empty()  # the exporting program may still be writing: not quiet yet
    time.sleep(0.15)  # quiet for settle_seconds (default: one poll interval)
    reader.scan()
    head = out.get_nowait()  # the header line is whole: journaled once, at once
    assert [c.kind for c in head.chunks] == ["junk"] and head.chunks[0].data == HEADER
    batch = out.get_nowait()  # the last line, quiet: taken without its line end
    assert [c.kind for c in batch.chunks] == ["frame"]
    assert batch.cursor.offset_bytes == export.stat().st_size
    reader.scan()
    assert out.empty()  # nothing twice
    with export.open("ab") as fh:
        fh.write(b"\r\n" + ROW2)
    reader.scan()
    assert out.empty()  # changed since the last poll: not quiet yet
    time.sleep(0.15)
    reader.scan()
    batch = out.get_nowait()
    assert [c.kind for c in batch.chunks] == ["junk", "frame"]  # the line end, then row 2
    assert batch.cursor.offset_bytes == export.stat().st_size


def test_a_lookinbody_xlsx_export_is_read_and_its_rewrite_adds_only_new_rows(
    tmp_path: Path,
) -> None:
    """LookinBody 120 exports Excel workbooks (issue 13): the folder source reads them as
    ``import`` does, and a workbook the software rewrites with more rows adds only those."""
    pytest.importorskip("openpyxl")
    from bia_acq.drivers import get_profile
    from bia_acq.simulator.device import write_capture

    profile = get_profile("inbody120-lookinbody")
    readings = write_capture(profile, tmp_path / "all.xlsx", 5, seed=3)
    folder = tmp_path / "export"
    folder.mkdir()
    export = folder / "InBodyExcelData.xlsx"
    codec = profile.codec()
    codec.write_workbook(readings[:3], export)  # type: ignore[attr-defined]
    (folder / "broken.xlsx").write_bytes(b"PK\x03\x04 not a whole workbook")
    cfg = tmp_path / "bia-acq.yaml"
    cfg.write_text(
        "database: acq.db\nfolders:\n"
        f"  - {{path: {folder}, driver: inbody120-lookinbody, poll_seconds: 0.2, name: inbody,"
        ' pattern: "*.xlsx"}\n'
    )
    first = run_cli("run", "--config", str(cfg), "--count", "3", timeout=60)
    assert first.returncode == 0, first.stderr.decode()
    assert "a workbook is not read: not a readable Excel workbook" in first.stderr.decode()
    assert "broken" not in first.stderr.decode()  # no file name: it may carry an ID
    before = export.read_bytes()
    time.sleep(0.01)
    codec.write_workbook(readings, export)  # type: ignore[attr-defined]
    second = run_cli("run", "--config", str(cfg), "--count", "2", timeout=60)
    assert second.returncode == 0, second.stderr.decode()
    n, kinds = _counts(tmp_path / "acq.db")
    assert n == 5
    assert kinds == [("frame", "decoded", 5), ("junk", "discarded", 1)]  # the header once
    db = sqlite3.connect(tmp_path / "acq.db")
    ids = [r[0] for r in db.execute("SELECT external_id FROM subject ORDER BY id")]
    db.close()
    assert ids == [r.subject_id for r in readings]
    assert before != export.read_bytes()  # rewritten by "the software", never by us
