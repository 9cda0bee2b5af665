"""Registries of methods and export formats: built-ins, an installed plugin, a broken one."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLE_FRAME

from bia_acq.core.estimate import estimate, get_method
from bia_acq.core.methods import BUILTIN_METHODS, METHODS
from bia_acq.errors import ConfigError
from bia_acq.protocols.tanita import TanitaProtocol
from bia_acq.report.export import measurements
from bia_acq.report.formats import FORMATS, ExportContext, Written, get_format
from bia_acq.store.db import open_readonly, open_writer

SITE = Path(__file__).parent / "plugins" / "method_site"


@pytest.fixture
def plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(SITE))


def test_without_plugins_the_registries_hold_the_built_ins() -> None:
    assert list(METHODS) == list(BUILTIN_METHODS)
    assert FORMATS.names() == ["csv", "fhir", "hl7"]
    for name in FORMATS.names():
        assert get_format(name).name == name
    with pytest.raises(ConfigError, match=r"--format.*unknown export format 'xml'"):
        get_format("xml")


def test_a_plugin_method_runs_like_a_built_in_one(plugin: None) -> None:
    assert "example-tbw" in METHODS and list(METHODS)[: len(BUILTIN_METHODS)] == list(
        BUILTIN_METHODS
    )
    reading = TanitaProtocol().decode(EXAMPLE_FRAME)
    mine = estimate([reading], "example-tbw").rows(0)
    ref = estimate([reading], "hanai-bis").rows(0)
    assert {r["method"] for r in mine} == {"example-tbw"}
    assert [{**r, "method": "", "method_version": ""} for r in mine] == [
        {**r, "method": "", "method_version": ""} for r in ref
    ]
    assert ref[-1]["ecw_tbw_ratio"] is not None


def test_a_broken_plugin_is_named_and_left_out(plugin: None) -> None:
    names = list(METHODS)
    assert "not-a-method" not in names and "missing-module" not in names
    assert "not-a-method" not in METHODS
    with pytest.raises(ConfigError, match=r"not-a-method.*not available.*not a bia-acq method"):
        get_method("not-a-method")
    with pytest.raises(ConfigError, match=r"missing-module.*not available.*ModuleNotFoundError"):
        get_method("missing-module")
    with pytest.raises(ConfigError, match=r"unknown estimation method 'nope'"):
        get_method("nope")


def test_a_plugin_method_reaches_the_method_table_and_a_plugin_export_writes(
    plugin: None, tmp_path: Path, clinic_db: Path
) -> None:
    db = open_writer(tmp_path / "a.db")
    names = {r[0] for r in db.execute("SELECT name FROM method")}
    db.close()
    assert "example-tbw" in names and set(BUILTIN_METHODS) <= names
    conn = open_readonly(clinic_db)
    out = io.StringIO()
    written = get_format("ids").write(out, measurements(conn), ExportContext(False, "x", "now"))
    n = conn.execute("SELECT count(*) FROM measurement WHERE subject_id IS NOT NULL").fetchone()[0]
    conn.close()
    assert written == Written(n, "id(s)") and len(out.getvalue().splitlines()) == n > 0


def test_the_export_command_offers_a_plugin_format(clinic_db: Path, tmp_path: Path) -> None:
    path = os.pathsep.join(p for p in (str(SITE), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    out = tmp_path / "ids.txt"
    proc = subprocess.run(
        [sys.executable, "-m", "bia_acq", "export", "--db", str(clinic_db), "--format", "ids",
         "--out", str(out)],
        capture_output=True, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.decode().startswith(f"wrote {out}: ") and "id(s)" in proc.stderr.decode()
    assert all(line.isdigit() for line in out.read_text().splitlines())


def test_an_unknown_export_format_is_one_line_naming_the_known_ones(clinic_db: Path) -> None:
    from conftest import run_cli

    proc = run_cli("export", "--db", str(clinic_db), "--format", "xml")
    err = proc.stderr.decode()
    assert proc.returncode == 2 and err.count("\n") == 1
    assert "--format" in err and "csv, fhir, hl7" in err
