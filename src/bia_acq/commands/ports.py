"""`bia-acq ports`: which serial ports there are, and which profile decodes what each sends."""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bia_acq.cli import add_drivers_dir, positive_float
from bia_acq.errors import BiaError

BY_ID = Path("/dev/serial/by-id")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "ports",
        help="list serial ports; with --listen, find which profile decodes each",
        description="List every serial port with its description, USB vendor:product, serial "
        "number and stable /dev/serial/by-id link. With --listen, open each port with each "
        "candidate profile's line settings in turn and report which profile decodes what it "
        "sends (measure on the analyzer meanwhile).",
    )
    p.add_argument(
        "--port",
        action="append",
        default=[],
        metavar="DEVICE",
        help="also (or, with --listen, only) this port: pseudo-terminals and pyserial URLs "
        "are not listed by the system; repeatable",
    )
    p.add_argument(
        "--listen",
        type=positive_float,
        metavar="SECONDS",
        help="listen this long per distinct line setting (e.g. 9600 8N1, 2400 7E1) on each port",
    )
    p.add_argument(
        "--driver",
        action="append",
        default=[],
        metavar="NAME",
        help="candidate profile for --listen (default: every profile); repeatable",
    )
    add_drivers_dir(p)
    p.set_defaults(handler=run)


@dataclass(frozen=True)
class PortInfo:
    device: str
    description: str = ""
    usb_id: str = ""
    serial_number: str = ""
    by_id: str = ""


def by_id_links(folder: Path = BY_ID) -> dict[str, str]:
    """Resolved device path -> its /dev/serial/by-id link (udev's stable names)."""
    links: dict[str, str] = {}
    if folder.is_dir():
        for link in sorted(folder.iterdir()):
            links.setdefault(os.path.realpath(link), str(link))
    return links


def list_ports(extra: Sequence[str] = ()) -> list[PortInfo]:
    from serial.tools import list_ports as lp

    links = by_id_links()
    out: dict[str, PortInfo] = {}
    for info in sorted(lp.comports(), key=lambda i: i.device):
        usb = (
            f"{info.vid:04x}:{info.pid:04x}"
            if info.vid is not None and info.pid is not None
            else ""
        )
        desc = info.description if info.description and info.description != "n/a" else ""
        out[os.path.realpath(info.device)] = PortInfo(
            info.device,
            desc,
            usb,
            info.serial_number or "",
            links.get(os.path.realpath(info.device), ""),
        )
    for path in extra:
        real = os.path.realpath(path) if "://" not in path else path
        if real not in out:
            out[real] = PortInfo(path, "given with --port", by_id=links.get(real, ""))
    return list(out.values())


HEADER = ("device", "description", "USB vid:pid", "serial number", "stable link (by-id)")


def port_table(ports: Sequence[PortInfo]) -> list[str]:
    """A header row, then one aligned row per port; '-' where the system knows nothing."""
    cells = [
        HEADER,
        *((p.device, p.description, p.usb_id, p.serial_number, p.by_id) for p in ports),
    ]
    rows = [tuple(cell or "-" for cell in row) for row in cells]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER) - 1)]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1]
        for row in rows
    ]


def run(args: argparse.Namespace) -> int:
    ports = list_ports(args.port)
    if not ports:
        print("no serial ports found (pseudo-terminals and sockets are not listed: use --port)")
        return 0
    for line in port_table(ports):
        print(line)
    if args.listen is None:
        return 0
    targets = args.port or [p.device for p in ports]
    for url in targets:
        print(f"\n{url}:")
        for line in listen(url, args.listen, args.driver, args.drivers_dir):
            print(line, flush=True)
    return 0


def listen(
    url: str, seconds: float, drivers: Sequence[str], drivers_dir: Sequence[Path]
) -> list[str]:
    """Open ``url`` with each candidate setting, decode with each profile: report lines."""
    from bia_acq.drivers import Profile, all_profiles, get_profile
    from bia_acq.link import Link

    if drivers:
        profiles = [get_profile(d, drivers_dir) for d in drivers]
    else:
        profiles = list(all_profiles(drivers_dir).values())
    lines: list[str] = []
    groups: dict[object, list[Profile]] = {}
    for prof in sorted(profiles, key=lambda p: p.name):
        if prof.link == "folder":  # its device exports files: nothing to hear on a line
            if drivers:
                lines.append(f"  {prof.name}: a folder profile, not tried on a serial line")
            continue
        groups.setdefault(prof.serial, []).append(prof)
    scores: list[tuple[tuple[int, int, int], str]] = []
    for members in groups.values():
        link = Link(url, members[0].serial, read_timeout_s=0.1)
        try:
            link.open()
        except BiaError as exc:
            lines.append(f"  {members[0].serial.describe()}: {exc}")
            continue
        data = bytearray()
        try:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                data += link.read()
        except BiaError as exc:
            lines.append(f"  {members[0].serial.describe()}: {exc}")
        finally:
            link.close()
        lines.append(f"  {seconds:g} s at {members[0].serial.describe()}: {len(data)} bytes")
        for prof in members:
            ok, bad, model_ok, model = _try(prof, bytes(data))
            if ok is None:
                lines.append(f"    {prof.name:<18} protocol not available: {model}")
                continue
            note = ""
            if ok and model is not None:
                models = prof.options.get("models")
                if isinstance(models, list):
                    note = f", model {model} " + ("matches" if model_ok else "not expected")
            lines.append(f"    {prof.name:<18} {ok} frame(s) decoded, {bad} failed{note}")
            if ok:
                scores.append(((int(model_ok), ok, -bad), prof.name))
    if scores:
        best = max(scores)
        rivals = [n for s, n in scores if s == best[0] and n != best[1]]
        also = f" (equally: {', '.join(rivals)})" if rivals else ""
        lines.append(f"  decodes with: {best[1]}{also}")
    else:
        lines.append("  no candidate profile decodes what this port sent")
    return lines


def _try(prof: object, data: bytes) -> tuple[int | None, int, bool, str | None]:
    """(frames decoded, frames failed, model as expected, model) of ``data`` by ``prof``."""
    from bia_acq.drivers import Profile
    from bia_acq.errors import FrameError

    assert isinstance(prof, Profile)
    try:
        codec = prof.codec()
    except BiaError as exc:
        return None, 0, False, str(exc)
    framer = codec.framer()
    ok = bad = 0
    model = None
    for chunk in [*framer.feed(data), *framer.flush()]:
        if chunk.kind != "frame":
            continue
        try:
            reading = codec.decode(chunk.context + chunk.data)
        except FrameError:
            bad += 1
            continue
        except Exception:  # a codec bug counts as a failure here
            bad += 1
            continue
        ok += 1
        model = reading.model if reading.model is not None else model
    models = prof.options.get("models")
    model_ok = model is not None and isinstance(models, list) and model in models
    return ok, bad, model_ok, model
