"""How many CPU threads training uses: every core on a quiet machine, fewer when other work is running.

Why: on a 2-core machine shared with one other busy process, the demo's step went from 0.23 s to
8–12 s with torch's default of one thread per core (each step's many small parallel kernels wait at
OpenMP barriers for a thread the OS has descheduled, while its partner spins), but ran at ~1 s with
one thread. So `train.threads=0` (the default) counts the other runnable tasks at start and leaves
them their cores; OpenMP threads sleep instead of spinning while they wait (OMP_WAIT_POLICY=PASSIVE,
which must be set before torch is imported: train.py calls `quiet_openmp()` first).

The choice is made once, at start: changing the thread count mid-run would change the floating-point
reduction order, and a resumed run would no longer match an uninterrupted one.
"""
from __future__ import annotations

import os
import time
from pathlib import Path


def quiet_openmp() -> None:
    """OpenMP threads sleep at barriers instead of spinning (a spinning thread holds a core that the
    thread it waits for may need). No effect once torch is imported; a value already set is kept."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _runnable_others() -> int | None:
    """Runnable tasks now (/proc/stat procs_running), less this process's own running threads."""
    try:
        stat = Path("/proc/stat").read_text()
        running = next(int(line.split()[1]) for line in stat.splitlines() if line.startswith("procs_running"))
    except (OSError, StopIteration, ValueError):
        return None
    own = 0
    for task in Path("/proc/self/task").iterdir():
        try:
            own += (task / "stat").read_text().rsplit(")", 1)[1].split()[0] == "R"
        except (OSError, IndexError):
            pass
    return max(0, running - max(own, 1))


def other_load(samples: int = 5, interval: float = 0.01) -> float:
    """Other processes' runnable tasks: the median of a few instantaneous counts (a compile job, a
    second training) — or, without /proc/stat, the 1-minute load average."""
    counts = []
    for i in range(samples):
        n = _runnable_others()
        if n is None:
            break
        counts.append(n)
        if i + 1 < samples:
            time.sleep(interval)
    if counts:
        return float(sorted(counts)[len(counts) // 2])
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


def choose_threads(requested: int, cores: int | None = None, load: float | None = None) -> tuple[int, str]:
    """(threads, why) for `train.threads`: a positive request is kept; 0 means all cores less the
    other runnable load, at least 1."""
    cores = usable_cores() if cores is None else cores
    if requested > 0:
        return requested, f"train.threads={requested}"
    load = other_load() if load is None else load
    n = max(1, min(cores, cores - round(load)))
    why = (f"{cores} cores, other load {load:g}" + ("" if n == cores else "; train.threads=N to override")
           + ("" if os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE" else
              "; OMP_WAIT_POLICY is not PASSIVE: idle threads spin"))
    return n, why
