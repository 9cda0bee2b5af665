"""`bia-acq simulate`."""

from __future__ import annotations

import argparse
from pathlib import Path

from bia_acq.cli import DEFAULT_DRIVER, Stop, positive_float, positive_int, setup_logging


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "simulate",
        help="run a simulated analyzer on a new pseudo-terminal",
        description="Create a pseudo-terminal, print its path on the first line, and send "
        "simulated measurements while a reader has it open.",
    )
    p.add_argument(
        "--driver", default=DEFAULT_DRIVER, help=f"device profile (default {DEFAULT_DRIVER})"
    )
    p.add_argument("--link", type=Path, help="also create a symlink to the device at this path")
    p.add_argument(
        "--interval", type=positive_float, default=1.0, help="seconds between measurements"
    )
    p.add_argument("--count", type=positive_int, help="stop after N measurements")
    p.add_argument("--seed", type=int, help="random seed (same seed, same subjects and values)")
    p.add_argument(
        "--truth", type=Path, help="write what was sent and the ground truth as JSON lines"
    )
    p.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from bia_acq.drivers import get_profile
    from bia_acq.simulator.device import VirtualAnalyzer

    setup_logging(args.log_level)
    profile = get_profile(args.driver)
    stop = Stop()
    stop.install()
    truth = args.truth.open("w", encoding="utf-8") if args.truth else None

    def on_sent(n: int, subject: object, reading: object) -> None:
        print(f"sent measurement {n}", flush=True)

    try:
        with VirtualAnalyzer(
            profile,
            seed=args.seed,
            interval_s=args.interval,
            count=args.count,
            link=args.link,
            truth=truth,
            on_sent=on_sent,
        ) as sim:
            print(sim.path, flush=True)
            sim.run(stop.event)
    finally:
        if truth is not None:
            truth.close()
    return 0
