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


LOG_LEVELS = ("debug", "info", "warning", "error")


def setup_logging(level: str) -> None:
    """Log to standard error at ``level``; a later call (a configuration's level) replaces it."""
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
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
    "subjects",
    "report",
    "export",
    "datasette_metadata",
    "methods",
    "recompute",
    "baseline",
    "sync",
    "central",
)


#: One name per kind of value, whatever the command: ``--db PATH`` everywhere, ``--subject
#: ID``, ``--since DATE``… An option a command declares without a metavar gets this one.
METAVARS = {
    "--db": "PATH",
    "--config": "FILE",
    "--truth": "FILE",
    "--out": "PATH",
    "--subject": "ID",
    "--id": "ID",
    "--since": "DATE",
    "--driver": "NAME",
    "--method": "NAME",
    "--link": "PATH",
    "--scenario": "NAME|FILE",
    "--port": "NAME",  # a configured port's name; where it is a device, DEVICE is declared
    "--journal-port": "NAME",
    "--timezone": "ZONE",
    "--count": "N",
    "--seed": "N",
    "--batch": "N",
    "--measurement": "N",
    "--interval": "SECONDS",
    "--duration": "SECONDS",
    "--listen": "SECONDS",
    "--speed": "X",
    "--age": "YEARS",
    "--height": "CM",
    "--tare": "KG",
}


def leaf_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The parsers that run a command (``run``, ``worklist add``…), not those of groups."""
    groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not groups:
        return [parser]
    return [leaf for g in groups for child in g.choices.values() for leaf in leaf_parsers(child)]


def _common_options(parser: argparse.ArgumentParser) -> None:
    """``--log-level`` on every command, and the shared metavars."""
    if "--log-level" not in parser._option_string_actions:
        parser.add_argument("--log-level", choices=LOG_LEVELS)
    for action in parser._actions:
        if action.metavar is not None or action.choices is not None:
            pass
        elif action.option_strings:
            action.metavar = METAVARS.get(action.option_strings[-1])
        elif action.dest != "help":  # a positional: FILE, not file
            action.metavar = action.dest.upper()
        if action.dest == "log_level":
            action.metavar = "LEVEL"
            if action.help is None:
                levels = ", ".join(LOG_LEVELS)
                action.help = f"what to log on standard error: {levels} (default {action.default or 'warning'})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bia-acq",
        description="Acquisition service for bioimpedance body-composition analyzers.",
    )
    parser.add_argument("--version", action="version", version=f"bia-acq {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"bia_acq.commands.{name}").add_parser(sub)
    for leaf in leaf_parsers(parser):
        _common_options(leaf)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.log_level is not None:  # commands that log by default set their level themselves
        setup_logging(args.log_level)
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
