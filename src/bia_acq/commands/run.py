"""`bia-acq run`."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bia_acq.service import Service
    from bia_acq.systemd import Notifier

from bia_acq.cli import (
    DEFAULT_DRIVER,
    LOG_LEVELS,
    Stop,
    log,
    positive_float,
    positive_int,
    setup_logging,
)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "run",
        help="acquire from the configured analyzers (no config: the built-in simulator)",
        description="Acquire measurements into SQLite. Without --config, runs the built-in "
        "simulated Tanita MC-780 on a pseudo-terminal into ./bia-acq.db (or --db): what it "
        "stores is marked simulated, and it refuses a database that holds an analyzer's "
        "measurements.",
    )
    p.add_argument(
        "--config", type=Path, help="configuration file (YAML), e.g. /etc/bia-acq/config.yaml"
    )
    p.add_argument("--db", type=Path, help="database file (overrides the configuration's)")
    p.add_argument("--count", type=positive_int, help="stop after N stored measurements")
    p.add_argument("--duration", type=positive_float, help="stop after SECONDS")
    p.add_argument(
        "--interval",
        type=positive_float,
        default=1.0,
        help="seconds between simulated measurements when no config is given (default 1)",
    )
    p.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        help="what to log on standard error (default: the configuration's log_level, or info)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from bia_acq.commands.check_config import refuse_unusable
    from bia_acq.config import Config, PortConfig, load_config
    from bia_acq.core.estimate import METHODS
    from bia_acq.drivers import get_profile
    from bia_acq.report.svg import ratio_text
    from bia_acq.service import Service
    from bia_acq.simulator.device import VirtualAnalyzer
    from bia_acq.store.writer import SavedMeasurement, short_pseudonym
    from bia_acq.systemd import Notifier

    stop = Stop()
    stop.install(hangup=args.config is not None)
    simulator = None
    sim_thread = None
    # on a signal the built-in simulator stops after the service, so the frame in hand is
    # finished; at --count it stops first, so no further measurement is stored
    sim_stop = threading.Event()
    if args.config:
        config = load_config(args.config)
        setup_logging(args.log_level or config.log_level)
        if args.db:
            config = dataclasses.replace(config, database=args.db)
        refuse_unusable(config, args.config, args.db is not None)
    else:
        setup_logging(args.log_level or "info")
        config = Config(database=args.db or Path("bia-acq.db"))
        refuse_unusable(config, None, args.db is not None)
        refuse_real_measurements(config.database)
        profile = get_profile(DEFAULT_DRIVER)
        simulator = VirtualAnalyzer(profile, interval_s=args.interval)
        path = simulator.open()
        log.info("no --config: acquiring from the built-in simulated %s on %s", profile.name, path)
        port = PortConfig("simulator", path, profile.name, profile, profile.serial, simulated=True)
        config = dataclasses.replace(config, ports=(port,))
        sim_thread = threading.Thread(
            target=simulator.run, args=(sim_stop,), name="simulator", daemon=True
        )

    stored = 0
    done = threading.Event()

    def limits(method: str) -> tuple[float | None, ...]:
        """The band limits the service classified by: the configuration's, else the method's."""
        bands = config.thresholds.get(method) or METHODS[method].bands
        if bands is None:  # no published band (issue 12)
            return ()
        return bands.normal_min, bands.normal_max, bands.slight_max

    def on_saved(m: SavedMeasurement) -> None:
        nonlocal stored
        wb = next((r for r in m.results if r["segment"] == "whole_body"), None)
        ratio = wb and wb["ecw_tbw_ratio"]
        text = (
            ratio_text(ratio, limits(str(wb["method"])))
            if wb and isinstance(ratio, float)
            else "n/a"
        )
        low, high = (wb.get("ecw_tbw_low"), wb.get("ecw_tbw_high")) if wb else (None, None)
        if isinstance(low, float) and isinstance(high, float):  # the 95 % interval (issue 12)
            text += f" [{low:.3f}-{high:.3f}]"
        cls = wb["classification"] if wb else "unknown"
        method = f"{wb['method']} v{wb['method_version']}" if wb else config.method
        print(
            f"{time.strftime('%Y-%m-%dT%H:%M:%S')} port={m.port} subject={short_pseudonym(m.subject_pseudonym or '-')} "
            f"measurement={m.measurement_id} ECW/TBW={text} {cls} ({method})",
            flush=True,
        )
        stored += 1
        if args.count and stored >= args.count:
            done.set()

    notifier = Notifier()
    service = Service(config, on_saved=on_saved)
    try:
        service.start()
        log.info("storing into %s", config.database)
        notifier.ready(service.describe())
        if sim_thread is not None:
            sim_thread.start()
        deadline = time.monotonic() + args.duration if args.duration else None
        while not stop.event.is_set() and not done.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            if stop.reload.is_set():
                stop.reload.clear()
                _reload(args, service, notifier)
            service.supervise(notifier)
            if service.writer_failed is not None:  # systemd restarts us (Restart=on-failure)
                break
            stop.event.wait(0.1)
    finally:
        notifier.stopping()
        if done.is_set():  # --count reached: the built-in simulator sends no more
            sim_stop.set()
        stop.event.set()
        service.stop()
        sim_stop.set()
        if sim_thread is not None and sim_thread.is_alive():
            sim_thread.join(2)
        if simulator is not None:
            simulator.close()
        notifier.close()
    log.info("stopped after %d stored measurement(s)", stored)
    if service.writer_failed is not None:
        log.error("exiting with status 1: the database writer stopped (%s)", service.writer_failed)
        return 1
    if service.lost_bytes:
        log.error("%d received byte(s) could not be kept", service.lost_bytes)
        return 1
    return 0


def refuse_real_measurements(database: Path) -> None:
    """The built-in simulator's patients never go into a database holding real ones.

    Real: measured by a device not marked simulated (``device.simulated``, migration
    m006); in a database written before the mark every measurement counts as real.
    """
    import sqlite3

    from bia_acq.errors import ConfigError
    from bia_acq.store.db import open_readonly

    if not database.is_file():
        return
    conn = open_readonly(database)
    try:
        try:
            real = conn.execute(
                "SELECT count(*) FROM measurement m JOIN device d ON d.id = m.device_id"
                " WHERE NOT d.simulated"
            ).fetchone()[0]
        except sqlite3.OperationalError:  # no mark yet (or no tables: not ours to judge here)
            try:
                real = conn.execute("SELECT count(*) FROM measurement").fetchone()[0]
            except sqlite3.OperationalError:
                real = 0
    finally:
        conn.close()
    if real:
        raise ConfigError(
            f"{database} holds {real} measurement(s) from analyzers; without --config, run "
            "stores simulated patients and never into such a database",
            key="--db",
            fix="give a new file, e.g. --db demo.db, or run --config FILE to acquire from "
            "the analyzers",
        )


def _reload(args: argparse.Namespace, service: Service, notifier: Notifier) -> None:
    """SIGHUP: read the configuration again; a broken file keeps the running one."""
    import dataclasses

    from bia_acq.config import load_config
    from bia_acq.errors import BiaError

    notifier.reloading()
    try:
        config = load_config(args.config)
        if args.db:
            config = dataclasses.replace(config, database=args.db)
    except BiaError as exc:
        log.error("reload refused, the running configuration stays: %s", exc)
    else:
        logging.getLogger().setLevel(getattr(logging, (args.log_level or config.log_level).upper()))
        log.info("reloading %s", config.source)
        service.reload(config)
    notifier.ready(service.describe())
