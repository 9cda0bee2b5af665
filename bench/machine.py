"""What every benchmark prints about the machine it ran on, and its memory.

Rates in the benchmarks are per CPU second (``time.process_time``), best of N,
so other load on the machine slows them less than wall clock; the load printed
here says how busy the machine was while they ran.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
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


def peak_rss_mb(children: bool = False) -> float:
    """Peak resident set size in MB of this process (or of its largest waited-for child)."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024  # kB on Linux


def best_of(fn: Callable[[], T], repeat: int) -> tuple[float, T]:
    """(the shortest CPU time of ``repeat`` runs of ``fn``, the last result)."""
    times = []
    for _ in range(repeat):
        t = time.process_time()
        out = fn()
        times.append(time.process_time() - t)
    return min(times), out
