"""The ``bia-acq`` command. ``main()`` returns an exit code; user mistakes never show a traceback."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from bia_acq import __version__
from bia_acq.errors import BiaError

log = logging.getLogger("bia_acq")

DEFAULT_DRIVER = "tanita-mc780"


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {v}")
    return v


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"expected more than 0, got {v}")
    return v


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bia-acq",
        description="Acquisition service for bioimpedance body-composition analyzers.",
    )
    parser.add_argument("--version", action="version", version=f"bia-acq {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "run",
        help="acquire from the configured analyzers (no config: the built-in simulator)",
        description="Acquire measurements into SQLite. Without --config, runs the built-in "
        "simulated Tanita MC-780 on a pseudo-terminal into ./bia-acq.db.",
    )
    p.add_argument("--config", type=Path, help="configuration file (YAML)")
    p.add_argument("--db", type=Path, help="database file (overrides the configuration)")
    p.add_argument("--count", type=_positive_int, help="stop after N stored measurements")
    p.add_argument("--duration", type=_positive_float, help="stop after this many seconds")
    p.add_argument(
        "--interval",
        type=_positive_float,
        default=1.0,
        help="seconds between simulated measurements when no config is given (default 1)",
    )
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])

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
        "--interval", type=_positive_float, default=1.0, help="seconds between measurements"
    )
    p.add_argument("--count", type=_positive_int, help="stop after N measurements")
    p.add_argument("--seed", type=int, help="random seed (same seed, same subjects and values)")
    p.add_argument(
        "--truth", type=Path, help="write what was sent and the ground truth as JSON lines"
    )
    p.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])

    p = sub.add_parser(
        "decode",
        help="decode a captured byte stream to JSON lines",
        description="Read captured bytes (a file or - for standard input) and print one JSON "
        'object per frame; a frame that fails prints {"error": ..., "offset": ...}.',
    )
    p.add_argument("--driver", required=True, help="device profile, e.g. tanita-mc780")
    p.add_argument("file", nargs="?", default="-", help="captured bytes (default: standard input)")

    p = sub.add_parser(
        "check-config", help="validate a configuration file without starting anything"
    )
    p.add_argument("file", type=Path)

    sub.add_parser("drivers", help="list device profiles and protocol codecs")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        handler = {
            "run": cmd_run,
            "simulate": cmd_simulate,
            "decode": cmd_decode,
            "check-config": cmd_check_config,
            "drivers": cmd_drivers,
        }[args.command]
        return handler(args)
    except BiaError as exc:
        print(f"bia-acq: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


class _Stop:
    """SIGINT/SIGTERM set an event the main thread waits on."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal: int | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.signal = signum
        self.event.set()

    def install(self) -> None:
        signal.signal(signal.SIGINT, self)
        signal.signal(signal.SIGTERM, self)


def cmd_run(args: argparse.Namespace) -> int:
    from bia_acq.config import Config, PortConfig, load_config
    from bia_acq.drivers import get_profile
    from bia_acq.service import Service
    from bia_acq.simulator.device import VirtualAnalyzer
    from bia_acq.store.writer import SavedMeasurement

    stop = _Stop()
    stop.install()
    simulator = None
    sim_thread = None
    if args.config:
        config = load_config(args.config)
        _setup_logging(args.log_level or config.log_level)
        if args.db:
            config = Config(**{**config.__dict__, "database": args.db})
        if not config.ports:
            log.warning("%s configures no ports: nothing to acquire", config.source)
    else:
        _setup_logging(args.log_level or "info")
        profile = get_profile(DEFAULT_DRIVER)
        simulator = VirtualAnalyzer(profile, interval_s=args.interval)
        path = simulator.open()
        log.info("no --config: acquiring from the built-in simulated %s on %s", profile.name, path)
        port = PortConfig("simulator", path, profile.name, profile, profile.serial)
        config = Config(database=args.db or Path("bia-acq.db"), ports=(port,))
        sim_thread = threading.Thread(
            target=simulator.run, args=(stop.event,), name="simulator", daemon=True
        )

    stored = 0
    done = threading.Event()

    def on_saved(m: SavedMeasurement) -> None:
        nonlocal stored
        wb = next((r for r in m.results if r["segment"] == "whole_body"), None)
        ratio = wb and wb["ecw_tbw_ratio"]
        text = f"{ratio:.3f}" if isinstance(ratio, float) else "n/a"
        cls = wb["classification"] if wb else "unknown"
        method = f"{wb['method']} v{wb['method_version']}" if wb else config.method
        print(
            f"{time.strftime('%Y-%m-%dT%H:%M:%S')} port={m.port} subject={m.subject_pseudonym or '-'} "
            f"measurement={m.measurement_id} ECW/TBW={text} {cls} ({method})",
            flush=True,
        )
        stored += 1
        if args.count and stored >= args.count:
            done.set()

    service = Service(config, on_saved=on_saved)
    try:
        service.start()
        log.info("storing into %s", config.database)
        if sim_thread is not None:
            sim_thread.start()
        deadline = time.monotonic() + args.duration if args.duration else None
        while not stop.event.is_set() and not done.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            stop.event.wait(0.1)
    finally:
        stop.event.set()
        service.stop()
        if sim_thread is not None and sim_thread.is_alive():
            sim_thread.join(2)
        if simulator is not None:
            simulator.close()
    log.info("stopped after %d stored measurement(s)", stored)
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from bia_acq.drivers import get_profile
    from bia_acq.simulator.device import VirtualAnalyzer

    _setup_logging(args.log_level)
    profile = get_profile(args.driver)
    stop = _Stop()
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


def cmd_decode(args: argparse.Namespace) -> int:
    from bia_acq.drivers import get_profile
    from bia_acq.errors import FrameError

    profile = get_profile(args.driver)
    codec = profile.codec()
    if args.file == "-":
        data = sys.stdin.buffer.read()
    else:
        try:
            data = Path(args.file).read_bytes()
        except OSError as exc:
            raise BiaError(f"cannot read {args.file}: {exc.strerror}") from None
    framer = codec.framer()
    failed = 0
    pos = 0
    for chunk in [*framer.feed(data), *framer.flush("end of input inside a frame")]:
        start, pos = pos, pos + len(chunk.data)
        if chunk.kind == "junk":
            if not chunk.data.strip(b"\r\n\x00 \t"):
                continue  # line noise between frames
            out: dict[str, object] = {
                "error": f"{len(chunk.data)} bytes outside any frame",
                "offset": 0,
            }
        elif chunk.kind == "truncated":
            out = {"error": chunk.reason, "offset": len(chunk.data)}
        else:
            try:
                out = codec.decode(chunk.data).to_json()
            except FrameError as exc:
                out = {"error": exc.reason, "offset": exc.offset}
        if "error" in out:
            failed += 1
            out["stream_offset"] = start
        print(json.dumps(out), flush=False)
    sys.stdout.flush()
    return 1 if failed else 0


def cmd_check_config(args: argparse.Namespace) -> int:
    from bia_acq.config import load_config

    config = load_config(args.file)
    print(
        f"{args.file}: ok: database {config.database}, method {config.method}, {len(config.ports)} port(s)"
    )
    for p in config.ports:
        print(f"  {p.name}: {p.url} driver {p.driver} ({p.serial.describe()})")
    return 0


def cmd_drivers(args: argparse.Namespace) -> int:
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
