"""`bia-acq methods`."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "methods",
        help="list the estimation methods with citations and ECW/TBW bands",
        description="List the estimation methods: name and version, what each needs and "
        "gives, its citation, what of its constants was verified, and its ECW/TBW bands "
        "(those of --config where it overrides them).",
    )
    p.add_argument("--config", type=Path, help="show the bands this configuration sets")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from bia_acq.config import load_config
    from bia_acq.core.estimate import METHODS

    overrides = load_config(args.config).thresholds if args.config else {}
    wrap = textwrap.TextWrapper(width=100, initial_indent="    ", subsequent_indent="      ")
    for name, m in METHODS.items():
        bands = overrides.get(name, m.bands)
        print(f"{name} v{m.version} ({m.kind}): {m.description}")
        for label, text in (
            ("inputs", m.inputs),
            ("outputs", m.outputs),
            ("citation", m.citation),
            ("verified", m.verification),
            ("ECW/TBW bands", f"{bands.describe()} ({bands.source})"),
        ):
            print(wrap.fill(f"{label}: {text}"))
    return 0
