"""Device profiles: which protocol, which serial settings, which options, per analyzer model.

Profiles are YAML files. The built-in ones live in the project's ``drivers/``
folder and ship inside the wheel as the package ``bia_acq.profiles``; a
configured folder (e.g. ``/etc/bia-acq/drivers/``) adds profiles or overrides
built-ins of the same name.
"""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bia_acq.dialogue import Dialogue, DialogueError, parse_dialogue
from bia_acq.errors import ConfigError, DriverNotAvailable
from bia_acq.protocols.base import Protocol, load_protocol
from bia_acq.yamlfile import Doc, load, loads

PARITIES = {"N": "none", "E": "even", "O": "odd", "M": "mark", "S": "space"}


@dataclass(frozen=True)
class SerialSettings:
    """Line settings, in pyserial's terms."""

    baudrate: int = 9600
    bytesize: int = 8
    parity: str = "N"
    stopbits: float = 1
    xonxoff: bool = False
    rtscts: bool = False

    def describe(self) -> str:
        stop = int(self.stopbits) if self.stopbits == int(self.stopbits) else self.stopbits
        flow = "xon/xoff" if self.xonxoff else "rts/cts" if self.rtscts else "no flow control"
        return f"{self.baudrate} {self.bytesize}{self.parity}{stop}, {flow}"


def parse_serial(doc: Doc, key: str, value: Any, base: SerialSettings) -> SerialSettings:
    """Validate a ``serial:`` mapping and apply it over ``base``."""
    if not isinstance(value, dict):
        raise doc.error(
            key, "must be a mapping", "e.g. {baudrate: 9600, bytesize: 8, parity: N, stopbits: 1}"
        )
    doc.check_keys(key, value, ["baudrate", "bytesize", "parity", "stopbits", "xonxoff", "rtscts"])
    out = base
    for k, v in value.items():
        sub = f"{key}.{k}"
        if k == "baudrate":
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise doc.error(sub, f"expected a positive whole number, got {v!r}", "e.g. 9600")
        elif k == "bytesize":
            if v not in (5, 6, 7, 8) or isinstance(v, bool):
                raise doc.error(sub, f"expected 5, 6, 7 or 8, got {v!r}", "most analyzers use 8")
        elif k == "parity":
            v = str(v).upper()[:1] if isinstance(v, str) else v
            if v not in PARITIES:
                raise doc.error(
                    sub, f"expected one of N, E, O, M, S, got {value[k]!r}", "most analyzers use N"
                )
        elif k == "stopbits":
            if v not in (1, 1.5, 2) or isinstance(v, bool):
                raise doc.error(sub, f"expected 1, 1.5 or 2, got {v!r}", "most analyzers use 1")
        elif not isinstance(v, bool):
            raise doc.error(sub, f"expected true or false, got {v!r}")
        out = replace(out, **{k: v})
    return out


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    protocol: str
    serial: SerialSettings
    options: Mapping[str, Any] = field(default_factory=dict)
    simulator: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""
    #: "serial": the device sends on a serial line; "folder": its software exports files
    #: into a folder (a configuration's ``folders:``), never read from a serial port
    link: str = "serial"
    #: polled analyzers (PC mode): the commands to send; None: the device talks unasked
    dialogue: Dialogue | None = None
    #: the estimation method chosen for what this analyzer measures (docs/physiology.md)
    default_method: str = ""
    #: stated measurement uncertainty {relative, absolute_ohm, source}; None: the default
    uncertainty: Mapping[str, Any] | None = None

    def codec(self) -> Protocol:
        """A protocol codec configured with this profile's options."""
        cls = load_protocol(self.protocol)
        try:
            return cls(self.options)
        except (ValueError, TypeError, KeyError) as exc:
            raise ConfigError(
                f"driver profile {self.name!r}: options: {exc}",
                file=self.source or None,
                fix=f"see the {self.protocol!r} protocol's options in docs/protocols.md",
            ) from None


PROFILE_KEYS = (
    "name",
    "description",
    "protocol",
    "link",
    "serial",
    "options",
    "simulator",
    "dialogue",
    "default_method",
    "uncertainty",
)
UNCERTAINTY_KEYS = ("relative", "absolute_ohm", "source")
LINKS = ("serial", "folder")


def parse_profile(doc: Doc) -> Profile:
    d = doc.data
    doc.check_keys("", d, PROFILE_KEYS)
    for k in ("name", "protocol"):
        if not isinstance(d.get(k), str) or not d[k]:
            raise doc.error(k, f"missing or not text: every profile needs '{k}'")
    for k in ("options", "simulator", "dialogue"):
        if not isinstance(d.get(k, {}), dict):
            raise doc.error(k, "must be a mapping")
    link = d.get("link", "serial")
    if link not in LINKS:
        raise doc.error("link", f"expected serial or folder, got {link!r}", "default: serial")
    serial = parse_serial(doc, "serial", d.get("serial", {}), SerialSettings())
    default_method = d.get("default_method", "")
    if default_method:
        from bia_acq.core.methods import METHODS

        if default_method not in METHODS:
            raise doc.error(
                "default_method",
                f"unknown method {default_method!r}",
                f"use one of: {', '.join(sorted(METHODS))}",
            )
    unc = d.get("uncertainty")
    if unc is not None:
        if not isinstance(unc, dict):
            raise doc.error("uncertainty", "must be a mapping", "e.g. {relative: 0.01, ...}")
        doc.check_keys("uncertainty", unc, UNCERTAINTY_KEYS)
        for k in ("relative", "absolute_ohm"):
            v = unc.get(k)
            if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
                raise doc.error(f"uncertainty.{k}", f"expected a number ≥ 0, got {v!r}")
        if not isinstance(unc.get("source"), str) or not unc["source"]:
            raise doc.error("uncertainty.source", "say where the figures come from")
    dialogue = None
    if "dialogue" in d:
        try:
            dialogue = parse_dialogue(d["dialogue"])
        except DialogueError as exc:
            raise doc.error(exc.key, exc.problem) from None
    return Profile(
        name=d["name"],
        description=str(d.get("description", "")),
        protocol=d["protocol"],
        serial=serial,
        options=dict(d.get("options", {})),
        simulator=dict(d.get("simulator", {})),
        source=doc.file,
        link=link,
        dialogue=dialogue,
        default_method=str(default_method),
        uncertainty=unc,
    )


def builtin_profiles() -> dict[str, Profile]:
    """The shipped profiles by name: a new dict each call, the files parsed once a process."""
    return dict(_builtin_profiles())


@functools.cache
def _builtin_profiles() -> dict[str, Profile]:
    out: dict[str, Profile] = {}
    for entry in importlib.resources.files("bia_acq.profiles").iterdir():
        if entry.name.endswith(".yaml"):
            doc = loads(
                entry.read_text(encoding="utf-8"), f"<built-in>/{entry.name}", "driver profile"
            )
            p = parse_profile(doc)
            out[p.name] = p
    return out


def all_profiles(extra_dirs: Sequence[Path] = ()) -> dict[str, Profile]:
    """Built-in profiles, then each folder's, later ones overriding by name."""
    out = builtin_profiles()
    for folder in extra_dirs:
        if not folder.is_dir():
            raise ConfigError(
                f"driver folder {folder} does not exist", fix="create it or remove drivers_dir"
            )
        for path in sorted(folder.glob("*.yaml")):
            p = parse_profile(load(path, "driver profile"))
            out[p.name] = p
    return out


def get_profile(name: str, extra_dirs: Sequence[Path] = ()) -> Profile:
    profiles = all_profiles(extra_dirs)
    if name not in profiles:
        raise DriverNotAvailable(
            f"unknown driver {name!r}; known drivers: {', '.join(sorted(profiles))} "
            "(see `bia-acq drivers`)"
        )
    return profiles[name]
