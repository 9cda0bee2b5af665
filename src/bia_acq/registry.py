"""Registries: built-in things by name, plus those installed packages add under an
entry-point group (the pattern of python-can's interface table).

A :class:`Registry` is a read-only mapping. Built-ins are objects or
``"module:attribute"`` strings imported on first use; a plugin is loaded when it
is first asked for (or listed). A plugin that fails to import, or is not the
kind of object the registry holds, is logged once and left out: it never stops
the program; :meth:`Registry.problem` says why.

Registries: methods (:data:`bia_acq.core.methods.METHODS`, group
``bia_acq.methods``) and export formats (:data:`bia_acq.report.formats.FORMATS`,
group ``bia_acq.exports``); protocols keep their own table in
:mod:`bia_acq.protocols.base` (group ``bia_acq.protocols``).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class Registry(Mapping[str, T], Generic[T]):
    """``kind`` (for messages), the entry-point ``group``, the built-ins, and
    ``accept``: True for an object of the registry's kind."""

    def __init__(
        self,
        kind: str,
        group: str,
        builtin: Mapping[str, T | str],
        accept: Callable[[object], bool],
    ) -> None:
        self.kind = kind
        self.group = group
        self._builtin = dict(builtin)
        self._accept = accept
        self._loaded: dict[str, T] = {}
        self._problems: dict[str, str] = {}

    def _entry_points(self) -> dict[str, importlib.metadata.EntryPoint]:
        eps = importlib.metadata.entry_points(group=self.group)
        return {ep.name: ep for ep in eps if ep.name not in self._builtin}

    def names(self) -> list[str]:
        """Every name known, built-in or installed, without importing anything."""
        return sorted({*self._builtin, *self._entry_points()})

    def problem(self, name: str) -> str | None:
        """Why the plugin ``name`` is not available (None: it is, or is unknown)."""
        if name not in self._loaded and name not in self._builtin:
            self.get(name)
        return self._problems.get(name)

    def __getitem__(self, name: str) -> T:
        if name in self._loaded:
            return self._loaded[name]
        if name in self._builtin:
            value = self._builtin[name]
            obj = _import(value) if isinstance(value, str) else value
            if not self._accept(obj):
                raise TypeError(f"built-in {self.kind} {name!r} is not one")
            self._loaded[name] = obj  # type: ignore[assignment]
            return self._loaded[name]
        if name in self._problems:
            raise KeyError(name)
        ep = self._entry_points().get(name)
        if ep is None:
            raise KeyError(name)
        try:
            obj = ep.load()
            if not self._accept(obj):
                raise TypeError(f"{ep.value} is not a bia-acq {self.kind}")
        except Exception as exc:  # a broken plugin must not stop the program
            why = (
                f"{self.kind} {name!r} from plugin {ep.value!r} is not available: "
                f"{type(exc).__name__}: {exc} (reinstall or remove that package)"
            )
            self._problems[name] = why
            log.warning("%s", why)
            raise KeyError(name) from exc
        self._loaded[name] = obj
        return self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        """Built-ins in their order, then the plugins that load, by name."""
        yield from self._builtin
        for name in sorted(self._entry_points()):
            if self.get(name) is not None:
                yield name

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None


def _import(target: str) -> object:
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)
