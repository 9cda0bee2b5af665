"""The documentation stays true: set-up commands, links, every command and flag it shows.

The README and the pages in docs/ are read as a new user reads them: every relative link
must lead to a file (and heading) that exists, every ``bia-acq`` command written in code
must exist with the flags shown, and the README's commands table must list exactly the
flags the parser has.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
from conftest import run_cli

from bia_acq.cli import build_parser

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
TEST_COMMAND = (
    "python3 -m venv .venv && .venv/bin/pip install '.[test]' && .venv/bin/python -m pytest"
)
RUN_COMMAND = "python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/bia-acq run"
#: flags every command takes, named once under the README's commands table
COMMON_FLAGS = {"-h", "--help", "--log-level"}

FENCE = re.compile(r"^[ \t]*```[^\n]*\n(.*?)^[ \t]*```", re.M | re.S)
INLINE = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")
COMMAND = re.compile(r"(?:^|(?<=[\s/(]))(?<!-[ugo] )bia-acq ([a-z][a-z-]*)(.*)")


def leaf_parsers() -> dict[str, argparse.ArgumentParser]:
    """'run', 'worklist add', …: every command a user can call, by its words."""
    out: dict[str, argparse.ArgumentParser] = {}

    def walk(prefix: str, parser: argparse.ArgumentParser) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            out[prefix] = parser
        for action in subs:
            for name, child in action.choices.items():
                walk(f"{prefix} {name}".strip(), child)

    walk("", build_parser())
    return out


PARSERS = leaf_parsers()


def flags(parser: argparse.ArgumentParser) -> set[str]:
    return {s for a in parser._actions for s in a.option_strings}


def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text())
    return {slug(m) for m in re.findall(r"^#+ (.+)$", text, re.M)}


def code_of(text: str) -> list[str]:
    """The code a page shows: fenced blocks line by line, then inline spans."""
    blocks = [line for block in FENCE.findall(text) for line in block.splitlines()]
    return blocks + INLINE.findall(FENCE.sub("", text))


def shown_commands(text: str) -> list[tuple[str, str, list[str]]]:
    """(command words, the code as written, its flags) for each ``bia-acq CMD …`` shown."""
    found = []
    for code in code_of(text):
        for m in COMMAND.finditer(code):
            words, rest = m.group(1), re.split(r"\s#|&&|;|\s>|(?<!\\)\|\s", m.group(2))[0]
            second = re.match(r" ([a-z]+)\b", rest)
            if second and f"{words} {second.group(1)}" in PARSERS:
                words += second.group(0)
            found.append((words, m.group(0), re.findall(r"(?<![\w-])--?[a-z][a-z0-9-]*", rest)))
    return found


def test_readme_has_the_two_setup_commands_and_ci_runs_the_test_one() -> None:
    assert RUN_COMMAND in README and TEST_COMMAND in README
    assert TEST_COMMAND in (REPO / ".ci" / "run").read_text()


def test_readme_is_short_and_testing_follows_the_quick_start() -> None:
    assert len(README.encode()) < 15_000
    headings = re.findall(r"^## (.+)$", FENCE.sub("", README), re.M)
    assert headings[:3] == ["Quick start", "Contents", "Testing an installation without a patient"]


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_every_relative_link_resolves(page: Path) -> None:
    for a, b in LINK.findall(page.read_text()):
        target = a or b
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        dest = (page.parent / file).resolve() if file else page
        assert dest.exists(), f"{page.name}: link to {target}: no such file"
        if anchor:
            assert anchor in anchors(dest), f"{page.name}: link to {target}: no such heading"


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_every_command_shown_exists_with_its_flags(page: Path) -> None:
    shown = shown_commands(page.read_text())
    for words, code, used in shown:
        assert any(w == words or w.startswith(words + " ") for w in PARSERS), (
            f"{page.name}: {code!r}: no command {words!r}"
        )
        known = set().union(*(flags(p) for w, p in PARSERS.items() if w.startswith(words)))
        for flag in used:
            assert flag in known, f"{page.name}: {code!r}: {words} has no {flag}"


def test_the_docs_show_commands_and_the_checker_sees_them() -> None:
    # the checker itself: a command with a wrong flag is caught
    assert shown_commands("`bia-acq run --nonsense`") == [
        ("run", "bia-acq run --nonsense", ["--nonsense"])
    ]
    block = "```sh\n.venv/bin/bia-acq worklist add --db x  # a note --x\n```"
    [(words, _, used)] = shown_commands(block)
    assert (words, used) == ("worklist add", ["--db"])
    assert len(shown_commands(README)) > 10


def readme_table() -> dict[str, set[str]]:
    section = README[README.index("## Commands") :]
    rows = re.findall(r"^\| `bia-acq ([a-z][a-z-]*(?: [a-z]+)?)([^`]*)` \|", section, re.M)
    return {words: set(re.findall(r"--[a-z][a-z0-9-]*", rest)) for words, rest in rows}


def test_readme_commands_table_lists_every_command_and_flag() -> None:
    table = readme_table()
    assert sorted(table) == sorted(PARSERS)
    for words, parser in PARSERS.items():
        assert table[words] == flags(parser) - COMMON_FLAGS, words


def test_every_cli_command_has_help() -> None:
    for words in PARSERS:
        proc = run_cli(*words.split(), "--help")
        assert proc.returncode == 0 and b"usage: bia-acq " + words.encode() in proc.stdout


def test_every_command_has_a_description_and_help_for_every_argument() -> None:
    for words, parser in PARSERS.items():
        assert parser.description, f"{words}: no description"
        for action in parser._actions:
            assert action.help, f"{words}: {action.option_strings or action.dest} has no help"


def test_an_option_takes_the_same_kind_of_value_everywhere() -> None:
    seen: dict[str, set[str]] = {}
    for parser in PARSERS.values():
        for action in parser._actions:
            if action.option_strings and action.nargs != 0:
                seen.setdefault(action.option_strings[-1], set()).add(str(action.metavar))
    # --port is a configured port's name (import, worklist) or a serial device
    assert seen.pop("--port") == {"NAME", "DEVICE"}
    assert {flag: names for flag, names in seen.items() if len(names) > 1} == {}
    assert seen["--subject"] == {"ID"} and seen["--since"] == {"DATE"}
    assert all("--log-level" in flags(p) for p in PARSERS.values())
