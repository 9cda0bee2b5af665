"""`bia-acq decode`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bia_acq.cli import add_drivers_dir
from bia_acq.errors import BiaError


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "decode",
        help="decode a captured byte stream to JSON lines",
        description="Read captured bytes (a file or - for standard input) and print one JSON "
        'object per frame; a frame that fails prints {"error": ..., "offset": ...}.',
    )
    p.add_argument("--driver", required=True, help="device profile, e.g. tanita-mc780")
    p.add_argument("file", nargs="?", default="-", help="captured bytes (default: standard input)")
    add_drivers_dir(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from bia_acq.drivers import get_profile
    from bia_acq.errors import FrameError

    profile = get_profile(args.driver, args.drivers_dir)
    codec = profile.codec()
    if args.file == "-":
        data = sys.stdin.buffer.read()
    else:
        try:
            data = Path(args.file).read_bytes()
        except OSError as exc:
            raise BiaError(f"cannot read {args.file}: {exc.strerror}") from None
    name = "standard input" if args.file == "-" else args.file
    if not data:
        print(f"{name}: empty, no bytes to decode", file=sys.stderr)
        return 1
    framer = codec.framer()
    decoded = rejected = outside = 0
    pos = 0
    for chunk in [*framer.feed(data), *framer.flush("end of input inside a frame")]:
        start, pos = pos, pos + len(chunk.data)
        if chunk.kind == "junk":
            if not chunk.data.strip(b"\r\n\x00 \t"):
                continue  # line noise between frames
            out: dict[str, object] = {
                "error": f"{len(chunk.data)} bytes outside any frame",
                "offset": 0,
            }
            outside += len(chunk.data)
        elif chunk.kind == "truncated":
            out = {"error": chunk.reason, "offset": len(chunk.data)}
        else:
            try:
                out = codec.decode(chunk.data).to_json()
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
