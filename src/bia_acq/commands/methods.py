"""`bia-acq methods`."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "methods",
        help="list the estimation methods: applicability, inputs, sourced bands, uncertainty",
        description="List the estimation methods: name and version, what each needs and "
        "gives, where it applies, its citation, what of its constants was verified, its "
        "ECW/TBW bands with their source (the site's where --config sets them; 'no published "
        "band' where none is published), how its 95 %% interval is obtained, and the "
        "default method of each analyzer profile.",
    )
    p.add_argument("--config", type=Path, help="show the bands this configuration sets")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from bia_acq.config import load_config
    from bia_acq.core.estimate import METHODS
    from bia_acq.core.methods import DEFAULT_UNCERTAINTY, LABELS, profile_uncertainty
    from bia_acq.drivers import builtin_profiles

    overrides = load_config(args.config).thresholds if args.config else {}
    wrap = textwrap.TextWrapper(width=100, initial_indent="    ", subsequent_indent="      ")
    for name, m in METHODS.items():
        bands = overrides.get(name, m.bands)
        band_text = (
            f"{bands.describe()} (source: {bands.source})" if bands is not None else m.bands_note
        )
        print(f"{name} v{m.version} ({m.kind}): {m.description}")
        for label, text in (
            ("applies to", m.applicability),
            ("inputs", m.inputs),
            ("outputs", m.outputs),
            ("citation", m.citation),
            ("verified", m.verification),
            ("ECW/TBW bands", band_text),
            ("uncertainty", m.uncertainty_model),
        ):
            print(wrap.fill(f"{label}: {text}"))
    print()
    print(
        wrap.fill(
            "labels: " + ", ".join(LABELS) + ". A band word only where the 95 % interval "
            "lies inside one band (docs/physiology.md)."
        )
    )
    print("default method and stated measurement uncertainty per analyzer profile:")
    for pname, p in sorted(builtin_profiles().items()):
        u = profile_uncertainty(p)
        src = "default (none stated)" if u is DEFAULT_UNCERTAINTY else u.source
        print(
            f"    {pname}: {p.default_method or '-'}; σ = {u.relative:.1%} of |Z| and "
            f"{u.absolute_ohm:g} Ω per point, {src}"
        )
    print(wrap.fill(f"default uncertainty: {DEFAULT_UNCERTAINTY.source}"))
    return 0
