"""Command dialogues of polled analyzers (Tanita PC mode), as declared in a device profile.

Facts from Tanita's "MC-980MA Instructions for PC mode" (version 20101019,
sections 4.1-4.2; the BC-418 and MC-780 PC modes use the same scheme, see the
project's PROTOCOLS notes):

* a command is its characters followed by CR LF; ``M1`` enters PC mode;
* ``D0xx.x`` preset tare (kg, 00.0-10.0, optional), ``D1x`` sex (1 male,
  2 female), ``D2x`` body type (0 standard, 2 athletic), ``D3xxx.x`` height
  (cm, five characters, 90-249), ``D4xx`` age (two digits), ``D5…`` ID
  (optional); ``G`` (MC-980, MC-780) or ``G1`` (BC-418) starts a measurement;
* a command is acknowledged by echoing its head (``D1`` for ``D11``); a
  parameter the device cannot take is answered ``D1!``; any command it does
  not know is answered ``!``;
* error messages may come as the answer to a correct command or unsolicited:
  ``E0``-``E9`` (table :data:`TANITA_ERRORS`);
* timing: at least 100 ms between commands, never 250 ms or more between the
  characters of one command, nothing while the device measures or sends.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Error messages of Tanita PC mode (MC-980MA PC-mode instructions, 4.2 "Error status").
TANITA_ERRORS: dict[str, str] = {
    "E0": "internal trouble in the equipment",
    "E1": "overload of the scale",
    "E2": "impedance measurement error (check electrode contact)",
    "E3": "zero point setting error of the scale",
    "E4": "measurement command received without personal information set",
    "E5": "zero point of the scale is not set",
    "E6": "the parameter of the set data is incomplete",
    "E7": "fat % measurement error",
    "E8": "setting item memory error",
    "E9": "negative overload of the scale",
}

#: Values a settings template may use, from the work-list entry.
TEMPLATE_FIELDS = (
    "sex_code",
    "body_type_code",
    "height_cm",
    "age_years",
    "subject_id",
    "tare_kg",
)
_SAMPLE = {
    "sex_code": "1",
    "body_type_code": "0",
    "height_cm": 170.0,
    "age_years": 40,
    "subject_id": "12345",
    "tare_kg": 0.5,
}
_ERROR = re.compile(r"^E\d$")


class DialogueError(ValueError):
    """A profile's ``dialogue`` section is wrong (the caller adds file and key)."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"{key}: {problem}")


@dataclass(frozen=True)
class Dialogue:
    """What a polled analyzer is sent, and how it answers."""

    enter: tuple[str, ...] = ("M1",)
    settings: tuple[str, ...] = ()
    start: str = "G"
    ack_chars: int = 2
    command_gap_s: float = 0.1
    reply_timeout_s: float = 2.0
    measure_timeout_s: float = 120.0
    sex_codes: Mapping[str, str] = field(default_factory=lambda: {"male": "1", "female": "2"})
    body_type_codes: Mapping[str, str] = field(
        default_factory=lambda: {"standard": "0", "athletic": "2"}
    )
    errors: Mapping[str, str] = field(default_factory=lambda: dict(TANITA_ERRORS))

    def head(self, command: str) -> str:
        return command[: self.ack_chars]

    def render(self, values: Mapping[str, Any]) -> list[str]:
        """The settings commands for one work-list entry; templates with an unset value are skipped."""
        out = []
        for t in self.settings:
            names = {f for _, f, _, _ in string.Formatter().parse(t) if f}
            if any(values.get(n) is None for n in names):
                continue  # optional setting not given (tare, ID)
            out.append(t.format(**values))
        return out

    def classify(self, command: str, line: str) -> tuple[str, str]:
        """A reply line -> ("ack" | "rejected" | "error" | "unexpected", explanation)."""
        head = self.head(command)
        if line == head:
            return "ack", ""
        if line in ("!", head + "!"):
            return "rejected", (
                f"the analyzer rejected {head} (parameter out of range or not accepted)"
                if line.endswith("!") and line != "!"
                else f"the analyzer does not know the command {head}"
            )
        if _ERROR.match(line):
            return "error", f"{line}: {self.errors.get(line, 'unknown error code')}"
        return "unexpected", f"unexpected reply to {head}: {line[:20]!r}"


def parse_dialogue(d: Mapping[str, Any]) -> Dialogue:
    """Validate a profile's ``dialogue`` mapping (DialogueError names the key)."""
    allowed = {
        "enter",
        "settings",
        "start",
        "ack_chars",
        "command_gap_ms",
        "reply_timeout_s",
        "measure_timeout_s",
        "sex_codes",
        "body_type_codes",
        "errors",
    }
    for k in d:
        if k not in allowed:
            raise DialogueError(
                f"dialogue.{k}", f"unknown key (allowed: {', '.join(sorted(allowed))})"
            )

    def commands(key: str, default: list[str]) -> tuple[str, ...]:
        v = d.get(key, default)
        if not isinstance(v, list) or not all(isinstance(c, str) and c for c in v):
            raise DialogueError(f"dialogue.{key}", "expected a list of commands (text)")
        for c in v:
            if not c.isascii() or "\r" in c or "\n" in c:
                raise DialogueError(f"dialogue.{key}", f"command {c!r} must be one line of ASCII")
        return tuple(v)

    settings = commands("settings", [])
    for t in settings:
        try:
            t.format(**_SAMPLE)
        except (KeyError, ValueError, IndexError) as exc:
            raise DialogueError(
                "dialogue.settings",
                f"template {t!r} is not valid ({exc}); fields: {', '.join(TEMPLATE_FIELDS)}",
            ) from None
    start = d.get("start", "G")
    if not isinstance(start, str) or not start:
        raise DialogueError("dialogue.start", "expected the start command, e.g. G or G1")

    def number(key: str, default: float, low: float, high: float) -> float:
        v = d.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int | float) or not low <= v <= high:
            raise DialogueError(f"dialogue.{key}", f"expected a number from {low:g} to {high:g}")
        return float(v)

    def codes(key: str, default: Mapping[str, str]) -> dict[str, str]:
        v = d.get(key, default)
        if not isinstance(v, Mapping):
            raise DialogueError(f"dialogue.{key}", "expected a mapping")
        return {str(k): str(c) for k, c in v.items()}

    return Dialogue(
        enter=commands("enter", ["M1"]),
        settings=settings,
        start=start,
        ack_chars=int(number("ack_chars", 2, 1, 16)),
        command_gap_s=number("command_gap_ms", 100, 100, 10000) / 1000,
        reply_timeout_s=number("reply_timeout_s", 2.0, 0.1, 60),
        measure_timeout_s=number("measure_timeout_s", 120.0, 1, 3600),
        sex_codes=codes("sex_codes", {"male": "1", "female": "2"}),
        body_type_codes=codes("body_type_codes", {"standard": "0", "athletic": "2"}),
        errors={**TANITA_ERRORS, **codes("errors", {})},
    )
