"""Configuration: one YAML file loaded into frozen dataclasses.

Every mistake becomes one :class:`~bia_acq.errors.ConfigError` line naming the
file, the line, the key path, what was expected and how to fix it. Relative
paths in the file are relative to the file's folder.
"""

from __future__ import annotations

import grp
import os
import stat
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from bia_acq.central.config import SyncConfig, parse_sync
from bia_acq.core.estimate import METHODS
from bia_acq.core.methods import Bands, site_bands
from bia_acq.drivers import Profile, SerialSettings, all_profiles, parse_serial
from bia_acq.errors import BiaError, ConfigError
from bia_acq.yamlfile import Doc, load

TOP_KEYS = (
    "database",
    "database_group",
    "method",
    "thresholds",
    "ports",
    "folders",
    "drivers_dir",
    "log_level",
    "sync",
)
BAND_KEYS = ("normal_min", "normal_max", "slight_max")
PORT_KEYS = ("name", "url", "driver", "serial", "timezone", "silence_s")
FOLDER_KEYS = ("name", "path", "driver", "poll_seconds", "pattern", "timezone", "settle_seconds")
LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class PortConfig:
    """One analyzer connection."""

    name: str
    url: str
    driver: str
    profile: Profile
    serial: SerialSettings
    timezone: str | None = None  # IANA zone of the device clock; None: this PC's zone
    silence_s: float | None = None  # drop a partial frame after this silence; None: profile's
    simulated: bool = False  # the built-in simulator of `run` without --config: marked as such


@dataclass(frozen=True)
class FolderConfig:
    """A folder an analyzer's software exports result files into (read only, never changed)."""

    name: str
    path: Path
    driver: str
    profile: Profile
    poll_seconds: float = 5.0
    pattern: str = "*.csv"
    timezone: str | None = None
    #: a file is read once it has not changed for this long (None: one poll interval),
    #: so a row the exporting program is still writing is never taken half written
    settle_seconds: float | None = None


#: ``method: default``: each port uses its driver profile's ``default_method``
DEFAULT_METHOD = "default"


@dataclass(frozen=True)
class Config:
    database: Path
    method: str = "hanai-bis"

    @property
    def report_method(self) -> str:
        """The method the reader views show: the configured one, or with ``method:
        default`` the default of the first port's (or folder's) profile."""
        if self.method != DEFAULT_METHOD:
            return self.method
        profiles = [p.profile for p in self.ports] + [f.profile for f in self.folders]
        return next((p.default_method for p in profiles if p.default_method), "hanai-bis")

    ports: tuple[PortConfig, ...] = ()
    folders: tuple[FolderConfig, ...] = ()
    drivers_dir: Path | None = None
    log_level: str = "info"
    source: str = ""
    database_group: str | None = None  # group that may read the database (mode 0640)
    #: ECW/TBW bands per method name overriding the method's own (``thresholds:``)
    thresholds: Mapping[str, Bands] = field(default_factory=lambda: MappingProxyType({}))
    sync: SyncConfig | None = None  # ``sync:``, the central database (bia_acq.central)


def _text(doc: Doc, key: str, value: Any, example: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise doc.error(
            key, f"expected text, got {value!r}", f"e.g. {key.rpartition('.')[2]}: {example}"
        )
    return value


def parse(doc: Doc, base_dir: Path) -> Config:
    """The configuration document → :class:`Config`, every value checked (the first
    mistake raises a ConfigError that names the key and what to write)."""
    d = doc.data
    doc.check_keys("", d, TOP_KEYS)
    database = _database(doc, d, base_dir)
    method = _method(doc, d)
    log_level = _log_level(doc, d)
    group = _group(doc, d)
    drivers_dir = _drivers_dir(doc, d, base_dir)
    profiles = _profiles(doc, drivers_dir)
    names: set[str] = set()  # ports and folders share one namespace
    ports = _ports(doc, d.get("ports", []), profiles, names)
    folders = _folders(doc, d.get("folders", []), base_dir, profiles, names)
    return Config(
        database=database,
        method=method,
        ports=ports,
        source=doc.file,
        folders=folders,
        drivers_dir=drivers_dir,
        log_level=log_level,
        database_group=group,
        thresholds=MappingProxyType(parse_thresholds(doc, d.get("thresholds", {}))),
        sync=parse_sync(doc, d.get("sync"), base_dir),
    )


def _database(doc: Doc, d: dict[str, Any], base_dir: Path) -> Path:
    database = Path(
        _text(doc, "database", d.get("database", "bia-acq.db"), "/var/lib/bia-acq/bia-acq.db")
    )
    return database if database.is_absolute() else base_dir / database


def _method(doc: Doc, d: dict[str, Any]) -> str:
    method = d.get("method", "hanai-bis")
    if method not in METHODS and method != DEFAULT_METHOD:
        raise doc.error(
            "method",
            f"unknown method {method!r}",
            f"use one of: {', '.join(sorted(METHODS))}, or '{DEFAULT_METHOD}' (each "
            "analyzer profile's default_method)",
        )
    return str(method)


def _log_level(doc: Doc, d: dict[str, Any]) -> str:
    log_level = d.get("log_level", "info")
    if log_level not in LOG_LEVELS:
        raise doc.error("log_level", f"expected one of {', '.join(LOG_LEVELS)}, got {log_level!r}")
    return str(log_level)


def _group(doc: Doc, d: dict[str, Any]) -> str | None:
    """``database_group``: a group that exists here, or None."""
    group = d.get("database_group")
    if group is None:
        return None
    group = _text(doc, "database_group", group, "bia-reports")
    try:
        grp.getgrnam(group)
    except KeyError:
        raise doc.error(
            "database_group",
            f"no group {group!r} on this system",
            f"create it (groupadd {group}) or remove the key",
        ) from None
    return group


def _drivers_dir(doc: Doc, d: dict[str, Any], base_dir: Path) -> Path | None:
    if "drivers_dir" not in d:
        return None
    drivers_dir = Path(_text(doc, "drivers_dir", d["drivers_dir"], "/etc/bia-acq/drivers"))
    if not drivers_dir.is_absolute():
        drivers_dir = base_dir / drivers_dir
    if not drivers_dir.is_dir():
        raise doc.error(
            "drivers_dir", f"folder {drivers_dir} does not exist", "create it or remove the key"
        )
    return drivers_dir


def _profiles(doc: Doc, drivers_dir: Path | None) -> dict[str, Profile]:
    """Built-in device profiles and the site's (``drivers_dir``)."""
    try:
        return all_profiles([drivers_dir] if drivers_dir else [])
    except BiaError as exc:
        raise doc.error("drivers_dir", str(exc)) from None


def _ports(
    doc: Doc, raw: Any, profiles: dict[str, Profile], names: set[str]
) -> tuple[PortConfig, ...]:
    """The ``ports:`` list: serial analyzers."""
    if not isinstance(raw, list):
        raise doc.error(
            "ports",
            "expected a list of ports",
            "each item: {url: /dev/ttyUSB0, driver: tanita-mc780}",
        )
    return tuple(_port(doc, f"ports[{i}]", p, profiles, names) for i, p in enumerate(raw))


def _port(doc: Doc, key: str, p: Any, profiles: dict[str, Profile], names: set[str]) -> PortConfig:
    if not isinstance(p, dict):
        raise doc.error(
            key,
            "expected a mapping with url and driver",
            "e.g. - {url: /dev/ttyUSB0, driver: tanita-mc780}",
        )
    doc.check_keys(key, p, PORT_KEYS)
    if "url" not in p:
        raise doc.error(
            key, "missing 'url'", "the serial device path or a pyserial URL, e.g. /dev/ttyUSB0"
        )
    url = _text(doc, f"{key}.url", p["url"], "/dev/serial/by-id/usb-FTDI_...")
    driver = _driver(
        doc, key, p, profiles, f"one of: {', '.join(sorted(profiles))}", "tanita-mc780"
    )
    profile = profiles[driver]
    serial = profile.serial
    if "serial" in p:
        serial = parse_serial(doc, f"{key}.serial", p["serial"], profile.serial)
    name = _text(doc, f"{key}.name", p.get("name", url), "ward-3-mc780")
    _claim_name(doc, key, name, names, f"port name {name!r}", "give each port its own name")
    tz = _timezone(doc, key, p.get("timezone"))
    silence = p.get("silence_s")
    if silence is not None and (
        isinstance(silence, bool) or not isinstance(silence, int | float) or silence <= 0
    ):
        raise doc.error(
            f"{key}.silence_s",
            f"expected a number of seconds above 0, got {silence!r}",
            "e.g. silence_s: 2",
        )
    return PortConfig(name, url, driver, profile, serial, tz, float(silence) if silence else None)


def _driver(
    doc: Doc, key: str, item: dict[str, Any], profiles: dict[str, Profile], missing: str, eg: str
) -> str:
    """The item's ``driver``: a known profile's name (``missing``: the fix when absent)."""
    if "driver" not in item:
        raise doc.error(key, "missing 'driver'", missing)
    driver = _text(doc, f"{key}.driver", item["driver"], eg)
    if driver not in profiles:
        raise doc.error(
            f"{key}.driver",
            f"unknown driver {driver!r}",
            f"use one of: {', '.join(sorted(profiles))} (see `bia-acq drivers`)",
        )
    return driver


def _claim_name(doc: Doc, key: str, name: str, names: set[str], what: str, fix: str) -> None:
    """Add a port's or folder's name to ``names``; an error if it is there already."""
    if name in names:
        raise doc.error(f"{key}.name", f"{what} is used twice", fix)
    names.add(name)


def _timezone(doc: Doc, key: str, tz: Any) -> str | None:
    if tz is None:
        return None
    tz = _text(doc, f"{key}.timezone", tz, "Europe/Berlin")
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise doc.error(
            f"{key}.timezone", f"unknown time zone {tz!r}", "use an IANA name such as Europe/Berlin"
        ) from None
    return str(tz)


def _folders(
    doc: Doc, raw: Any, base_dir: Path, profiles: dict[str, Profile], names: set[str]
) -> tuple[FolderConfig, ...]:
    """The ``folders:`` list: export folders watched beside the serial ports."""
    example = "each item: {path: /srv/inbody-export, driver: inbody-lookinbody-csv}"
    if not isinstance(raw, list):
        raise doc.error("folders", "expected a list of folders", example)
    out: list[FolderConfig] = []
    for i, f in enumerate(raw):
        key = f"folders[{i}]"
        if not isinstance(f, dict):
            raise doc.error(key, "expected a mapping with path and driver", example)
        doc.check_keys(key, f, FOLDER_KEYS)
        if "path" not in f:
            raise doc.error(key, "missing 'path'", "the folder the analyzer software exports to")
        path = Path(_text(doc, f"{key}.path", f["path"], "/srv/inbody-export"))
        if not path.is_absolute():
            path = base_dir / path
        if path.exists() and not path.is_dir():
            raise doc.error(f"{key}.path", f"{path} is not a folder", "name the export folder")
        driver = _driver(
            doc, key, f, profiles, "e.g. driver: inbody-lookinbody-csv", "inbody-lookinbody-csv"
        )
        poll = f.get("poll_seconds", 5.0)
        if isinstance(poll, bool) or not isinstance(poll, int | float) or not 0 < poll <= 3600:
            raise doc.error(
                f"{key}.poll_seconds",
                f"expected a number of seconds above 0 and at most 3600, got {poll!r}",
                "e.g. poll_seconds: 5",
            )
        pattern = _text(doc, f"{key}.pattern", f.get("pattern", "*.csv"), '"*.csv"')
        if "/" in pattern:
            raise doc.error(f"{key}.pattern", "a file name pattern has no '/'", 'e.g. "*.csv"')
        name = _text(doc, f"{key}.name", f.get("name", str(path)), "inbody-export")
        _claim_name(
            doc, key, name, names, f"name {name!r}", "give each port and folder its own name"
        )
        tz = _timezone(doc, key, f.get("timezone"))
        settle = f.get("settle_seconds")
        if settle is not None and (
            isinstance(settle, bool)
            or not isinstance(settle, int | float)
            or not 0 <= settle <= 3600
        ):
            raise doc.error(
                f"{key}.settle_seconds",
                f"expected a number of seconds from 0 to 3600, got {settle!r}",
                "e.g. settle_seconds: 10 (how long a file must be unchanged before it is read)",
            )
        out.append(
            FolderConfig(
                name,
                path,
                driver,
                profiles[driver],
                float(poll),
                pattern,
                tz,
                None if settle is None else float(settle),
            )
        )
    return tuple(out)


def parse_thresholds(doc: Doc, raw: Any) -> dict[str, Bands]:
    """``thresholds: {METHOD: {normal_min, normal_max, slight_max}}`` → Bands per method."""
    example = "e.g. thresholds: {hanai-bis: {normal_max: 0.44, slight_max: 0.45}}"
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise doc.error("thresholds", "expected a mapping of method names to bands", example)
    out: dict[str, Bands] = {}
    for name, spec in raw.items():
        key = f"thresholds.{name}"
        if name not in METHODS:
            raise doc.error(
                key, f"unknown method {name!r}", f"use one of: {', '.join(sorted(METHODS))}"
            )
        if not isinstance(spec, dict):
            raise doc.error(key, "expected a mapping with normal_max and slight_max", example)
        doc.check_keys(key, spec, BAND_KEYS)
        values: dict[str, float | None] = {}
        for k, v in spec.items():
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v < 1:
                raise doc.error(
                    f"{key}.{k}", f"expected an ECW/TBW ratio between 0 and 1, got {v!r}"
                )
            values[k] = float(v)
        if "normal_max" not in values:
            raise doc.error(key, "missing normal_max", example)
        bands = site_bands(**values)  # type: ignore[arg-type]
        lo = bands.normal_min if bands.normal_min is not None else 0.0
        top = bands.slight_max if bands.slight_max is not None else bands.normal_max
        if not lo < bands.normal_max <= top:
            raise doc.error(
                key,
                f"bands out of order (normal_min {bands.normal_min}, normal_max "
                f"{bands.normal_max}, slight_max {bands.slight_max})",
                "need normal_min < normal_max ≤ slight_max",
            )
        out[name] = bands
    return out


def load_config(path: str | os.PathLike[str]) -> Config:
    """Load and validate a configuration file."""
    p = Path(path)
    if p.is_file():  # a directory or a missing file: yamlfile.load says so
        mode = p.stat().st_mode
        if mode & stat.S_IWOTH:
            raise ConfigError(
                "configuration file is world-writable, refusing to use it",
                file=str(p),
                fix=f"chmod o-w {p}",
            )
    doc = load(p)
    return parse(doc, p.resolve().parent)
