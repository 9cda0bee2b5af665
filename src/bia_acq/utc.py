"""Time as the database and the command line write it: one helper each.

Stored times are ISO-8601 UTC text with a ``Z`` and milliseconds beside epoch
seconds (DESIGN "The database"); ``--since`` takes an ISO date or date-time,
UTC unless it carries an offset.
"""

from __future__ import annotations

import datetime as dt
import time

from bia_acq.errors import ConfigError


def utc_text(epoch: float, timespec: str = "milliseconds") -> str:
    """ISO-8601 UTC text with a Z, millisecond precision (``timespec="seconds"``: the
    stamps of exports and reports)."""
    t = dt.datetime.fromtimestamp(epoch, dt.UTC)
    return t.isoformat(timespec=timespec).replace("+00:00", "Z")


def utc_now(timespec: str = "milliseconds") -> str:
    """:func:`utc_text` of this moment."""
    return utc_text(time.time(), timespec)


def parse_since(text: str) -> float:
    """``--since``: an ISO date or date-time; without a zone it is UTC. Epoch seconds.

    A one-line ConfigError (exit 2) naming ``--since`` when it is not a date.
    """
    try:
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"{text!r} is not a date or ISO date-time",
            key="--since",
            fix="use an ISO date such as 2026-09-01 or 2026-09-01T08:00",
        ) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.timestamp()
