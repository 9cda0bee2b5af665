"""What every benchmark prints about the machine it ran on, and its memory.

Rates in the benchmarks are per CPU second (``time.process_time``), best of N,
so other load on the machine slows them less than wall clock; the load printed
here says how busy the machine was while they ran.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def header() -> str:
    """One line: CPUs, load averages, Python's and numpy's versions."""
    import platform

    import numpy as np

    one, five, fifteen = os.getloadavg()
    return (
        f"machine: {os.cpu_count()} CPUs, load average {one:.2f} {five:.2f} {fifteen:.2f}"
        f" (1/5/15 min); Python {platform.python_version()}, numpy {np.__version__}"
    )


def load() -> str:
    """The 1-minute load average now (printed beside each figure)."""
    return f"load {os.getloadavg()[0]:.2f}"


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


#: runs ``bia-acq ARGS`` and reports its own peak RSS (and its workers'). Its own is the
#: kernel's high-water mark of its address space (VmHWM): ``getrusage``'s ru_maxrss
#: survives exec, so a process started by the benchmark reports at least the
#: benchmark's own peak (Linux keeps the larger across execve); its workers are forked
#: from it, so RUSAGE_CHILDREN counts at most its own peak again
_CLI = (
    "import re, resource, sys\n"
    "from bia_acq.cli import main\n"
    "rc = main(sys.argv[1:])\n"
    "with open('/proc/self/status') as f:\n"
    "    own = int(re.search(r'VmHWM:\\s+(\\d+)', f.read())[1])\n"
    "peak = max(own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "print(f'peak-rss-kb {peak}', file=sys.stderr)\n"
    "sys.exit(rc)\n"
)


def run_cli(args: list[str], prelude: str = "") -> tuple[float, float, float, str]:
    """``bia-acq ARGS`` as a real process: (wall seconds, CPU seconds of it and its
    worker processes, peak RSS in MB of the largest of them, its stdout). ``prelude``:
    Python run in it first (a setting the command has no option for)."""
    wall, cpu_s, peak, out, _ = run_cli_watched(args, prelude=prelude)
    return wall, cpu_s, peak, out


def run_cli_watched(
    args: list[str], reads: Path | None = None, every_s: float = 1.0, prelude: str = ""
) -> tuple[float, float, float, str, list[tuple[int, float]]]:
    """:func:`run_cli`, and every ``every_s`` seconds a sample of the process's resident
    memory: (bytes it has read of the file ``reads``, its file position from
    /proc/PID/fdinfo; RSS in MB). Without ``reads``, no samples."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    samples: list[tuple[int, float]] = []
    t, cpu = time.perf_counter(), os.times()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", prelude + _CLI, *args], stdout=out, stderr=err, env=env
        )
        while True:
            try:
                proc.wait(timeout=every_s)
                break
            except subprocess.TimeoutExpired:
                if reads is not None:
                    sample = _sample(proc.pid, reads)
                    if sample is not None:
                        samples.append(sample)
        wall = time.perf_counter() - t
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, args, stdout, stderr)
    now = os.times()
    cpu_s = now.children_user + now.children_system - cpu.children_user - cpu.children_system
    m = re.search(rb"peak-rss-kb (\d+)", stderr)
    assert m is not None, stderr[-500:]
    return wall, cpu_s, int(m[1]) / 1024, stdout.decode(), samples


def _sample(pid: int, path: Path) -> tuple[int, float] | None:
    """(file position of ``path`` in process ``pid``, its RSS in MB), or None if the
    file is not open now."""
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            if os.readlink(f"/proc/{pid}/fd/{fd}") == str(path):
                with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                    pos = int(re.search(r"pos:\s+(\d+)", f.read())[1])  # type: ignore[index]
                with open(f"/proc/{pid}/status") as f:
                    rss = int(re.search(r"VmRSS:\s+(\d+)", f.read())[1])  # type: ignore[index]
                return pos, rss / 1024
    except (OSError, TypeError):  # the process ended meanwhile
        pass
    return None


def best_of(fn: Callable[[], T], repeat: int) -> tuple[float, T]:
    """(the shortest CPU time of ``repeat`` runs of ``fn``, the last result)."""
    times = []
    for _ in range(repeat):
        t = time.process_time()
        out = fn()
        times.append(time.process_time() - t)
    return min(times), out
