"""Configuration mistakes give one line naming file, line, key and fix, and exit status 2."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import run_cli

from bia_acq.config import load_config

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((REPO / "config").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_shipped_example_loads(path: Path) -> None:
    config = load_config(path)
    assert config.ports and config.method


def test_example_values() -> None:
    config = load_config(REPO / "config" / "bia-acq.example.yaml")
    port = config.ports[0]
    assert (port.name, port.driver, port.timezone) == (
        "ward-3-mc780",
        "tanita-mc780",
        "Europe/Berlin",
    )
    assert port.serial.baudrate == 9600 and port.serial.parity == "N"
    assert str(config.database) == "/var/lib/bia-acq/bia-acq.db"
    # issue 12: the example sets no bands (none is published for these methods)
    assert dict(config.thresholds) == {}


def test_site_bands_are_labelled_as_the_sites(tmp_path: Path) -> None:
    cfg = tmp_path / "site.yaml"
    cfg.write_text(
        "database: x.db\nthresholds:\n"
        "  lukaski-bolonchuk: {normal_min: 0.360, normal_max: 0.390, slight_max: 0.400}\n"
    )
    lb = load_config(cfg).thresholds["lukaski-bolonchuk"]
    assert (lb.normal_min, lb.normal_max, lb.slight_max) == (0.36, 0.39, 0.40)
    assert lb.site and lb.source == "configured by this site"
    assert lb.classify([0.35, 0.38, 0.395, 0.41]).tolist() == [
        "below normal",
        "normal",
        "slightly over",
        "edema",
    ]


GOOD = """\
database: test.db
ports:
  - url: /dev/ttyUSB0
    driver: tanita-mc780
"""

CASES = {
    "unknown top key": (GOOD + "databse: x.db\n", ["line 5", "databse", "did you mean 'database'"]),
    "unknown port key": (
        GOOD + "    baud: 9600\n",
        ["line 5", "ports[0].baud", "unknown key"],
    ),
    "wrong type": (
        GOOD + "    serial: {baudrate: fast}\n",
        ["line 5", "ports[0].serial.baudrate", "expected a positive whole number", "9600"],
    ),
    "unknown driver": (
        GOOD.replace("tanita-mc780", "tanita-mc999"),
        ["line 4", "ports[0].driver", "unknown driver 'tanita-mc999'", "tanita-mc780"],
    ),
    "missing url": ("ports:\n  - driver: tanita-mc780\n", ["line 2", "ports[0]", "missing 'url'"]),
    "bad yaml": (GOOD + "  - url: [unclosed\n", ["line", "invalid YAML"]),
    "bad parity": (GOOD + "    serial: {parity: X}\n", ["ports[0].serial.parity", "N, E, O"]),
    "bad timezone": (GOOD + "    timezone: Mars/Olympus\n", ["ports[0].timezone", "IANA"]),
    "unknown method": ("method: magic\n" + GOOD, ["line 1", "method", "hanai-bis"]),
    "not a mapping": ("- just\n- a list\n", ["must be a mapping"]),
    "thresholds unknown method": (
        GOOD + "thresholds:\n  magic: {normal_max: 0.4, slight_max: 0.41}\n",
        ["thresholds.magic", "unknown method", "hanai-bis"],
    ),
    "thresholds not a ratio": (
        GOOD + "thresholds:\n  hanai-bis: {normal_max: 44, slight_max: 0.45}\n",
        ["thresholds.hanai-bis.normal_max", "between 0 and 1"],
    ),
    "thresholds out of order": (
        GOOD + "thresholds:\n  hanai-bis: {normal_max: 0.46, slight_max: 0.45}\n",
        ["line 6", "thresholds.hanai-bis", "out of order", "normal_max ≤ slight_max"],
    ),
    "thresholds unknown key": (
        GOOD + "thresholds:\n  hanai-bis: {normal_maximum: 0.46}\n",
        ["thresholds.hanai-bis.normal_maximum", "did you mean 'normal_max'"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_mistakes_give_one_line_and_status_2(tmp_path: Path, case: str) -> None:
    text, expected = CASES[case]
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    proc = run_cli("check-config", str(path))
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert str(path) in lines[0]
    for part in expected:
        if part.startswith("line "):
            assert f"{path}:{part[5:]}:" in lines[0], lines[0]
        else:
            assert part in lines[0], lines[0]


def test_missing_file(tmp_path: Path) -> None:
    proc = run_cli("check-config", str(tmp_path / "nope.yaml"))
    assert proc.returncode == 2
    assert (
        proc.stderr.decode().strip()
        == f"bia-acq: error: {tmp_path / 'nope.yaml'}: configuration file not found (check the path)"
    )


def test_run_with_a_bad_config_also_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(GOOD.replace("tanita-mc780", "nope"))
    proc = run_cli("run", "--config", str(path), "--duration", "1")
    assert proc.returncode == 2
    assert "ports[0].driver" in proc.stderr.decode() and "Traceback" not in proc.stderr.decode()


def test_world_writable_config_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(GOOD)
    os.chmod(path, 0o666)
    proc = run_cli("check-config", str(path))
    assert proc.returncode == 2 and "world-writable" in proc.stderr.decode()


def test_good_config_checks_ok(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(GOOD)
    proc = run_cli("check-config", str(path))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.decode()
    assert "ok" in out and "/dev/ttyUSB0" in out and "9600 8N1" in out
    assert str(tmp_path / "test.db") in out  # relative paths are relative to the file
