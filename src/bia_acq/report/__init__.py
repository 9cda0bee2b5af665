"""For the people who read the database: edema reports (HTML), exports (CSV, FHIR, HL7 v2)
and the Datasette metadata. Everything here opens the database read-only."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

METADATA_FILE = "datasette-metadata.json"


def datasette_metadata(database_name: str = "bia-acq") -> dict[str, Any]:
    """The shipped Datasette metadata, its database entry named ``database_name``.

    Datasette names a database after its file (``clinic.db`` → ``clinic``), so
    the entry is renamed to match the file being served.
    """
    text = resources.files(__package__).joinpath(METADATA_FILE).read_text(encoding="utf-8")
    meta: dict[str, Any] = json.loads(text)
    dbs = meta["databases"]
    meta["databases"] = {database_name: next(iter(dbs.values()))}
    return meta


def database_name(path: str | Path) -> str:
    """The name Datasette gives the database file ``path``."""
    return Path(path).stem
