"""`bia-acq drivers`."""

from __future__ import annotations

import argparse

from bia_acq.cli import add_drivers_dir
from bia_acq.errors import BiaError


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "drivers",
        help="list device profiles and protocol codecs",
        description="List the device profiles (built in, and those of --drivers-dir) with "
        "their protocol and link: the serial settings, or 'folder' for a profile whose "
        "device's software exports files into a folder (a configuration's folders:); then "
        "the protocol codecs, plugins included, a broken one as not available.",
    )
    add_drivers_dir(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from bia_acq.drivers import all_profiles
    from bia_acq.protocols.base import load_protocol, protocol_names

    protocols: dict[str, str | None] = {}  # name -> None if available, else why not
    descriptions: dict[str, str] = {}
    for name in protocol_names():
        try:
            descriptions[name] = load_protocol(name).description
            protocols[name] = None
        except BiaError as exc:
            protocols[name] = str(exc)
    profiles = sorted(all_profiles(args.drivers_dir).items())
    w = max([18, *(len(n) for n, _ in profiles), *(len(n) for n in protocols)])
    pw = max([10, *(len(p.protocol) for _, p in profiles)])
    print("Device profiles:")
    for name, p in profiles:
        note = "" if protocols.get(p.protocol, "unknown") is None else " [protocol not available]"
        link = "folder" if p.link == "folder" else p.serial.describe()
        print(f"  {name:<{w}} protocol {p.protocol:<{pw}} {link:<28} {p.description}{note}")
    print("Protocols:")
    for name, problem in protocols.items():
        if problem is None:
            print(f"  {name:<{w}} available       {descriptions[name]}")
        else:
            print(f"  {name:<{w}} not available   {problem}")
    return 0
