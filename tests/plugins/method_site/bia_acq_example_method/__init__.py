"""A test plugin for bia-acq's registries: one method, one export format, one mistake.

The method is hanai-bis under another name: a real plugin brings its own
``compute`` (and its citation); this one shows that a plugin's method runs on the same
path as the built-in ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import IO

from bia_acq.core.methods import BUILTIN_METHODS
from bia_acq.report.export import Export
from bia_acq.report.formats import ExportContext, ExportFormat, Written

EXAMPLE = replace(
    BUILTIN_METHODS["hanai-bis"],
    name="example-tbw",
    version="1",
    description="test plugin: hanai-bis under another name",
)

NOT_A_METHOD = "a string, not a Method"


def _write_ids(out: IO[str], exports: Iterable[Export], ctx: ExportContext) -> Written:
    n = 0
    for e in exports:
        out.write(f"{e.measurement['measurement_id']}\n")
        n += 1
    return Written(n, "id(s)")


IDS = ExportFormat("ids", "measurement ids, one a line (test plugin)", _write_ids)
