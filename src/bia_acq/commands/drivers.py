"""`bia-acq drivers`."""

from __future__ import annotations

import argparse

from bia_acq.cli import add_drivers_dir
from bia_acq.errors import BiaError


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("drivers", help="list device profiles and protocol codecs")
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
    print("Device profiles:")
    for name, p in sorted(all_profiles(args.drivers_dir).items()):
        note = "" if protocols.get(p.protocol, "unknown") is None else " [protocol not available]"
        print(
            f"  {name:<18} protocol {p.protocol:<10} {p.serial.describe():<28} {p.description}{note}"
        )
    print("Protocols:")
    for name, problem in protocols.items():
        if problem is None:
            print(f"  {name:<18} available       {descriptions[name]}")
        else:
            print(f"  {name:<18} not available   {problem}")
    return 0
