"""Faults found from outside (issue 16): real full disks, FIFOs, paths out of the dataset root,
checkpoints whose config is an instruction, colliding outputs, oversized inputs, twin runs.

Each case must end in one clear line (or a counted skip), never a hang, never lost output.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from textcolor.checkpoint import list_checkpoints, load_checkpoint

ROOT = Path(__file__).resolve().parent.parent
TINY = ["data.size=32", "data.synth_n=16", "data.val_n=2", "gen.base=8", "gen.depth=2", "gen.max_ch=16",
        "disc.base=8", "disc.layers=2", "tags.k=4", "train.batch_size=2", "train.log_every=100",
        "train.image_every=100", "train.threads=1"]


def _train(out: Path, *extra: str, flags: tuple[str, ...] = (), timeout: float = 300) -> subprocess.CompletedProcess:
    """`python train.py` on the demo config with tiny overrides, as a user would run it. A run that
    outlives `timeout` fails the test as a hang, its whole process group (workers too) killed."""
    argv = [sys.executable, str(ROOT / "train.py"), *flags, "--config", str(ROOT / "configs/demo.yaml"),
            "--out", str(out), *TINY, *extra]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, start_new_session=True)
    try:
        out_text, err_text = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out_text, err_text = proc.communicate()
        raise AssertionError(f"train.py hung (> {timeout:g} s): {err_text[-2000:]}") from None
    return subprocess.CompletedProcess(argv, proc.returncode, out_text, err_text)


def _error_lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.replace("\r", "\n").splitlines() if "error" in ln.lower() or "Traceback" in ln]


# ---------------------------------------------------------------------------------------------
# 1. a real full disk, DataLoader workers on

@pytest.fixture
def small_fs(tmp_path):
    """A 4 MB tmpfs mounted for this test (root only; skipped where mounting is not permitted)."""
    mnt = tmp_path / "fs"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({(r.stderr or r.stdout).strip()[:100]}); "
                    f"the full-disk test needs root or CAP_SYS_ADMIN")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_real_full_disk_with_workers_exits_promptly_with_one_line(small_fs):
    run = small_fs / "run"
    first = _train(run, "train.steps=2", "train.ckpt_every=2", "data.workers=0")
    assert first.returncode == 0, first.stderr[-2000:]
    # fill the disk, leaving too little for the next checkpoint but enough for config and logs
    size = (run / "checkpoints" / "last.pt").stat().st_size
    free = os.statvfs(small_fs).f_bavail * os.statvfs(small_fs).f_frsize
    assert free > size // 2 + 64 * 1024, "the tmpfs is too small for this test"
    with open(small_fs / "filler", "wb") as f:
        f.write(b"\0" * (free - size // 2))
    # the timeout is the hang check: the run used to hang forever here with a worker alive
    r = _train(run, "train.steps=4", "train.ckpt_every=2", "data.workers=1", flags=("--resume",), timeout=240)
    errors = _error_lines(r.stderr + r.stdout)
    assert r.returncode != 0 and len(errors) == 1, r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    assert errors[0].endswith(f"no space left on {run / 'checkpoints'}: checkpoint step 4 not written; "
                              f"last good checkpoint step 2 kept"), errors
    names = os.listdir(run / "checkpoints")
    assert not [n for n in names if n.endswith(".tmp") or n.endswith(".link")], names
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 2
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == ["step_0000002.pt"]


# ---------------------------------------------------------------------------------------------
# 7. one run per directory; 8. --resume on a directory with no run

HOLDER = r'''
import sys, time
from textcolor.runlock import lock_run_dir
lock_run_dir(sys.argv[1])
print("locked", flush=True)
time.sleep(600)
'''


def test_second_run_on_one_out_is_refused_naming_the_first_pid_and_no_stale_lock(tmp_path, capsys):
    import train as train_cli
    from cli_helpers import one_line_error
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])})
    try:
        assert holder.stdout.readline().strip() == "locked"
        code = train_cli.main(["--config", str(ROOT / "configs/demo.yaml"), "--out", str(run), *TINY,
                               "data.workers=0", "train.steps=1"])
        err = capsys.readouterr().err
        assert code == 2 and one_line_error(err), err
        assert f"in use by another training run (pid {holder.pid})" in err
        assert not (run / "checkpoints").exists() and not (run / "config.yaml").exists()
    finally:
        holder.kill()  # SIGKILL: the kernel drops the flock with the process
        holder.wait()
    from textcolor.runlock import lock_run_dir, unlock_run_dir
    lock_run_dir(run)  # no stale lock
    unlock_run_dir(run)


def test_resume_on_a_directory_with_no_run_says_so(tmp_path, capsys):
    import train as train_cli
    from cli_helpers import one_line_error
    code = train_cli.main(["--resume", "--config", str(ROOT / "configs/demo.yaml"), "--out", str(tmp_path / "typo"),
                           *TINY, "data.workers=0", "train.steps=1"])
    err = capsys.readouterr().err
    assert code == 2 and one_line_error(err) and "holds no run" in err, err
    assert not (tmp_path / "typo").exists()
