"""YAML loading that remembers where each key was, for one-line error messages.

Aliases (``*name``) are bounded: a document whose aliases would expand it to more
than :data:`MAX_NODES` values, or that refers to itself, is refused before anything
is built from it (a "billion laughs" file costs milliseconds, not memory or minutes).
PyYAML composes each anchored node once and lets aliases point at it, so the
document's expanded size is counted over that graph with one memo per node.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from bia_acq.errors import ConfigError


class Doc:
    """A loaded YAML document plus the line of every key path (``ports[0].driver``)."""

    def __init__(self, data: Any, lines: dict[str, int], file: str) -> None:
        self.data = data
        self.lines = lines
        self.file = file

    def error(self, key: str, problem: str, fix: str | None = None) -> ConfigError:
        line = self.lines.get(key)
        if line is None:  # point at the nearest parent that has a line
            parent = key
            while parent and line is None:
                parent = parent.rpartition(".")[0] if "." in parent else ""
                line = self.lines.get(parent)
        return ConfigError(problem, file=self.file, key=key or None, line=line, fix=fix)

    def check_keys(self, key: str, mapping: dict[str, Any], allowed: Iterable[str]) -> None:
        allowed = list(allowed)
        for k in mapping:
            if k not in allowed:
                near = difflib.get_close_matches(str(k), allowed, n=1)
                hint = (
                    f"did you mean {near[0]!r}?" if near else f"allowed keys: {', '.join(allowed)}"
                )
                raise self.error(_join(key, str(k)), f"unknown key {k!r}", hint)


#: values (scalars, lists, mappings) a document may hold once its aliases are expanded;
#: the largest shipped file (a driver profile) holds about a hundred
MAX_NODES = 10_000


def _expanded_size(root: yaml.Node, file: str) -> int:
    """How many values ``root`` holds with every alias expanded; ConfigError past
    MAX_NODES or on a node that contains itself. Linear in the distinct nodes."""
    size: dict[int, int] = {}
    on_path: set[int] = set()
    # iterative post-order walk: a deep document must not exhaust Python's stack
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            total = 1
            if isinstance(node, yaml.MappingNode):
                total += sum(size[id(k)] + size[id(v)] for k, v in node.value)
            elif isinstance(node, yaml.SequenceNode):
                total += sum(size[id(v)] for v in node.value)
            if total > MAX_NODES:
                raise ConfigError(
                    f"YAML aliases expand to more than {MAX_NODES:,} values",
                    file=file,
                    line=node.start_mark.line + 1,
                    fix="write the values out instead of nesting aliases (*name)",
                )
            size[key] = total
            continue
        if key in size:
            continue
        if key in on_path:
            raise ConfigError(
                "a YAML alias refers to a value that contains it",
                file=file,
                line=node.start_mark.line + 1,
                fix="remove the self-referring alias (*name)",
            )
        on_path.add(key)
        stack.append((node, True))
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                stack += [(k, False), (v, False)]
        elif isinstance(node, yaml.SequenceNode):
            stack += [(v, False) for v in node.value]
    return size[id(root)]


def _join(parent: str, key: str) -> str:
    return f"{parent}.{key}" if parent else key


def _walk(node: yaml.Node, path: str, lines: dict[str, int], loader: yaml.SafeLoader) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for knode, vnode in node.value:
            k = loader.construct_object(knode, deep=True)
            child = _join(path, str(k))
            lines[child] = knode.start_mark.line + 1
            out[k] = _walk(vnode, child, lines, loader)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_walk(v, f"{path}[{i}]", lines, loader) for i, v in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def load(path: str | Path, what: str = "configuration file") -> Doc:
    """Read a YAML file; ConfigError (one line, with line number) on any problem."""
    p = Path(path)
    file = str(p)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} not found", file=file, fix="check the path") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} is a directory", file=file, fix="name a YAML file") from None
    except PermissionError:
        raise ConfigError(
            f"{what} cannot be read (permission denied)", file=file, fix="check its owner and mode"
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{what} is not UTF-8 text (byte {exc.start})", file=file, fix="save it as UTF-8"
        ) from None
    return loads(text, file, what)


def loads(text: str, file: str, what: str = "configuration file") -> Doc:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _expanded_size(node, file)
        lines: dict[str, int] = {}
        data = _walk(node, "", lines, loader) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        problem = (exc.problem or "invalid YAML").strip()
        raise ConfigError(
            f"invalid YAML: {problem}",
            file=file,
            line=mark.line + 1 if mark else None,
            fix=f"fix the syntax near column {mark.column + 1}" if mark else "fix the YAML syntax",
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", file=file, fix="fix the YAML syntax") from None
    finally:
        loader.dispose()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{what} must be a mapping of keys to values", file=file, line=1)
    return Doc(data, lines, file)
