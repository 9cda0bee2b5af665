"""`check-config` checks what `run` needs, and says no where `run` would fail at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_cli

PORT = "ports:\n  - {name: ward, url: /dev/ttyNOPE-bia, driver: tanita-mc780}\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_a_directory_given_as_the_file_is_called_a_directory(tmp_path: Path) -> None:
    proc = run_cli("check-config", str(tmp_path))
    assert proc.returncode == 2
    assert (
        proc.stderr.decode()
        == f"bia-acq: error: {tmp_path}: configuration file is a directory (name a YAML file)\n"
    )


def test_ready_config_says_run_can_start_and_reports_an_absent_port(tmp_path: Path) -> None:
    proc = run_cli("check-config", str(write(tmp_path, "database: a.db\n" + PORT)))
    out = proc.stdout.decode()
    assert proc.returncode == 0, out
    assert f"database {tmp_path / 'a.db'}: writable" in out
    assert "port ward: /dev/ttyNOPE-bia, driver tanita-mc780 (9600 8N1" in out
    assert "absent now (run waits for it)" in out
    assert out.splitlines()[-1].endswith("c.yaml: run can start")


@pytest.mark.parametrize(
    ("database", "ports", "check_says", "run_status", "run_says"),
    [
        ("sub", PORT, "is a directory", 2, "database: {tmp}/sub is a directory"),
        ("missing/a.db", PORT, "folder {tmp}/missing does not exist", 1, "cannot be written"),
        ("a.db", "", "no ports or folders configured", 2, "nothing to acquire"),
    ],
)
def test_where_run_fails_check_config_fails_too(
    tmp_path: Path, database: str, ports: str, check_says: str, run_status: int, run_says: str
) -> None:
    (tmp_path / "sub").mkdir()
    path = write(tmp_path, f"database: {database}\n{ports}")
    check = run_cli("check-config", str(path))
    assert check.returncode == 1
    assert "PROBLEM: " in check.stdout.decode()
    assert check_says.format(tmp=tmp_path) in check.stdout.decode()
    run = run_cli("run", "--config", str(path), "--duration", "5")
    err = run.stderr.decode()
    assert run.returncode == run_status, err
    assert err.count("\n") == 1 and run_says.format(tmp=tmp_path) in err
