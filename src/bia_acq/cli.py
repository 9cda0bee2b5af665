"""The ``bia-acq`` command. ``main()`` returns an exit code; user mistakes never show a traceback."""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from bia_acq import __version__
from bia_acq.errors import BiaError

log = logging.getLogger("bia_acq")

DEFAULT_DRIVER = "tanita-mc780"


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {v}")
    return v


def positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"expected more than 0, got {v}")
    return v


def add_drivers_dir(p: argparse.ArgumentParser) -> None:
    """The ``--drivers-dir`` option: extra device profiles, as a configuration's ``drivers_dir``."""
    p.add_argument(
        "--drivers-dir",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="folder of extra device profiles (*.yaml), e.g. /etc/bia-acq/drivers; repeatable",
    )


#: Subcommand modules in bia_acq.commands, in the order `--help` lists them.
COMMANDS = (
    "run",
    "simulate",
    "replay",
    "validate",
    "decode",
    "import_",
    "ports",
    "check_config",
    "drivers",
    "worklist",
    "report",
    "export",
    "datasette_metadata",
    "methods",
    "recompute",
    "baseline",
    "sync",
    "central",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bia-acq",
        description="Acquisition service for bioimpedance body-composition analyzers.",
    )
    parser.add_argument("--version", action="version", version=f"bia-acq {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"bia_acq.commands.{name}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except BiaError as exc:
        print(f"bia-acq: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


class Stop:
    """SIGINT/SIGTERM set an event the main thread waits on; SIGHUP (if asked) sets ``reload``."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reload = threading.Event()
        self.signal: int | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            self.reload.set()
            return
        self.signal = signum
        self.event.set()

    def install(self, *, hangup: bool = False) -> None:
        signal.signal(signal.SIGINT, self)
        signal.signal(signal.SIGTERM, self)
        if hangup:
            signal.signal(signal.SIGHUP, self)
