"""One training run per directory: an exclusive OS lock on `<out>/.lock`.

Two runs on one `--out` would delete each other's in-flight checkpoints (the temp-file cleanup)
and mix config.yaml and event files. `fcntl.flock` is released by the kernel when the process
dies, however it dies, so a crash never leaves a stale lock; the file holds the holder's pid only
so that the refusal can name it.
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

from textcolor.checkpoint import list_checkpoints

LOCK_NAME = ".lock"

# Directories this process holds, resolved path -> (pid, fd). A failed train() in the same process
# (a test, a notebook) keeps its lock until exit; a second train() there on the same directory is
# the same owner, not a twin run. The pid tells a forked child (DataLoader worker, fork server)
# that the entry is its parent's.
_held: dict[str, tuple[int, int]] = {}


class RunDirError(RuntimeError):
    """A run directory that cannot be used; one line for the user."""


class RunLocked(RunDirError):
    """The run directory is held by another process; the message names its pid."""


def lock_run_dir(out_dir: str | Path) -> None:
    """Create out_dir if needed and hold its lock until `unlock_run_dir` or the process ends.
    Raises RunLocked (one line, with the other run's pid) when another process holds it."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    key = str(out_dir.resolve())
    if key in _held and _held[key][0] == os.getpid():
        return
    fd = os.open(out_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        pid = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise RunLocked(f"{out_dir} is in use by another training run (pid {pid}); wait for it to end "
                        f"or choose another --out") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _held[key] = (os.getpid(), fd)


def unlock_run_dir(out_dir: str | Path) -> None:
    """Release the lock taken by lock_run_dir in this process (no-op if not held)."""
    entry = _held.pop(str(Path(out_dir).resolve()), None)
    if entry is not None and entry[0] == os.getpid():
        os.close(entry[1])  # closing the last descriptor releases the flock


def claim_run_dir(out_dir: str | Path, resume: bool, lock: bool = True, problem: str | None = None) -> Path | None:
    """Before a run touches out_dir: refuse `problem` (e.g. out_dir inside the data folder), a
    `--resume` where no run was ever started (a mistyped --out would silently start a new one),
    take the lock (`lock`: the main process of a multi-process run only), then refuse to train over
    someone's checkpoints unless resuming. Returns the checkpoint to resume from, or None."""
    out_dir = Path(out_dir)
    if problem:
        raise RunDirError(problem)
    ckpts = list_checkpoints(out_dir / "checkpoints")
    if resume and not (ckpts or (out_dir / "config.yaml").exists()):
        raise RunDirError(f"--resume: {out_dir} holds no run (no checkpoints, no config.yaml); check --out")
    if lock:
        lock_run_dir(out_dir)
    if ckpts and not resume:
        raise RunDirError(f"{out_dir} already holds checkpoints; pass --resume to continue it, "
                          f"or choose another --out")
    # the newest numbered file, not last.pt: a crash between writing step_N.pt (atomically, so it
    # is complete) and re-pointing last.pt leaves last.pt one checkpoint behind
    return ckpts[-1] if resume and ckpts else None
