"""`bia-acq central migrate`: create or upgrade the group's central PostgreSQL schema."""

from __future__ import annotations

import argparse
from pathlib import Path
from types import ModuleType


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "central",
        help="the group's central PostgreSQL database (see docs/central.md)",
        description="Administer the central PostgreSQL database the sites' `bia-acq sync` "
        "push to. Needs the [central] extra: pip install 'bia-acq[central]'.",
    )
    csub = p.add_subparsers(dest="central_command", metavar="ACTION", required=True)
    m = csub.add_parser(
        "migrate",
        help="create or upgrade the central schema (idempotent)",
        description="Apply the central schema's pending versioned migrations and its "
        "grants, as the migration role; running it again changes nothing.",
    )
    m.add_argument(
        "--url",
        required=True,
        help="libpq URL of the migration role, e.g. postgresql://bia_migrate@db/bia",
    )
    m.add_argument(
        "--password-file",
        type=Path,
        help="file (mode 600) with the role's password; default: libpq's (~/.pgpass, PGPASSWORD)",
    )
    m.set_defaults(handler=migrate)


def migrate(args: argparse.Namespace) -> int:
    from bia_acq.central.config import read_secret
    from bia_acq.errors import BiaError

    psycopg = _psycopg()
    from bia_acq.central.schema import migrate as apply

    kwargs = {"password": read_secret(args.password_file)} if args.password_file else {}
    try:
        with psycopg.connect(args.url, connect_timeout=30, **kwargs) as conn:
            done = apply(conn)
    except psycopg.Error as exc:
        raise BiaError(f"central migrate: {first_line(exc)} (check --url and the role)") from None
    print(f"central schema: applied {', '.join(done)}" if done else "central schema: up to date")
    return 0


def first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _psycopg() -> ModuleType:
    from bia_acq.errors import ConfigError

    try:
        import psycopg
    except ImportError:
        raise ConfigError(
            "psycopg is not installed", fix="pip install 'bia-acq[central]'"
        ) from None
    return psycopg
