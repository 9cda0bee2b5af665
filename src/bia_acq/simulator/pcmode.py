"""The simulated analyzer in PC mode: it answers commands like a polled Tanita device.

A :class:`~bia_acq.simulator.device.Dialogue` that
:class:`~bia_acq.simulator.device.VirtualAnalyzer` plugs in for profiles with a
``dialogue``: it gets the bytes the PC sends and answers. Behaviour follows Tanita's "MC-980MA Instructions for PC mode"
(see :mod:`bia_acq.dialogue`): ``M1`` enters PC mode (before it, commands go
unanswered); ``D0``-``D5`` set tare, sex, body type, height (90-249 cm), age
and ID, answered by their two-character head or ``Dx!``; the start command
without sex, height and age gives ``E4``; an unknown command gives ``!``; after
the start command is acknowledged, the measurement takes ``measure_seconds``
and the frame follows. Commands that arrive while measuring are ignored and
counted in ``ignored_while_measuring``; commands closer than 100 ms to the
previous one are answered ``!`` and counted in ``timing_violations`` (a host
that breaks the timing rules gets errors, as with the real device).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bia_acq.simulator.device import VirtualAnalyzer

log = logging.getLogger(__name__)

#: the rule is 100 ms; allow for the simulator's own scheduling delay when it reads
MIN_GAP_S = 0.09


@dataclass
class PCModeState:
    in_pc_mode: bool = False
    settings: dict[str, object] = field(default_factory=dict)
    measuring_until: float | None = None
    last_command_at: float | None = None
    pending_error: str | None = None


class PCModeDevice:
    """The device's side of the PC-mode dialogue; measures only when told to."""

    unsolicited = False

    def __init__(self, analyzer: VirtualAnalyzer) -> None:
        self.a = analyzer
        dialogue = analyzer.profile.dialogue
        assert dialogue is not None
        self.start = dialogue.start
        self.measure_s = float(analyzer.profile.simulator.get("measure_seconds", 0.3))
        self.state = PCModeState()
        self.ignored_while_measuring = 0
        self.timing_violations = 0
        #: error codes to answer the next measurements with instead of a frame (tests, demos)
        self.fail_next: list[str] = []
        self._buf = bytearray()

    def answer(self, command: str, now: float) -> str | None:
        s = self.state
        if command == "M1":
            s.in_pc_mode = True
            return "M1"
        if not s.in_pc_mode:
            return None  # not in PC mode: the device does not listen
        if command == "M0":
            s.in_pc_mode = False
            return "M0"
        rules: dict[str, tuple[str, Callable[[str], bool] | None, str, Callable[[str], object]]] = {
            "D0": (r"(\d\d\.\d)", lambda v: 0 <= float(v) <= 10, "tare_kg", float),
            "D1": (r"([12])", None, "sex", lambda v: "male" if v == "1" else "female"),
            "D2": (r"([02])", None, "body_type", str),
            "D3": (r"(\d\d\d\.\d)", lambda v: 90 <= float(v) <= 249, "height_cm", float),
            "D4": (r"(\d\d)", lambda v: 5 <= int(v) <= 99, "age_years", int),
            "D5": (r"([0-9A-Za-z-]{1,16})", None, "subject_id", str),
        }
        head = command[:2]
        if head in rules:
            pattern, check, key, convert = rules[head]
            m = re.fullmatch(pattern, command[2:])
            if not m or (check is not None and not check(m.group(1))):
                return head + "!"
            s.settings[key] = convert(m.group(1))
            return head
        if command == "D?":
            return ",".join(f"{k}={v}" for k, v in sorted(s.settings.items()) if k != "subject_id")
        if command == self.start:
            if not all(k in s.settings for k in ("sex", "height_cm", "age_years")):
                return "E4"
            s.measuring_until = now + self.measure_s
            if self.fail_next:
                s.pending_error = self.fail_next.pop(0)
            return self.start[:2]
        return "!"

    def reader_gone(self) -> None:
        """The PC went away: PC mode ends."""
        self.state = PCModeState()
        self._buf.clear()

    def received(self, data: bytes, device: VirtualAnalyzer) -> bytes | None:
        """Commands (one a line) in, the device's answers out."""
        now = time.monotonic()
        self._buf += data
        out = bytearray()
        while b"\n" in self._buf:
            end = self._buf.index(b"\n")
            command = bytes(self._buf[:end]).strip(b"\r\x00 ").decode("ascii", "replace")
            del self._buf[: end + 1]
            if self.state.measuring_until is not None:
                self.ignored_while_measuring += 1
                log.warning("command received while measuring: ignored")
                continue
            last, self.state.last_command_at = self.state.last_command_at, now
            if last is not None and now - last < MIN_GAP_S:
                self.timing_violations += 1
                out += b"!\r\n"
                continue
            reply = self.answer(command, now)
            if reply is not None:
                out += reply.encode("ascii") + b"\r\n"
        return bytes(out) or None

    def tick(self, device: VirtualAnalyzer, now: float) -> bytes | None:
        """When the measurement time is up: the error asked for, or the frame."""
        s = self.state
        if s.measuring_until is None or now < s.measuring_until:
            return None
        s.measuring_until = None
        if s.pending_error is not None:
            error, s.pending_error = s.pending_error, None
            return error.encode("ascii") + b"\r\n"
        st = s.settings
        given = {
            "sex": str(st["sex"]),
            "age_years": int(str(st["age_years"])),
            "height_cm": float(str(st["height_cm"])),
        }
        sid = str(st.get("subject_id", "0" * 16))
        reading, truth = device.population.measure_given(dt.datetime.now(), sid, **given)
        if "body_type" in st:
            reading = replace(
                reading, device_values={**reading.device_values, "Bt": int(str(st["body_type"]))}
            )
        device.send_measurement(reading, truth)
        return None
