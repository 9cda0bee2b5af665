"""`bia-acq ports`: listing, by-id links, and --listen finding the profile on a real pty."""

from __future__ import annotations

from pathlib import Path

from conftest import run_cli, start_cli

from bia_acq.commands.ports import by_id_links, list_ports


def test_list_runs_anywhere_and_includes_given_ports() -> None:
    proc = run_cli("ports", "--port", "/dev/null")
    assert proc.returncode == 0, proc.stderr
    header, *rows = proc.stdout.decode().splitlines()
    assert header.split() == [
        "device",
        "description",
        "USB",
        "vid:pid",
        "serial",
        "number",
        "stable",
        "link",
        "(by-id)",
    ]
    assert [row.split("  ")[0].strip() for row in rows][-1] == "/dev/null"
    assert "given with --port" in rows[-1]


def test_by_id_links_resolve_to_their_devices(tmp_path: Path) -> None:
    dev = tmp_path / "ttyUSB7"
    dev.touch()
    (tmp_path / "by-id").mkdir()
    (tmp_path / "by-id" / "usb-FTDI_FT232R_USB_UART_A1B2C3D4-if00-port0").symlink_to(dev)
    links = by_id_links(tmp_path / "by-id")
    assert links == {
        str(dev): str(tmp_path / "by-id" / "usb-FTDI_FT232R_USB_UART_A1B2C3D4-if00-port0")
    }
    assert [p.device for p in list_ports([str(dev)])][-1] == str(dev)


def test_listen_names_the_profile_that_decodes_the_simulator(tmp_path: Path) -> None:
    sim = start_cli(
        "simulate",
        "--driver",
        "tanita-mc980",
        "--interval",
        "0.2",
        "--fast",  # a paced MC-980 frame at 9600 baud takes most of the listening window
    )
    try:
        assert sim.stdout is not None
        path = sim.stdout.readline().decode().strip()
        proc = run_cli("ports", "--port", path, "--listen", "1.2")
    finally:
        sim.kill()
        sim.communicate()
    out = proc.stdout.decode()
    assert proc.returncode == 0, proc.stderr
    assert "decodes with: tanita-mc980\n" in out, out
    assert "tanita-mc980       " in out and "model MC-980 matches" in out
    assert "at 2400 7E1" in out and "tanita-tbf310      0 frame(s) decoded" in out
    assert "inbody-lookinbody-csv" not in out  # a folder profile: nothing to hear on a line


def test_listen_does_not_try_a_folder_profile_on_a_serial_line() -> None:
    from bia_acq.commands.ports import listen

    lines = listen("/dev/null", 0.01, ["inbody-lookinbody-csv"], [])
    assert lines[0] == "  inbody-lookinbody-csv: a folder profile, not tried on a serial line"
