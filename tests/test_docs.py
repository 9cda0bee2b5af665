"""The README stays true: the two set-up commands, every CLI command documented."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import run_cli

from bia_acq.cli import build_parser

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()
TEST_COMMAND = (
    "python3 -m venv .venv && .venv/bin/pip install '.[test]' && .venv/bin/python -m pytest"
)
RUN_COMMAND = "python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/bia-acq run"


def test_readme_has_the_two_setup_commands_and_ci_runs_the_test_one() -> None:
    assert RUN_COMMAND in README and TEST_COMMAND in README
    assert TEST_COMMAND in (REPO / ".ci" / "run").read_text()


def test_every_cli_command_is_documented_and_has_help() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    commands = sorted(sub.choices)  # type: ignore[union-attr]
    assert commands
    for name in commands:
        assert re.search(rf"`bia-acq {re.escape(name)}\b", README), f"{name} is not in the README"
        proc = run_cli(name, "--help")
        assert proc.returncode == 0 and b"usage: bia-acq " + name.encode() in proc.stdout
