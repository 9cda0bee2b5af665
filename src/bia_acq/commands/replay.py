"""`bia-acq replay`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bia_acq.cli import DEFAULT_DRIVER, Stop, positive_float, setup_logging
from bia_acq.commands.simulate import add_endpoint_args, make_endpoint


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "replay",
        help="send a captured byte stream or a database's journal again",
        description="Send a capture file (or - for stdin), or the raw_frame journal of a "
        "database (--db), on a pseudo-terminal, serial port or TCP server like `simulate`. "
        "Journal chunks keep their original timing (--speed X: X times faster; --fast: no "
        "gaps and no line pacing). Prints the device path or socket URL first.",
    )
    p.add_argument("file", nargs="?", help="capture file, or - for standard input")
    p.add_argument("--db", type=Path, help="replay this database's raw_frame journal instead")
    p.add_argument("--journal-port", metavar="NAME", help="only the journal rows of this port")
    p.add_argument(
        "--driver",
        help=f"profile for line settings and framing (default: the journal's, or {DEFAULT_DRIVER})",
    )
    p.add_argument(
        "--speed", type=positive_float, default=1.0, help="replay the journal X times faster"
    )
    add_endpoint_args(p)
    p.add_argument("--seed", type=int, help="random seed for probabilistic faults")
    p.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from bia_acq.drivers import get_profile
    from bia_acq.errors import ConfigError
    from bia_acq.simulator.device import Line
    from bia_acq.simulator.faults import Fault
    from bia_acq.simulator.replay import Chunk, Replayer, chunks_from_bytes, chunks_from_journal

    setup_logging(args.log_level)
    if (args.file is None) == (args.db is None):
        raise ConfigError(
            "give either a capture FILE or --db PATH", fix="e.g. bia-acq replay capture.bin"
        )
    faults = [Fault.parse(f) for f in args.fault]
    chunks: list[Chunk]
    if args.db is not None:
        chunks, drivers = chunks_from_journal(args.db, args.journal_port)
        profile = get_profile(args.driver or (drivers[0] if len(drivers) == 1 else DEFAULT_DRIVER))
    else:
        profile = get_profile(args.driver or DEFAULT_DRIVER)
        if args.file == "-":
            data = sys.stdin.buffer.read()
        else:
            try:
                data = Path(args.file).read_bytes()
            except OSError as exc:
                raise ConfigError(f"cannot read capture: {exc.strerror}", file=args.file) from None
        chunks = chunks_from_bytes(data, profile.codec())
    endpoint = make_endpoint(args, profile)
    line = Line(
        endpoint,
        profile.serial,
        fast=args.fast,
        faults=faults,
        rng=np.random.default_rng(args.seed),
        silence_s=float(getattr(profile.codec().framer(), "silence_s", 2.0)),
    )
    stop = Stop()
    stop.install()
    replayer = Replayer(line, chunks, speed=None if args.fast else args.speed)
    with endpoint:
        print(endpoint.address, flush=True)
        replayer.run(stop.event)
    print(
        f"replayed {replayer.sent} of {len(chunks)} chunks ({replayer.bytes_sent} bytes)",
        flush=True,
    )
    return 0
