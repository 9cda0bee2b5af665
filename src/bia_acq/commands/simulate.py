"""`bia-acq simulate`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bia_acq.cli import (
    DEFAULT_DRIVER,
    Stop,
    add_drivers_dir,
    positive_float,
    positive_int,
    setup_logging,
)


def add_endpoint_args(p: argparse.ArgumentParser) -> None:
    """Where the bytes go, and how fast (shared by `simulate` and `replay`)."""
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--link", type=Path, help="on a new pseudo-terminal (the default): also symlink it here"
    )
    g.add_argument(
        "--port",
        metavar="DEVICE",
        help="on a real serial port (e.g. /dev/ttyUSB1), opened with the profile's settings",
    )
    g.add_argument(
        "--tcp",
        metavar="HOST:PORT",
        help="as a TCP server for socket://HOST:PORT (host defaults to 127.0.0.1; port 0: any)",
    )
    p.add_argument(
        "--fast",
        action="store_true",
        help="send as fast as the reader takes (default: the profile's real line rate)",
    )
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="inject a fault: KIND:PROBABILITY or KIND@N[,N...], optionally =VALUE "
        "(kinds: split, drop, flip, garbage, bad_checksum, truncate, stall, unplug, wrong_baud)",
    )


def make_endpoint(args: argparse.Namespace, profile: Any) -> Any:
    from bia_acq.errors import ConfigError
    from bia_acq.simulator.endpoint import PtyEndpoint, SerialEndpoint, TcpEndpoint, parse_tcp

    if args.port:
        return SerialEndpoint(args.port, profile.serial)
    if args.tcp:
        try:
            host, port = parse_tcp(args.tcp)
        except ValueError as exc:
            raise ConfigError(str(exc), key="--tcp", fix="e.g. --tcp 127.0.0.1:4001") from None
        return TcpEndpoint(host, port)
    return PtyEndpoint(args.link)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "simulate",
        help="run a simulated analyzer (pseudo-terminal, serial port or TCP)",
        description="Send simulated measurements of a scenario's patients, encoded as the "
        "driver's device sends them. Prints the device path (or socket URL) on the first line, "
        "then one line per measurement sent.",
    )
    p.add_argument(
        "--driver", default=DEFAULT_DRIVER, help=f"device profile (default {DEFAULT_DRIVER})"
    )
    p.add_argument(
        "--scenario",
        default="healthy-adults",
        help="built-in scenario name or a scenario .yaml file (default healthy-adults; "
        "see config/scenarios/)",
    )
    add_endpoint_args(p)
    p.add_argument(
        "--interval", type=positive_float, default=1.0, help="seconds between measurements"
    )
    p.add_argument("--count", type=positive_int, help="stop after N measurements")
    p.add_argument("--seed", type=int, help="random seed (same seed, same subjects and values)")
    p.add_argument(
        "--truth", type=Path, help="write what was sent and the ground truth as JSON lines"
    )
    p.add_argument(
        "--out",
        type=Path,
        metavar="PATH",
        help="write --count measurements (default 10) to FILE as the device or its software "
        "keeps them, and exit: Tanita text lines, a LookinBody export (.xlsx: Excel)",
    )
    p.add_argument(
        "--line-end",
        choices=["crlf", "lf", "cr"],
        help="with --out: the line end of Tanita lines (BC-601 SD-card files: lf)",
    )
    p.add_argument(
        "--date-order",
        choices=["dmy", "mdy", "ymd"],
        help="with --out: the date order of Tanita DT/Da dates (BC-601 units differ)",
    )
    p.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    add_drivers_dir(p)
    p.set_defaults(handler=run)


def write_out(args: argparse.Namespace, profile: Any) -> int:
    from bia_acq.simulator.device import write_capture

    options: dict[str, Any] = {}
    if args.line_end:
        options["line_end"] = args.line_end
        options["checksum_brace"] = args.line_end == "lf"  # as BC-601 SD-card files have it
    if args.date_order:
        options["date_order"] = args.date_order
    got = write_capture(
        profile, args.out, args.count or 10, seed=args.seed, scenario=args.scenario,
        options=options,
    )  # fmt: skip
    print(f"wrote {len(got)} simulated measurement(s) to {args.out} ({profile.name})")
    return 0


def run(args: argparse.Namespace) -> int:
    from bia_acq.drivers import get_profile
    from bia_acq.simulator.device import VirtualAnalyzer
    from bia_acq.simulator.faults import Fault
    from bia_acq.simulator.population import load_scenario

    setup_logging(args.log_level)
    profile = get_profile(args.driver, args.drivers_dir)
    if args.out is not None:
        return write_out(args, profile)
    faults = [Fault.parse(f) for f in args.fault]
    scenario = load_scenario(args.scenario)
    endpoint = make_endpoint(args, profile)
    stop = Stop()
    stop.install()
    truth = args.truth.open("w", encoding="utf-8") if args.truth else None

    def on_sent(n: int, record: dict[str, Any], reading: object) -> None:
        t = record["truth"]
        faults_text = f" faults={','.join(record['faults'])}" if record.get("faults") else ""
        print(
            f"sent measurement {n}: {t['scenario']} visit {t['visit']} "
            f"ECW/TBW={t['whole_body']['ecw_tbw_ratio']:.3f}{faults_text}",
            flush=True,
        )

    sim = VirtualAnalyzer(
        profile,
        seed=args.seed,
        interval_s=args.interval,
        count=args.count,
        endpoint=endpoint,
        truth=truth,
        scenario=scenario,
        faults=faults,
        fast=args.fast,
        on_sent=on_sent,
    )
    try:
        with sim:
            print(sim.path, flush=True)
            sim.run(stop.event)
    finally:
        if truth is not None:
            truth.close()
    return 0
