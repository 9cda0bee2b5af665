"""`bia-acq drivers`."""

from __future__ import annotations

import argparse

from bia_acq.errors import BiaError


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("drivers", help="list device profiles and protocol codecs")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from bia_acq.drivers import all_profiles
    from bia_acq.protocols.base import load_protocol, protocol_names

    print("Device profiles:")
    for name, p in sorted(all_profiles().items()):
        print(f"  {name:<18} protocol {p.protocol:<10} {p.serial.describe():<28} {p.description}")
    print("Protocols:")
    for name in protocol_names():
        try:
            cls = load_protocol(name)
            print(f"  {name:<18} available       {cls.description}")
        except BiaError as exc:
            print(f"  {name:<18} not available   {exc}")
    return 0
