"""The configuration's ``sync:`` section (``bia-acq sync``; validated by ``check-config``).

No psycopg here: the acquisition service and ``check-config`` load this module
without the ``[central]`` extra installed.
"""

from __future__ import annotations

import os
import re
import stat
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bia_acq.yamlfile import Doc

SYNC_KEYS = (
    "url",
    "host",
    "port",
    "dbname",
    "user",
    "site",
    "password_file",
    "pseudonym_key_file",
    "send_identifiers",
    "sslmode",
    "sslrootcert",
    "batch_size",
    "interval_s",
    "timeout_s",
)
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
SITE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
#: shortest group pseudonym key accepted (characters of the file, e.g. 64 hex digits)
MIN_KEY_CHARS = 32
EXAMPLE = (
    "e.g. sync: {url: 'postgresql://bia_site_north@db.example.org/bia', site: north, "
    "password_file: /etc/bia-acq/central.password}"
)


@dataclass(frozen=True)
class SyncConfig:
    """Where and how ``bia-acq sync`` pushes this site's database."""

    site: str
    url: str = ""  # libpq URL without the password ('' when given by separate keys)
    params: dict[str, str] = field(default_factory=dict)  # libpq keywords beside the URL
    password_file: Path | None = None
    pseudonym_key_file: Path | None = None  # the group's key: one subject across sites
    send_identifiers: bool = False  # patient IDs leave the site only when this is true
    batch_size: int = 5000  # measurements (frames, results: 6 times as many) per transaction
    interval_s: float = 60.0  # --follow: seconds between passes when up to date
    timeout_s: float = 30.0  # connect timeout; a silent connection is dropped after it

    def password(self) -> str | None:
        """The password, read now from its file (never kept in the configuration)."""
        return read_secret(self.password_file) if self.password_file else None

    def pseudonym_key(self) -> bytes | None:
        return read_secret(self.pseudonym_key_file).encode() if self.pseudonym_key_file else None

    def describe(self) -> str:
        """One line for check-config (no secrets)."""
        ids = "patient IDs sent" if self.send_identifiers else "pseudonyms only"
        key = "group pseudonym key" if self.pseudonym_key_file else "site's own pseudonyms"
        return (
            f"sync: site {self.site} to {self.where()}, {ids}, {key}, batches of "
            f"{self.batch_size}, every {self.interval_s:g} s with --follow"
        )

    def where(self) -> str:
        """The server as shown in logs: the URL or host/dbname (never a password)."""
        if self.url:
            return self.url
        return f"{self.params.get('host', 'localhost')}/{self.params.get('dbname', '')}"


def read_secret(path: Path) -> str:
    """The first line of a secret file, which must not be readable by group or others."""
    from bia_acq.errors import ConfigError

    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read {path}: {exc.strerror}",
            fix="create it readable by the sync service's user only (chmod 600)",
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{path} is readable by others (mode {stat.S_IMODE(mode):o})",
            fix=f"chmod 600 {path}",
        )
    line = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not line:
        raise ConfigError(f"{path} is empty", fix="write the secret on its first line")
    return line


def parse_sync(doc: Doc, raw: Any, base_dir: Path) -> SyncConfig | None:
    """Validate ``sync:``; None when the section is absent."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise doc.error("sync", "expected a mapping", EXAMPLE)
    doc.check_keys("sync", raw, SYNC_KEYS)

    def text(key: str, example: str) -> str:
        v = raw.get(key)
        if not isinstance(v, str) or not v.strip():
            raise doc.error(f"sync.{key}", f"expected text, got {v!r}", f"e.g. {key}: {example}")
        return v.strip()

    def path(key: str, example: str) -> Path | None:
        if key not in raw:
            return None
        p = Path(os.path.expanduser(text(key, example)))
        p = p if p.is_absolute() else base_dir / p
        if not p.is_file():
            raise doc.error(f"sync.{key}", f"file {p} does not exist", f"create it: {example}")
        try:
            read_secret(p)
        except Exception as exc:
            raise doc.error(f"sync.{key}", str(exc)) from None
        return p

    def number(key: str, default: float, lo: float) -> float:
        v = raw.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int | float) or v < lo:
            raise doc.error(f"sync.{key}", f"expected a number of at least {lo}, got {v!r}")
        return float(v)

    if "site" not in raw:
        raise doc.error("sync.site", "missing: the name this site is registered under", EXAMPLE)
    site = text("site", "north")
    if not SITE_NAME.match(site):
        raise doc.error(
            "sync.site",
            f"{site!r} is not a site name",
            "use 1-40 lower-case letters, digits, '-' or '_', starting with a letter or digit",
        )
    url = ""
    params: dict[str, str] = {}
    if "url" in raw:
        url = text("url", "postgresql://bia_site_north@db.example.org:5432/bia")
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("postgresql", "postgres"):
            raise doc.error(
                "sync.url", f"expected a postgresql:// URL, got scheme {u.scheme!r}", EXAMPLE
            )
        if u.password is not None or "password=" in u.query:
            raise doc.error(
                "sync.url",
                "the URL contains a password",
                "remove it from the URL and put it in the file named by sync.password_file",
            )
        if "password_file" not in raw and "passfile" not in u.query:
            raise doc.error(
                "sync.password_file",
                "missing",
                "name a file (mode 600) holding the site role's password, "
                "e.g. password_file: /etc/bia-acq/central.password",
            )
    for key in ("host", "dbname", "user"):
        if key in raw:
            params[key] = text(key, {"host": "db.example.org", "dbname": "bia"}.get(key, "x"))
    if "port" in raw:
        params["port"] = str(int(number("port", 5432, 1)))
    if not url and "host" not in params:
        raise doc.error("sync.url", "missing: give url (or host, dbname, user)", EXAMPLE)
    if "sslmode" in raw:
        mode = text("sslmode", "verify-full")
        if mode not in SSLMODES:
            raise doc.error(
                "sync.sslmode", f"unknown sslmode {mode!r}", f"use one of: {', '.join(SSLMODES)}"
            )
        params["sslmode"] = mode
    if "sslrootcert" in raw:
        cert = Path(text("sslrootcert", "/etc/bia-acq/central-ca.crt"))
        cert = cert if cert.is_absolute() else base_dir / cert
        if not cert.is_file():
            raise doc.error("sync.sslrootcert", f"file {cert} does not exist")
        params["sslrootcert"] = str(cert)
    send = raw.get("send_identifiers", False)
    if not isinstance(send, bool):
        raise doc.error("sync.send_identifiers", f"expected true or false, got {send!r}")
    key_file = path(
        "pseudonym_key_file", "openssl rand -hex 32 > /etc/bia-acq/group.key; chmod 600"
    )
    if key_file is not None and len(read_secret(key_file)) < MIN_KEY_CHARS:
        raise doc.error(
            "sync.pseudonym_key_file",
            f"the key in {key_file} is shorter than {MIN_KEY_CHARS} characters",
            "make one with openssl rand -hex 32 on one machine and copy it to every site",
        )
    return SyncConfig(
        site=site,
        url=url,
        params=params,
        password_file=path("password_file", "/etc/bia-acq/central.password, mode 600"),
        pseudonym_key_file=key_file,
        send_identifiers=send,
        batch_size=int(number("batch_size", 5000, 1)),
        interval_s=number("interval_s", 60.0, 0.1),
        timeout_s=number("timeout_s", 30.0, 1),
    )
