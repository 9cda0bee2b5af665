"""Export formats: one registry, one writer signature.

An export format is an :class:`ExportFormat`: a name (``bia-acq export --format
NAME``), a one-line description and a writer::

    def write(out: IO[str], exports: Iterable[Export], ctx: ExportContext) -> Written

which writes every measurement of ``exports`` (:func:`bia_acq.report.export.measurements`)
to the text stream ``out`` and returns what it wrote (a count and what of). The
built-in formats are in :data:`BUILTIN` (``"module:attribute"``, imported when
used); an installed package adds one under the entry-point group
``bia_acq.exports`` (docs/extending.md, "An export format").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from bia_acq.errors import ConfigError
from bia_acq.registry import Registry

if TYPE_CHECKING:  # the CLI lists formats without importing the exports
    from bia_acq.report.export import Export

EXPORT_GROUP = "bia_acq.exports"


@dataclass(frozen=True)
class Written:
    """What a writer wrote: ``count`` items of ``what`` (``"row(s)"``)."""

    count: int
    what: str

    def __str__(self) -> str:
        return f"{self.count} {self.what}"


@dataclass(frozen=True)
class ExportContext:
    """What a writer may need besides the measurements."""

    #: write the patient IDs as sent (else pseudonyms only)
    include_identifiers: bool
    #: a stable, non-secret ID of the database (``export.database_fingerprint``)
    fingerprint: str
    #: this moment as ISO-8601 UTC text (seconds, ``Z``)
    now_utc: str


Writer = Callable[[IO[str], Iterable["Export"], ExportContext], Written]


@dataclass(frozen=True)
class ExportFormat:
    name: str
    description: str
    write: Writer


BUILTIN: dict[str, str] = {
    "csv": "bia_acq.report.csvout:FORMAT",
    "fhir": "bia_acq.report.fhir:FORMAT",
    "hl7": "bia_acq.report.hl7v2:FORMAT",
}

#: every export format by name: the built-ins, then those of installed plugins
FORMATS: Registry[ExportFormat] = Registry(
    "export format", EXPORT_GROUP, BUILTIN, lambda f: isinstance(f, ExportFormat)
)


def get_format(name: str) -> ExportFormat:
    """The format called ``name``; a one-line ``--format`` ConfigError if there is none."""
    try:
        return FORMATS[name]
    except KeyError:
        raise ConfigError(
            FORMATS.problem(name) or f"unknown export format {name!r}",
            key="--format",
            fix=f"use one of: {', '.join(FORMATS.names())}",
        ) from None
