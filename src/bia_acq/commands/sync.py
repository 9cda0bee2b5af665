"""`bia-acq sync`: push this site's database to the group's central PostgreSQL."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "sync",
        help="push this site's database to the central PostgreSQL (see docs/central.md)",
        description="Push every row the central database lacks (devices, pseudonymised "
        "subjects, raw frames, measurements, impedances, results, baselines, methods), "
        "reading the local database read-only; idempotent and resumable. Once, or with "
        "--follow until stopped. Needs the [central] extra and the configuration's sync: "
        "section.",
    )
    p.add_argument("--config", type=Path, required=True, help="configuration file with sync:")
    p.add_argument("--db", type=Path, help="database file (default: the configuration's)")
    p.add_argument(
        "--follow",
        action="store_true",
        help="keep going: a pass every sync.interval_s, retrying when the server is unreachable",
    )
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from bia_acq.cli import setup_logging
    from bia_acq.commands.central import _psycopg, first_line
    from bia_acq.config import load_config
    from bia_acq.errors import BiaError, ConfigError

    config = load_config(args.config)
    if config.sync is None:
        raise ConfigError(
            "no sync: section", file=str(args.config), fix="see docs/central.md, step 5"
        )
    psycopg = _psycopg()
    from bia_acq.central.sync import TRANSIENT, Follower, Pusher

    setup_logging(args.log_level or config.log_level)
    pusher = Pusher(config.sync, args.db or config.database)
    if not args.follow:
        try:
            result = pusher.run_pass()
        except TRANSIENT as exc:
            raise BiaError(
                f"sync to {config.sync.where()}: {first_line(exc)} (nothing lost: run it again)"
            ) from None
        except psycopg.Error as exc:  # refused: privileges, a constraint, the schema
            raise BiaError(
                f"sync to {config.sync.where()}: refused: {first_line(exc)} "
                "(check the site's role and `bia-acq central migrate`; docs/central.md)"
            ) from None
        detail = ", ".join(f"{k} {v}" for k, v in result.pushed.items() if v)
        print(
            f"site {config.sync.site}: up to date: {result.rows} row(s) pushed"
            f"{f' ({detail})' if detail else ''} in {result.seconds:.1f} s"
        )
        return 0

    from bia_acq.cli import Stop
    from bia_acq.systemd import Notifier

    stop = Stop()
    stop.install()
    notifier = Notifier()
    notifier.ready(f"site {config.sync.site}: starting")
    try:
        Follower(pusher, stop.event, notifier.status).run()
    finally:
        notifier.stopping()
        notifier.close()
    return 0
