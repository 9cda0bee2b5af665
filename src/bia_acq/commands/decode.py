"""`bia-acq decode`, and what `decode` and `import` say about a file nobody can read."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bia_acq.cli import add_drivers_dir
from bia_acq.errors import BiaError
from bia_acq.protocols.base import is_container

if TYPE_CHECKING:
    from bia_acq.drivers import Profile
    from bia_acq.protocols.base import Protocol

#: bytes of a file looked at to tell which profile decodes it
SNIFF_BYTES = 1 << 20
#: decoder errors that mean "not this protocol at all" (JSON lines frame any line)
_NOT_ITS_FORMAT = ("not JSON", "line is not UTF-8", "a JSON ")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "decode",
        help="decode a captured byte stream to JSON lines",
        description="Read captured bytes (a file or - for standard input) and print one JSON "
        'object per frame; a frame that fails prints {"error": ..., "offset": ...}; a record '
        'that is not a measurement (a BC-601 profile line) prints {"record": ...}. A file '
        "without a single frame of the driver is an error that says what the driver expected, "
        "what the file looks like and which profile would read it.",
    )
    p.add_argument(
        "--driver",
        required=True,
        help="device profile, e.g. tanita-mc780, or auto: the profile that decodes the file",
    )
    p.add_argument("file", nargs="?", default="-", help="captured bytes (default: standard input)")
    add_drivers_dir(p)
    p.set_defaults(handler=run)


def score(codec: Protocol, data: bytes, models: Sequence[str] = ()) -> tuple[int, int, int, str]:
    """(frames decoded, of those naming a model the profile expects, frames framed, the
    first decoder error or "")."""
    from bia_acq.errors import FrameError

    try:
        data = codec.transcode(data) or data
    except (BiaError, FrameError):
        return 0, 0, 0, ""
    framer = codec.framer()
    ok = framed = named = 0
    first = ""
    for chunk in [*framer.feed(data), *framer.flush("end of input")]:
        if chunk.kind == "junk" and (chunk.reason or "").startswith("record:"):
            ok += 1
        if chunk.kind != "frame":
            continue
        framed += 1
        try:
            reading = codec.decode(chunk.context + chunk.data)
        except FrameError as exc:
            first = first or exc.reason
            continue
        ok += 1
        named += bool(models) and reading.model in models
    return ok, named, framed, first


def best_profile(
    data: bytes, drivers_dirs: Sequence[Path] = (), skip: str = ""
) -> tuple[Profile | None, str]:
    """The installed profile that decodes most of ``data`` (its model first), else None
    and, when a profile frames the data but refuses every frame, why."""
    from bia_acq.drivers import all_profiles
    from bia_acq.errors import BiaError

    best: tuple[tuple[int, int, int], str] | None = None
    refused = ""
    profiles = all_profiles(drivers_dirs)
    for name, profile in sorted(profiles.items()):
        if name == skip:
            continue
        try:
            codec = profile.codec()
        except BiaError:
            continue  # a broken or unavailable profile decodes nothing
        ok, named, framed, first = score(
            codec, data, [str(m) for m in profile.options.get("models", ())]
        )
        if ok and (best is None or (ok, named, -framed) > best[0]):
            best = ((ok, named, -framed), name)
        elif framed and not ok and not refused and not first.startswith(_NOT_ITS_FORMAT):
            refused = f"profile {name} reads its {framed} frame(s) but refuses them: {first}"
    return (None, refused) if best is None else (profiles[best[1]], "")


def printable(data: bytes, n: int = 48) -> str:
    """The first ``n`` bytes as a person can read them (escapes for the rest)."""
    text = repr(data[:n])[2:-1]
    return text + ("..." if len(data) > n else "")


def unreadable(what: str, data: bytes, profile: Profile, drivers_dirs: Sequence[Path] = ()) -> str:
    """One line: no frame of ``profile`` in ``what``: expected, seen, which profile reads it."""
    other, refused = best_profile(data, drivers_dirs, skip=profile.name)
    hint = (
        f"profile {other.name} decodes it (--driver {other.name})"
        if other is not None
        else refused or "no installed profile decodes it (see `bia-acq drivers`)"
    )
    seen = f"it starts '{printable(data)}'" if data else "it is empty"
    return (
        f"{what}: no {profile.name} frame in {len(data)} bytes: the driver expects "
        f"{profile.codec().expects}; {seen}; {hint}"
    )


def choose_profile(name: str, data: bytes, what: str, drivers_dirs: Sequence[Path] = ()) -> Profile:
    """``--driver NAME``, or with ``auto`` the profile that decodes ``data`` (said on stderr)."""
    from bia_acq.drivers import get_profile

    if name != "auto":
        return get_profile(name, drivers_dirs)
    profile, refused = best_profile(data, drivers_dirs)
    if profile is None:
        seen = f"it starts '{printable(data)}'" if data else "it is empty"
        raise BiaError(f"{what}: no installed profile decodes it; {seen}; {refused}".rstrip("; "))
    print(f"bia-acq: --driver auto: {what} is {profile.name}", file=sys.stderr)
    return profile


def run(args: argparse.Namespace) -> int:
    from bia_acq.drivers import get_profile
    from bia_acq.errors import FrameError
    from bia_acq.protocols.base import is_noise

    if args.driver != "auto":
        get_profile(args.driver, args.drivers_dir)  # an unknown driver first: a usage mistake
    name = "standard input" if args.file == "-" else args.file
    if args.file == "-":
        data = sys.stdin.buffer.read()
    else:
        try:
            data = Path(args.file).read_bytes()
        except OSError as exc:
            raise BiaError(f"cannot read {args.file}: {exc.strerror}") from None
    if not data:
        print(f"{name}: empty, no bytes to decode", file=sys.stderr)
        return 1
    profile = choose_profile(
        args.driver, data if is_container(data) else data[:SNIFF_BYTES], name, args.drivers_dir
    )
    codec = profile.codec()
    try:
        data = codec.transcode(data) or data
    except FrameError as exc:
        raise BiaError(f"{name}: {exc.reason}") from None
    framer = codec.framer()
    chunks = [*framer.feed(data), *framer.flush("end of input inside a frame")]
    if not any(c.kind == "frame" or (c.reason or "").startswith("record:") for c in chunks):
        raise BiaError(unreadable(name, data, profile, args.drivers_dir))
    decoded = rejected = outside = 0
    pos = 0
    for chunk in chunks:
        start, pos = pos, pos + len(chunk.data)
        if chunk.kind == "junk":
            if is_noise(chunk.data):
                continue  # line noise between frames
            if (chunk.reason or "").startswith("header:"):
                continue  # a CSV header line: the rows after it print with its columns
            if (chunk.reason or "").startswith("record:"):
                record = (chunk.reason or "")[len("record: ") :]
                print(json.dumps({"record": record, "stream_offset": start}))
                continue
            out: dict[str, object] = {
                "error": f"{len(chunk.data)} bytes outside any frame",
                "offset": 0,
            }
            outside += len(chunk.data)
        elif chunk.kind == "truncated":
            out = {"error": chunk.reason, "offset": len(chunk.data)}
        else:
            try:
                out = codec.decode(chunk.context + chunk.data).to_json()
            except FrameError as exc:
                out = {"error": exc.reason, "offset": exc.offset}
        if "error" in out:
            out["stream_offset"] = start
            rejected += chunk.kind != "junk"
        else:
            decoded += 1
        print(json.dumps(out), flush=False)
    sys.stdout.flush()
    print(
        f"{name}: {decoded} frame(s) decoded, {rejected} rejected, "
        f"{outside} byte(s) outside frames",
        file=sys.stderr,
    )
    return 1 if rejected or outside else 0
