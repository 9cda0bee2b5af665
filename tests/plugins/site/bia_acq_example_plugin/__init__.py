"""A third-party protocol for bia-acq, as small as one can be (used by tests/test_plugins.py).

Lines like ``EX|id=42|sex=female|age=52|height=162.0|weight=71.4|right_arm@50=329.0/-36.1``
ended by LF. Registered under the entry-point group ``bia_acq.protocols`` by
``bia_acq_example_plugin-0.1.dist-info/entry_points.txt``.
"""

from __future__ import annotations

from bia_acq.errors import FrameError
from bia_acq.model import Impedance, Reading
from bia_acq.protocols.base import Framer, Protocol

_SCALARS = {
    "id": "subject_id",
    "sex": "sex",
    "age": "age_years",
    "height": "height_cm",
    "weight": "weight_kg",
}


class ExampleProtocol(Protocol):
    name = "example"
    description = "Example plugin: EX|key=value|segment@kHz=R/X lines (tests/plugins)"

    def framer(self) -> Framer:
        return Framer(start=b"EX|", end=b"\n", max_len=4096)

    def decode(self, frame: bytes) -> Reading:
        try:
            text = frame.decode("ascii").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            raise FrameError("not ASCII", exc.start) from None
        if not text.startswith("EX|"):
            raise FrameError("line does not start with EX|", 0)
        fields: dict[str, object] = {}
        points = []
        pos = 3
        for part in text[3:].split("|"):
            key, eq, value = part.partition("=")
            try:
                if not eq:
                    raise ValueError("no '='")
                if "@" in key:
                    seg, _, freq = key.partition("@")
                    r, _, x = value.partition("/")
                    points.append(Impedance(seg, float(freq), float(r), float(x) if x else None))
                elif key in ("id", "sex"):
                    fields[_SCALARS[key]] = value
                elif key == "age":
                    fields["age_years"] = int(value)
                elif key in _SCALARS:
                    fields[_SCALARS[key]] = float(value)
                else:
                    raise ValueError(f"unknown key {key!r}")
            except ValueError as exc:
                raise FrameError(f"field {part!r}: {exc}", pos) from None
            pos += len(part) + 1
        return Reading(impedance=tuple(points), **fields)  # type: ignore[arg-type]

    def encode(self, reading: Reading) -> bytes:
        parts = ["EX"]
        for key, attr in _SCALARS.items():
            value = getattr(reading, attr)
            if value is not None:
                parts.append(f"{key}={value}")
        for z in reading.impedance:
            x = "" if z.x_ohm is None else repr(z.x_ohm)
            parts.append(f"{z.segment}@{z.freq_khz!r}={z.r_ohm!r}/{x}")
        return "|".join(parts).encode("ascii") + b"\n"
