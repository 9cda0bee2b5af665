"""A file nobody can read says so: `decode` and `import` exit non-zero with one line, and
`--driver auto` finds the profile that reads a file (real processes, real files)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from conftest import run_cli

REAL = Path(__file__).parent / "data" / "real"
SITE = REAL / "site-profiles"


def one_line(stderr: bytes) -> str:
    lines = stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0], stderr.decode()
    return lines[0]


def test_decode_with_the_wrong_driver_says_what_it_expected_saw_and_what_reads_it() -> None:
    r = run_cli("decode", "--driver", "tanita-mc780", str(REAL / "charder-ma801-record.jsonl"))
    assert r.returncode == 1 and r.stdout == b""
    line = one_line(r.stderr)
    assert "no tanita-mc780 frame in 2879 bytes" in line
    assert "expects Tanita frames" in line
    assert 'it starts \'{"AC": 66.4' in line
    assert "profile charder-ma801 decodes it (--driver charder-ma801)" in line


@pytest.mark.parametrize(
    ("name", "profile"),
    [
        ("tanita-mc780-pc-mode.txt", "tanita-mc780"),
        ("tanita-bc601-sd-card.txt", "tanita-bc601"),
        ("charder-ma801-record.jsonl", "charder-ma801"),
    ],
)
def test_driver_auto_picks_the_profile_of_the_model_the_file_names(name: str, profile: str) -> None:
    r = run_cli("decode", "--driver", "auto", str(REAL / name))
    assert r.returncode == 0, r.stderr.decode()
    auto, summary = r.stderr.decode().strip().splitlines()  # which profile, then the tally
    assert auto.endswith(f"is {profile}") and "0 rejected" in summary
    assert r.stdout.count(b'"model"') >= 1


def test_import_refuses_an_export_without_subject_and_time_columns_storing_nothing(
    tmp_path: Path,
) -> None:
    db = tmp_path / "clinic.db"
    export = REAL / "inbody270-lookinbody-site-export.csv"
    r = run_cli("import", "--driver", "inbody-lookinbody-csv", "--db", str(db), str(export))
    assert r.returncode != 0
    line = one_line(r.stderr)
    assert "the subject (ID)" in line and "the test time" in line and "`columns:`" in line
    assert not db.exists()  # nothing half-stored: not even an empty database
    # the site's own column names mapped in a site copy of the profile: it imports
    ok = run_cli(
        "import", "--driver", "inbody270-site", "--drivers-dir", str(SITE), "--db", str(db),
        str(export),
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr.decode()
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM measurement").fetchone() == (1,)
    conn.close()


def test_import_of_bytes_no_profile_reads_is_refused_in_one_line(tmp_path: Path) -> None:
    noise = tmp_path / "noise.bin"
    noise.write_bytes(bytes(range(256)) * 4)
    r = run_cli("import", "--driver", "tanita-bc601", "--db", str(tmp_path / "x.db"), str(noise))
    assert r.returncode == 1
    line = one_line(r.stderr)
    assert "no tanita-bc601 frame in 1024 bytes" in line and "it starts '\\x00\\x01" in line
    assert not (tmp_path / "x.db").exists()


def test_a_profile_record_is_kept_and_decode_says_what_it_is() -> None:
    r = run_cli("decode", "--driver", "tanita-bc601", str(REAL / "tanita-bc601-prof.csv"))
    assert r.returncode == 0 and b'"record": "BC-601 profile record' in r.stdout


def test_an_empty_file_and_a_damaged_workbook_are_one_line_each(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    r = run_cli("import", "--driver", "tanita-bc601", "--db", str(tmp_path / "x.db"), str(empty))
    assert r.returncode == 1 and "it is empty" in one_line(r.stderr)
    broken = tmp_path / "InBodyExcelData.xlsx"
    broken.write_bytes(b"PK\x03\x04" + bytes(200))  # a zip signature, then nothing usable
    r = run_cli("decode", "--driver", "inbody120-lookinbody", str(broken))
    assert r.returncode == 1 and "not a readable Excel workbook" in one_line(r.stderr)
    assert not (tmp_path / "x.db").exists()
