"""The systemd unit, sysusers/tmpfiles snippets and udev rule in systemd/."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SYSTEMD = ROOT / "systemd"
UNIT = SYSTEMD / "bia-acq.service"


def parse_unit(text: str) -> dict[str, list[tuple[str, str]]]:
    """systemd's INI dialect: sections, repeatable keys, # and ; comments."""
    out: dict[str, list[tuple[str, str]]] = {}
    section = None
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            out.setdefault(section, [])
            continue
        assert section is not None, f"line {n}: key outside a section"
        key, sep, value = line.partition("=")
        assert sep and key.strip() and key.strip().replace("-", "").isalnum(), f"line {n}: {raw}"
        out[section].append((key.strip(), value.strip()))
    return out


def test_unit_has_what_the_service_relies_on() -> None:
    unit = parse_unit(UNIT.read_text())
    assert set(unit) == {"Unit", "Service", "Install"}
    svc = unit["Service"]
    one = dict(svc)
    assert one["Type"] == "notify" and one["Restart"] == "on-failure"
    assert int(one["WatchdogSec"]) >= 30  # well above the service's 20 s hang threshold
    assert one["StateDirectory"] == "bia-acq" and one["ConfigurationDirectory"] == "bia-acq"
    assert one["ExecStart"].endswith("run --config /etc/bia-acq/config.yaml")
    assert one["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert one["SupplementaryGroups"] == "dialout" and (
        one.get("User") == "bia-acq" or one.get("DynamicUser") == "yes"
    )
    allowed = [v for k, v in svc if k == "DeviceAllow"]
    assert "char-ttyUSB rw" in allowed and "char-ttyACM rw" in allowed
    assert one["ProtectSystem"] == "strict"
    assert one["NoNewPrivileges"] == "yes" and one["PrivateTmp"] == "yes"
    assert "PrivateDevices" not in one  # it would hide the serial ports
    assert int(one["TimeoutStopSec"]) > 5  # SIGTERM exits within 5 s
    assert dict(unit["Install"])["WantedBy"] == "multi-user.target"


def test_sysusers_tmpfiles_and_udev_snippets() -> None:
    sysusers = (SYSTEMD / "bia-acq.sysusers.conf").read_text().splitlines()
    entries = [line.split() for line in sysusers if line and not line.startswith("#")]
    assert ["m", "bia-acq", "dialout"] in entries
    assert any(e[:2] == ["u", "bia-acq"] for e in entries)
    tmpfiles = (SYSTEMD / "bia-acq.tmpfiles.conf").read_text()
    assert "d /var/lib/bia-acq 0750 bia-acq bia-acq" in tmpfiles
    rules = [
        line
        for line in (SYSTEMD / "70-bia-acq.rules").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert rules and all('SUBSYSTEM=="tty"' in r and "SYMLINK+=" in r for r in rules)


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    """Where systemd-analyze exists, it must accept the unit without a single warning."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:  # the INI checks above still ran
        return
    exe = Path(sys.executable).parent / "bia-acq"
    unit = tmp_path / "bia-acq.service"
    unit.write_text(UNIT.read_text().replace("/opt/bia-acq/bin/bia-acq", str(exe)))
    proc = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60
    )
    ours = [line for line in proc.stderr.splitlines() if str(unit) in line]
    assert proc.returncode == 0 and ours == [], proc.stderr
    # and it does catch mistakes, so a pass means something
    bad = tmp_path / "bad.service"
    bad.write_text(unit.read_text().replace("ProtectSystem=", "ProtectSystm="))
    proc = subprocess.run([analyze, "verify", "--man=no", str(bad)], capture_output=True, text=True)
    assert "ProtectSystm" in proc.stderr
