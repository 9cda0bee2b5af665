"""`bia-acq check-config`: the configuration, and what `bia-acq run` needs from this machine."""

from __future__ import annotations

import argparse
import os
import pwd
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bia_acq.config import Config, FolderConfig, PortConfig


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "check-config",
        help="check a configuration and what `run` needs, without starting anything",
        description="Read a configuration file and check what `bia-acq run` needs from this "
        "machine, as the user running the check: the database's folder exists and is writable, "
        "the spool can be created beside the database, at least one port or folder is "
        "configured, and which ports and folders are present now. Exit status 0: run can "
        "start; 1: run would fail (or acquire nothing); 2: a mistake in the file.",
    )
    p.add_argument("file", type=Path, metavar="FILE", help="configuration file (YAML)")
    p.set_defaults(handler=run)


@dataclass(frozen=True)
class Finding:
    """One line of the check; ``fatal``: a problem to fix before `run` (check-config exits 1)."""

    text: str
    fatal: bool


def _folder_problem(folder: Path) -> str | None:
    """Why ``folder`` cannot take new files, or None."""
    if not folder.is_dir():
        if folder.exists():
            return f"{folder} is not a folder"
        return f"its folder {folder} does not exist (create it, or fix the path)"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"its folder {folder} is not writable by this user (check owner and mode)"
    return None


def storage_findings(database: Path) -> list[Finding]:
    """The database and its spool: what `run` opens before it acquires anything.

    SQLite creates the database and its ``-wal`` and ``-shm`` files in the database's
    folder, and the service its spool there, so the folder must be writable.
    """
    from bia_acq.spool import spool_path

    if database.is_dir():
        return [Finding(f"database {database} is a directory: name a file in it", True)]
    spool = spool_path(database)
    problem = _folder_problem(database.parent)
    if problem:
        return [Finding(f"database {database} cannot be written: {problem}", True)]
    out = []
    if database.exists() and not os.access(database, os.R_OK | os.W_OK):
        out.append(
            Finding(
                f"database {database} is not writable by this user: run would keep what it "
                f"receives in {spool} until it is",
                True,
            )
        )
    if spool.exists() and not os.access(spool, os.R_OK | os.W_OK):
        # run starts (the database takes writes), but a storage fault would lose data
        out.append(Finding(f"database ok, but its spool {spool} is not writable", False))
    return out


def refuse_unusable(config: Config, file: Path | None, db_flag: bool) -> None:
    """What makes `run` fail at once, as one error before anything starts.

    ``file`` is the configuration (None: the built-in simulator), ``db_flag`` whether
    ``--db`` named the database.
    """
    from bia_acq.errors import BiaError, ConfigError

    where = (
        {"file": None, "key": "--db"}
        if db_flag or file is None
        else {"file": str(file), "key": "database"}
    )
    if config.database.is_dir():
        raise ConfigError(
            f"{config.database} is a directory", fix="name a file in it, e.g. bia-acq.db", **where
        )
    problem = _folder_problem(config.database.parent)
    if problem:  # worded like a configuration error (where: file, key), but exit 1: it is
        # this machine's state, not the file, that is wrong
        raise BiaError(str(ConfigError(f"{config.database} cannot be written: {problem}", **where)))
    if file is not None and not config.ports and not config.folders:
        raise ConfigError(
            "no ports or folders configured: nothing to acquire",
            file=str(file),
            fix="add a port under `ports:`, see config/bia-acq.example.yaml",
        )


def port_finding(p: PortConfig) -> Finding:
    if "://" in p.url:
        return Finding("a network URL, not checked", False)
    if not os.path.exists(p.url):
        return Finding("absent now (run waits for it)", False)
    if not os.access(p.url, os.R_OK | os.W_OK):
        return Finding("present, but not readable and writable by this user", True)
    return Finding("present", False)


def folder_finding(f: FolderConfig) -> Finding:
    if not f.path.exists():
        return Finding("absent now (run waits for it)", False)
    if not f.path.is_dir():
        return Finding("not a folder", True)
    if not os.access(f.path, os.R_OK | os.X_OK):
        return Finding("not readable by this user", True)
    return Finding("present", False)


def _line(text: str, finding: Finding) -> str:
    return f"  {'PROBLEM: ' if finding.fatal else ''}{text}: {finding.text}"


def run(args: argparse.Namespace) -> int:
    from bia_acq.config import load_config

    config = load_config(args.file)
    user = pwd.getpwuid(os.geteuid()).pw_name
    print(f"{args.file}: configuration ok (method {config.method}); checked as user {user}:")
    findings = storage_findings(config.database)
    for finding in findings:
        print(f"  {'PROBLEM: ' if finding.fatal else ''}{finding.text}")
    if not findings:
        print(f"  database {config.database}: writable")
    for p in config.ports:
        findings.append(port_finding(p))
        what = f"port {p.name}: {p.url}, driver {p.driver} ({p.serial.describe()})"
        print(_line(what, findings[-1]))
    for folder in config.folders:
        findings.append(folder_finding(folder))
        what = (
            f"folder {folder.name}: {folder.path} ({folder.pattern}), driver {folder.driver}, "
            f"every {folder.poll_seconds:g} s"
        )
        print(_line(what, findings[-1]))
    if not config.ports and not config.folders:
        findings.append(Finding("no ports or folders configured: run would acquire nothing", True))
        print(f"  PROBLEM: {findings[-1].text}")
    for name, bands in config.thresholds.items():
        print(f"  thresholds {name}: {bands.describe()}")
    if config.sync:
        print(f"  {config.sync.describe()}")
    fatal = sum(finding.fatal for finding in findings)
    verdict = f"{fatal} problem(s) to fix before run" if fatal else "run can start"
    print(f"{args.file}: {verdict}")
    return 1 if fatal else 0
