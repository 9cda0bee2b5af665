"""`bia-acq check-config`."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "check-config", help="validate a configuration file without starting anything"
    )
    p.add_argument("file", type=Path)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from bia_acq.config import load_config

    config = load_config(args.file)
    print(
        f"{args.file}: ok: database {config.database}, method {config.method}, {len(config.ports)} port(s), {len(config.folders)} folder(s)"
    )
    for p in config.ports:
        print(f"  {p.name}: {p.url} driver {p.driver} ({p.serial.describe()})")
    for f in config.folders:
        print(
            f"  {f.name}: folder {f.path} ({f.pattern}) driver {f.driver}, every {f.poll_seconds:g} s"
        )
    for name, bands in config.thresholds.items():
        print(f"  thresholds {name}: {bands.describe()}")
    if config.sync:
        print(f"  {config.sync.describe()}")
    return 0
