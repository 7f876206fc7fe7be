"""Fault tolerance of training: crashes at any moment, signals, full disks, non-finite numbers.

Policies proved here:
  * Crash anywhere, resume exactly. `train.py` is SIGKILLed at >= 20 seeded-random moments of one
    run (random times, the inside of checkpoint writes, and every kind of file operation), resumed
    with `--resume` after each kill, and must end bit-identical to an uninterrupted run. After every
    kill each checkpoint on disk loads and equals the uninterrupted run's checkpoint of the same step,
    and the next `--resume` starts from the newest complete checkpoint.
  * SIGINT / SIGTERM: the step in progress finishes, a final checkpoint is written, exit status 0.
  * A failing writer (ENOSPC, rename refused) raises CheckpointError with one line and leaves the
    previous checkpoint and last.pt untouched; no temporary file is left behind.
  * Non-finite numbers STOP the run (no skipping, no rollback): TrainingError naming the step and
    the non-finite terms (or the module whose weights went non-finite), and no checkpoint is ever
    written with non-finite tensors: the last good checkpoint stays as it was.

Speed: a Python + torch start costs seconds, so the kill loop runs train.py's `main` in processes
forked from one warm "fork server" (a subprocess that imported torch, train.py and textcolor once);
each fork is a separate process that dies by SIGKILL exactly like a `python train.py` would. The
first kill and the SIGINT/SIGTERM tests use genuine `python train.py` processes.
"""
from __future__ import annotations

import errno
import json
import os
import random
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from textcolor import checkpoint as ckpt_mod
from textcolor.checkpoint import CheckpointError, atomic_torch_save, list_checkpoints, load_checkpoint

pytestmark = pytest.mark.slow  # crash tests: training processes killed mid-run

ROOT = Path(__file__).resolve().parent.parent
FIGURES_NAME = "fault_figures.json"

TINY = ["data.size=32", "data.synth_n=16", "data.val_n=2", "data.workers=0", "gen.base=8", "gen.depth=2",
        "gen.max_ch=16", "disc.base=8", "disc.layers=2", "tags.k=4", "train.batch_size=2"]
STEPS = 40
# one thread: bit-identical results do not depend on the machine's core count, and the long
# training that shares this machine keeps its cores
RUN = TINY + [f"train.steps={STEPS}", "train.ckpt_every=1", "train.keep_last=2", "train.log_every=4",
              "train.image_every=10", "train.threads=1", "gen.dropout=0.3"]
KILLS = 24            # >= 20 SIGKILLs in the crash loop
SEED = 20240611       # kill schedule
# Waits that only fail on a hang. Generous: this machine is shared with a long training run that has
# priority, and a niced test can get a few percent of a core (the work itself is ~1 CPU-second/run).
WAIT = float(os.environ.get("FAULT_WAIT_S", "1800"))


def record_figures(tmp_path_factory, section: str, figures: dict) -> None:
    """Accumulate the figures for the report in <pytest basetemp>/fault_figures.json."""
    path = tmp_path_factory.getbasetemp() / FIGURES_NAME
    data = json.loads(path.read_text()) if path.exists() else {}
    data[section] = figures
    path.write_text(json.dumps(data, indent=1, sort_keys=True))
    print(f"\n[fault figures] {section}: {json.dumps(figures, sort_keys=True)}")


# ---------------------------------------------------------------------------------------------
# The fork server

SERVER = r'''
import ctypes, json, os, signal, sys, time, traceback
sys.path.insert(0, sys.argv[1])
_libc = ctypes.CDLL(None, use_errno=True)


def die_with_parent():
    _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: no orphans if the test run is killed


die_with_parent()
import torch, numpy, PIL.Image                                  # noqa: E401  warm imports
import train as train_cli
import textcolor.training as T, textcolor.checkpoint as C, textcolor.synth, textcolor.data  # noqa
from torch.utils.tensorboard import SummaryWriter              # noqa: F401
torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])          # imports torch._dynamo once
print(json.dumps({"ready": True}), flush=True)


def note(log, **ev):
    with open(log, "a") as f:
        f.write(json.dumps({"t": time.time(), **ev}) + "\n")


def kill_self():
    os.kill(os.getpid(), signal.SIGKILL)


def crash_on_fs_event(root, k, log):
    """SIGKILL at the k-th file operation under root: right after an open-for-write (the file is
    created or truncated, nothing written yet), before or after a rename, link or unlink."""
    state = {"n": 0, "busy": False}

    def writes(mode, flags):
        if isinstance(mode, str):
            return any(c in mode for c in "wax+")
        return bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC))

    def hook(event, args):
        if state["busy"] or event not in ("open", "os.rename", "os.link", "os.remove"):
            return
        if event == "open":
            if not isinstance(args[0], (str, bytes, os.PathLike)) or not writes(args[1], args[2]):
                return
            path = args[0]
        else:
            path = args[1] if event in ("os.rename", "os.link") else args[0]
        try:
            path = os.path.abspath(os.fsdecode(os.fspath(path)))
        except TypeError:
            return
        if not path.startswith(root):
            return
        state["n"] += 1
        if state["n"] != k:
            return
        state["busy"] = True
        after = event == "open" or k % 2 == 0
        note(log, ev="crash", event=event, path=path, after=after)
        if after:
            try:
                if event == "open":
                    fd = os.open(args[0], args[2] if args[1] is None else
                                 os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if "w" in args[1] else 0), 0o600)
                    os.close(fd)
                elif event == "os.rename":
                    os.replace(args[0], args[1])
                elif event == "os.link":
                    os.link(args[0], args[1])
                else:
                    os.remove(args[0])
            except OSError:
                pass
        kill_self()

    sys.addaudithook(hook)


def child(req):
    log = req["events"]
    note(log, ev="start")
    real_load = T.load_checkpoint

    def load(path, *a, **kw):
        state = real_load(path, *a, **kw)
        note(log, ev="resume", path=str(path), step=state["step"])
        return state
    T.load_checkpoint = load
    real_save = T.save_checkpoint

    def save(state, *a, **kw):
        path = real_save(state, *a, **kw)
        note(log, ev="saved", step=state["step"])
        return path
    T.save_checkpoint = save
    real_enter = T._StopFlag.__enter__

    def enter(self):
        note(log, ev="loop")
        return real_enter(self)
    T._StopFlag.__enter__ = enter
    if req.get("crash_fs"):
        crash_on_fs_event(req["root"], req["crash_fs"], log)
    if req.get("disk_full"):
        import errno

        def full(*a, **kw):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        C.torch.save = full
    if req.get("kind") == "big_save":
        old = torch.zeros(1000)
        C.atomic_torch_save({"x": old}, req["path"])
        note(log, ev="old_saved")
        C.atomic_torch_save({"x": torch.ones(req["numel"])}, req["path"])
        return 0
    return train_cli.main(req["argv"])


for line in sys.stdin:
    req = json.loads(line)
    pid = os.fork()
    if pid == 0:
        rc = 99
        try:
            die_with_parent()
            fd = os.open(req["out"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            rc = child(req)
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 1
        except BaseException:
            traceback.print_exc()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc)
    print(json.dumps({"pid": pid}), flush=True)
    _, status = os.waitpid(pid, 0)
    print(json.dumps({"exit": os.waitstatus_to_exitcode(status)}), flush=True)
'''


class ForkServer:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        script = workdir / "fork_server.py"
        script.write_text(SERVER)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
        self.proc = subprocess.Popen([sys.executable, str(script), str(ROOT)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
        assert json.loads(self._line(WAIT))["ready"]
        self.n = 0

    def _line(self, timeout: float) -> str:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        assert ready, "fork server did not answer"
        line = self.proc.stdout.readline()
        assert line, "fork server died"
        return line

    def start(self, **req) -> "Child":
        self.n += 1
        req.setdefault("out", str(self.workdir / f"child_{self.n}.log"))
        req.setdefault("events", str(self.workdir / f"child_{self.n}.events"))
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        return Child(self, json.loads(self._line(WAIT))["pid"], Path(req["out"]), Path(req["events"]))

    def close(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # a child still running: the server kills it as it dies
            self.proc.kill()
            self.proc.wait()


class Child:
    def __init__(self, server: ForkServer, pid: int, out: Path, events: Path):
        self.server, self.pid, self.out, self.events = server, pid, out, events
        self.t0 = time.time()
        self.exit: int | None = None

    def poll(self, timeout: float = 0.0) -> int | None:
        if self.exit is None:
            ready, _, _ = select.select([self.server.proc.stdout], [], [], timeout)
            if ready:
                self.exit = json.loads(self.server._line(5))["exit"]
        return self.exit

    def wait(self, timeout: float | None = None) -> int:
        timeout = WAIT if timeout is None else timeout
        code = self.poll(timeout)
        assert code is not None, f"child {self.pid} still running after {timeout}s:\n{self.log()}"
        return code

    def kill(self) -> int:
        if self.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        return self.wait()

    def log(self) -> str:
        return self.out.read_text(errors="replace")[-3000:] if self.out.exists() else ""

    def notes(self) -> list[dict]:
        if not self.events.exists():
            return []
        return [json.loads(line) for line in self.events.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = ForkServer(tmp_path_factory.mktemp("fork_server"))
    yield s
    s.close()


def train_argv(out: Path, *extra: str) -> list[str]:
    return ["--config", str(ROOT / "configs/demo.yaml"), "--out", str(out), *RUN, *extra]


@pytest.fixture(scope="module")
def reference(server, tmp_path_factory):
    """The uninterrupted run, every checkpoint kept: {step: state}, plus timings of its phases."""
    out = tmp_path_factory.mktemp("reference") / "run"
    child = server.start(argv=train_argv(out, "train.keep_last=1000"))
    assert child.wait() == 0, child.log()
    notes = child.notes()
    t_start = notes[0]["t"]
    t_loop = next(n["t"] for n in notes if n["ev"] == "loop")
    saves = [n["t"] for n in notes if n["ev"] == "saved"]
    states = {int(p.stem.split("_")[1]): load_checkpoint(p) for p in list_checkpoints(out / "checkpoints")}
    assert sorted(states) == list(range(1, STEPS + 1))
    return {"dir": out, "states": states, "startup": t_loop - t_start,
            "step": (saves[-1] - t_loop) / STEPS, "total": notes[-1]["t"] - t_start}


# ---------------------------------------------------------------------------------------------
# comparison helpers

def assert_same(a, b, where: str = "") -> None:
    """Recursive bit-for-bit equality of checkpoint contents (tensors with torch.equal)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape, where
        assert torch.equal(a, b), f"{where} differs"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{where}: keys {set(a) ^ set(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def assert_matches_reference(state: dict, reference: dict, where: str) -> None:
    ref = reference["states"][state["step"]]
    for key in ref:
        # the reference keeps every checkpoint (train.keep_last differs); wall time is not model state
        if key not in ("config", "train_seconds"):
            assert_same(state[key], ref[key], f"{where}:{key}")


def all_finite(state: dict) -> bool:
    return all(bool(torch.isfinite(t).all()) for key in ("G", "D", "G_ema")
               for t in state.get(key, {}).values() if t.is_floating_point())


def check_run_dir(run: Path, reference: dict, where: str) -> int | None:
    """After a kill: every checkpoint and last.pt loads and equals the uninterrupted run's
    checkpoint of the same step. Returns the newest complete step (None: nothing saved yet)."""
    ckpts = list_checkpoints(run / "checkpoints")
    newest = None
    for p in ckpts:
        state = load_checkpoint(p)  # never half-written: CheckpointError would fail the test
        assert state["step"] == int(p.stem.split("_")[1])
        assert_matches_reference(state, reference, f"{where}/{p.name}")
        newest = state["step"]
    last = run / "checkpoints" / "last.pt"
    if last.exists():
        state = load_checkpoint(last)
        assert_matches_reference(state, reference, f"{where}/last.pt")
        assert newest is not None and state["step"] <= newest
    else:
        assert len(ckpts) <= 1, "last.pt missing although earlier checkpoints were complete"
    return newest


def orphans(run: Path) -> list[str]:
    d = run / "checkpoints"
    return sorted(p.name for p in d.iterdir() if p.name.startswith(".")) if d.is_dir() else []


# ---------------------------------------------------------------------------------------------
# 1. crash anywhere, resume exactly

def test_sigkill_at_random_moments_resumes_bit_identically(server, reference, tmp_path, tmp_path_factory):
    rng = random.Random(SEED)
    run = tmp_path / "run"
    stats = {"kills": 0, "kills_by_mode": {}, "kills_mid_checkpoint_write": 0, "kills_in_startup": 0,
             "resumes_checked": 0, "attempts": 0, "runs_completed": 0, "genuine_process_kills": 0,
             "fs_operations_hit": {}}
    expected_resume: int | None = None
    # kill-time scale, learnt from the attempts themselves (the reference's start-up includes the
    # one-off loading of the tag encoder, which resumed runs skip)
    startups, step_times = [reference["startup"]], [reference["step"]]

    def learn(notes):
        loop = [n["t"] for n in notes if n["ev"] == "loop"]
        saves = [n["t"] for n in notes if n["ev"] == "saved"]
        if loop:
            startups.append(loop[0] - notes[0]["t"])
        step_times.extend(b - a for a, b in zip(saves, saves[1:]))

    def count(mode):
        stats["kills"] += 1
        stats["kills_by_mode"][mode] = stats["kills_by_mode"].get(mode, 0) + 1

    # Kill 0: a genuine `python train.py` process, killed at a random moment after its first checkpoint.
    proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *train_argv(run)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + WAIT
    while not list_checkpoints(run / "checkpoints") and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    time.sleep(rng.uniform(0, 3 * reference["step"]))
    proc.kill()
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "train.py finished before it could be killed"
    count("genuine_process")
    stats["genuine_process_kills"] += 1
    if orphans(run):
        stats["kills_mid_checkpoint_write"] += 1
    expected_resume = check_run_dir(run, reference, "kill 0")

    finished = False
    while not finished:
        stats["attempts"] += 1
        resuming = bool(list_checkpoints(run / "checkpoints"))
        # what a user types: the run's own config.yaml when resuming
        argv = ["--resume", "--out", str(run)] if resuming else train_argv(run)
        want_kill = stats["kills"] < KILLS
        mode = rng.choices(["random_time", "mid_checkpoint_write", "fs_operation"], [4, 3, 3])[0]
        req = {"argv": argv}
        if want_kill and mode == "fs_operation":
            req.update(crash_fs=rng.randint(1, 24), root=str(run))
        child = server.start(**req)
        killed_mid_write = False
        if want_kill and mode == "random_time":
            startup, step_time = min(startups), sorted(step_times)[len(step_times) // 2]
            delay = rng.uniform(0, startup + 4 * step_time)
            while child.poll(0.002) is None and time.time() - child.t0 < delay:
                pass
            killed_mid_write = bool(orphans(run))
            child.kill()
        elif want_kill and mode == "mid_checkpoint_write":
            nth, seen = rng.randint(1, 3), set()
            while child.poll() is None:
                tmp = {n for n in orphans(run) if n.endswith(".tmp") or n.endswith(".link")}
                if tmp - seen:
                    seen |= tmp
                    if len(seen) >= nth:
                        os.kill(child.pid, signal.SIGKILL)
                        killed_mid_write = True
                        break
                time.sleep(0.002)
            child.wait()
        else:
            child.wait()
        code = child.exit
        notes = child.notes()
        learn(notes)
        for n in notes:
            if n["ev"] == "resume":
                # resumed from the newest complete checkpoint, never an older or torn one
                assert n["step"] == expected_resume, (n, expected_resume, child.log())
                stats["resumes_checked"] += 1
        if code == -signal.SIGKILL:
            count(mode)
            crash = [n for n in notes if n["ev"] == "crash"]
            if crash:
                key = f"{crash[0]['event']}:{'after' if crash[0]['after'] else 'before'}"
                stats["fs_operations_hit"][key] = stats["fs_operations_hit"].get(key, 0) + 1
                killed_mid_write |= ".tmp" in crash[0]["path"] or ".link" in crash[0]["path"]
            stats["kills_mid_checkpoint_write"] += killed_mid_write
            stats["kills_in_startup"] += not any(n["ev"] == "loop" for n in notes)
            expected_resume = check_run_dir(run, reference, f"kill {stats['kills']}")
            continue
        assert code == 0, f"attempt {stats['attempts']} exited {code}:\n{child.log()}"
        newest = check_run_dir(run, reference, "finished")
        if newest == STEPS:
            stats["runs_completed"] += 1
            final = load_checkpoint(run)  # the run directory: its newest complete checkpoint
            ref = reference["states"][STEPS]
            for key in ("G", "D", "G_ema"):
                for name, tensor in ref[key].items():
                    assert torch.equal(final[key][name], tensor), f"{key}.{name}"
            assert_matches_reference(final, reference, "final")
            assert not orphans(run), f"temporary files left behind: {orphans(run)}"
            if stats["kills"] >= KILLS:
                finished = True
            else:  # the run outpaced the kills: start another one
                run = tmp_path / f"run{stats['runs_completed']}"
                expected_resume = None
        else:
            expected_resume = newest
    assert stats["kills"] >= 20 and stats["kills_mid_checkpoint_write"] >= 3
    assert stats["kills_by_mode"].get("random_time", 0) >= 3
    record_figures(tmp_path_factory, "crash_resume", stats)


def test_resume_picks_the_newest_complete_checkpoint_when_last_pt_lags(server, reference, tmp_path):
    """A crash between writing step_N.pt and re-pointing last.pt: resume from N, not N-1."""
    run = tmp_path / "run"
    child = server.start(argv=train_argv(run, "train.steps=3"))
    assert child.wait() == 0, child.log()
    ckpts = run / "checkpoints"
    # simulate the crash window: last.pt still points at step 2 while step 3 is complete
    (ckpts / "last.pt").unlink()
    os.link(ckpts / "step_0000002.pt", ckpts / "last.pt")
    child = server.start(argv=["--resume", "--out", str(run), f"train.steps={STEPS}"])
    code = child.wait()
    resumed = [n["step"] for n in child.notes() if n["ev"] == "resume"]
    assert code == 0 and resumed == [3], child.log()
    assert_matches_reference(load_checkpoint(ckpts / "last.pt"), reference, "final")


def test_kill_while_config_yaml_is_rewritten_on_resume(server, reference, tmp_path):
    """Every start rewrites run/config.yaml, which `--resume --out run` reads back. A crash right
    after opening it for writing must not leave an empty file: an empty YAML is silently the
    default config (another architecture, data source, step count ...)."""
    run = tmp_path / "run"
    child = server.start(argv=train_argv(run, "train.steps=3"))
    assert child.wait() == 0, child.log()
    saved = (run / "config.yaml").read_text()
    # the first file opened for writing by a resuming run is its config
    child = server.start(argv=["--resume", "--out", str(run), f"train.steps={STEPS}"], crash_fs=1, root=str(run))
    assert child.wait() == -signal.SIGKILL
    crash = [n for n in child.notes() if n["ev"] == "crash"]
    assert crash and crash[0]["event"] == "open", crash
    assert (run / "config.yaml").read_text() == saved
    child = server.start(argv=["--resume", "--out", str(run), "train.steps=5"])
    assert child.wait() == 0, child.log()
    assert_matches_reference(load_checkpoint(run / "checkpoints" / "last.pt"), reference, "after config crash")


def test_kill_inside_atomic_torch_save_of_a_large_object(server, tmp_path, tmp_path_factory):
    """SIGKILL while a 256 MB checkpoint is being written: the target keeps its old content."""
    target = tmp_path / "big.pt"
    hits = 0
    for attempt in range(4):
        target.unlink(missing_ok=True)
        for p in tmp_path.glob(".big.pt.*"):
            p.unlink()
        child = server.start(kind="big_save", path=str(target), numel=64_000_000)
        # wait for the old file, then for the temp file of the new one to start growing
        while child.poll() is None and not any(n["ev"] == "old_saved" for n in child.notes()):
            time.sleep(0.001)
        partial = None
        while child.poll() is None:
            tmp = [p for p in tmp_path.glob(".big.pt.*.tmp") if p.stat().st_size > 0]
            if tmp:
                os.kill(child.pid, signal.SIGKILL)
                partial = tmp[0]
                break
            time.sleep(0.0005)
        code = child.wait()
        state = load_checkpoint_raw(target)
        if code == -signal.SIGKILL and partial is not None:
            assert torch.equal(state["x"], torch.zeros(1000)), "old content lost"
            assert partial.stat().st_size < 64_000_000 * 4, "the temp file was complete"
            hits += 1
        else:  # finished before the kill: then it must be the complete new file
            assert state["x"].numel() == 64_000_000
        if hits >= 2:
            break
    assert hits >= 1, "never managed to kill inside the write"
    record_figures(tmp_path_factory, "atomic_save_kills", {"kills_inside_torch_save_of_256MB": hits})


def load_checkpoint_raw(path: Path) -> dict:
    return torch.load(path, weights_only=True)


# ---------------------------------------------------------------------------------------------
# SIGINT / SIGTERM

def _start_genuine(out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "train.py"), *train_argv(out, *extra)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def _read_until_training(proc: subprocess.Popen, steps: int, timeout: float = WAIT) -> bytes:
    """stderr until tqdm reports at least 2 steps done."""
    buf, deadline = b"", time.time() + timeout
    fd = proc.stderr.fileno()
    while time.time() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buf += chunk
            done = [int(x) for x in re.findall(rb"\| *(\d+)/%d \[" % steps, buf)]
            if done and max(done) >= 2:
                return buf
    raise AssertionError(f"train.py did not start training:\n{buf[-2000:].decode(errors='replace')}")


def test_sigint_and_sigterm_write_a_final_checkpoint_and_exit_0(server, reference, tmp_path):
    """Two genuine `python train.py` processes (started together: each pays the torch import)."""
    steps = 2000  # never reached: the signal stops it; no periodic checkpoints, only the signal's
    procs = {sig: _start_genuine(tmp_path / f"run_{int(sig)}", f"train.steps={steps}", "train.ckpt_every=100000")
             for sig in (signal.SIGINT, signal.SIGTERM)}
    early = {}
    for sig, proc in procs.items():
        early[sig] = _read_until_training(proc, steps)
        proc.send_signal(sig)
    for sig, proc in procs.items():
        out, err = proc.communicate(timeout=WAIT)
        text = (early[sig] + err).decode(errors="replace") + out.decode(errors="replace")  # tqdm.write: stdout
        assert proc.returncode == 0, text[-2000:]
        assert "Traceback" not in text
        line = [ln for ln in text.replace("\r", "\n").splitlines() if "stopped by signal" in ln]
        assert line and f"stopped by signal {int(sig)}" in line[0], text[-2000:]
        run = tmp_path / f"run_{int(sig)}"
        assert len(list_checkpoints(run / "checkpoints")) == 1
        state = load_checkpoint(run / "checkpoints" / "last.pt")
        assert f"step {state['step']};" in line[0] and state["step"] >= 2
        # The signal checkpoint is exact: equal to the uninterrupted run's checkpoint of that step
        # (the total step count changes nothing before it), and resuming from it continues exactly.
        if state["step"] >= STEPS:
            assert all_finite(state)
            continue
        assert_matches_reference(state, reference, f"signal {int(sig)}")
        child = server.start(argv=["--resume", "--out", str(run), f"train.steps={STEPS}", "train.ckpt_every=1"])
        assert child.wait() == 0, child.log()
        assert [n["step"] for n in child.notes() if n["ev"] == "resume"] == [state["step"]]
        assert_matches_reference(load_checkpoint(run / "checkpoints" / "last.pt"), reference, "after signal")


def test_sigterm_to_the_whole_process_group_with_a_dataloader_worker(tmp_path):
    """A scheduler (SLURM, `docker stop`, `kill -- -PGID`) signals every process of the job: the
    DataLoader worker too. It must leave the stop to the main process (it once died mid-step and
    the main process crashed with a traceback, no final checkpoint)."""
    run, steps = tmp_path / "run", 2000
    proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *train_argv(run, f"train.steps={steps}",
                             "train.ckpt_every=100000", "data.workers=1")], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"}, start_new_session=True)
    early = _read_until_training(proc, steps)
    os.killpg(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=WAIT)
    text = (early + err).decode(errors="replace") + out.decode(errors="replace")
    assert proc.returncode == 0 and "Traceback" not in text, text[-2000:]
    assert f"stopped by signal {int(signal.SIGTERM)}" in text
    assert len(list_checkpoints(run / "checkpoints")) == 1
    assert all_finite(load_checkpoint(run / "checkpoints" / "last.pt"))


# ---------------------------------------------------------------------------------------------
# 2. disk full / failing writer

def _good_run(tmp_path, server) -> Path:
    run = tmp_path / "run"
    child = server.start(argv=train_argv(run, "train.steps=2"))
    assert child.wait() == 0, child.log()
    return run


def _snapshot(d: Path) -> dict:
    return {p.name: (p.read_bytes(), p.stat().st_ino) for p in sorted(d.iterdir())}


@pytest.mark.parametrize("failure", ["enospc_mid_write", "enospc_on_fsync", "rename_refused", "link_refused"])
def test_failing_writer_raises_checkpoint_error_and_keeps_the_previous_checkpoint(
        failure, server, tmp_path, monkeypatch):
    run = _good_run(tmp_path, server)
    ckpts = run / "checkpoints"
    before = _snapshot(ckpts)
    state = load_checkpoint(ckpts / "last.pt")
    state["step"] = 3
    real_save = torch.save

    def full_disk_save(obj, f, *a, **kw):
        real_save({"part": torch.zeros(1000)}, f)  # some bytes reach the disk, then it is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def full_disk_fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    if failure == "enospc_mid_write":
        monkeypatch.setattr(ckpt_mod.torch, "save", full_disk_save)
    elif failure == "enospc_on_fsync":
        monkeypatch.setattr(ckpt_mod.os, "fsync", full_disk_fsync)
    elif failure == "rename_refused":
        def refuse(src, dst):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(dst))
        monkeypatch.setattr(ckpt_mod.os, "replace", refuse)
    else:
        def refuse_link(src, dst):
            raise OSError(errno.EMLINK, os.strerror(errno.EMLINK))
        monkeypatch.setattr(ckpt_mod.os, "link", refuse_link)
    with pytest.raises(CheckpointError) as info:
        ckpt_mod.save_checkpoint(state, ckpts, keep_last=2)
    monkeypatch.undo()
    message = str(info.value)
    assert "\n" not in message and message.endswith("last good checkpoint step 2 kept")
    if failure.startswith("enospc"):
        assert message == f"no space left on {ckpts}: checkpoint step 3 not written; last good checkpoint step 2 kept"
    else:
        assert "could not write checkpoint" in message and "step_0000003.pt" in message
    after = _snapshot(ckpts)
    if failure == "link_refused":
        # the new step file is complete (written atomically); last.pt still points at the old one
        assert load_checkpoint(ckpts / "step_0000003.pt")["step"] == 3
        after.pop("step_0000003.pt")
    assert after == before, "the previous checkpoints changed"
    assert load_checkpoint(ckpts / "last.pt")["step"] == 2


def test_train_cli_on_a_full_disk_exits_2_with_one_line(server, tmp_path):
    run = _good_run(tmp_path, server)
    before = _snapshot(run / "checkpoints")
    child = server.start(argv=["--resume", "--out", str(run), "train.steps=4"], disk_full=True)
    code = child.wait()
    # (the message follows tqdm's unfinished progress line on the terminal)
    err = [ln for ln in child.log().replace("\r", "\n").splitlines() if "error: " in ln or "Traceback" in ln]
    assert code == 2 and len(err) == 1 and "error: no space left on " in err[0], child.log()
    assert "checkpoint step 3 not written; last good checkpoint step 2 kept" in err[0]
    assert _snapshot(run / "checkpoints") == before


# ---------------------------------------------------------------------------------------------
# 3. numerical faults: the policy is STOP

def _tiny(tiny_cfg, **train_kw):
    from dataclasses import replace
    return replace(tiny_cfg, train=replace(tiny_cfg.train, steps=6, ckpt_every=1, image_every=100,
                                           log_every=100, keep_last=10, **train_kw))


class _PoisonedDataset(torch.utils.data.Dataset):
    """Wraps a training dataset; from the `after`-th item on, one tensor holds NaN/Inf."""

    def __init__(self, inner, after: int, key: str, value: float):
        self.inner, self.after, self.key, self.value, self.calls = inner, after, key, value, 0

    def __len__(self):
        return len(self.inner)

    def __getitem__(self, item):
        sample = self.inner[item]
        self.calls += 1
        if self.calls > self.after:
            sample = dict(sample)
            t = sample[self.key].clone()
            t[0, 3, 5] = self.value
            sample[self.key] = t
        return sample


def _sha(path: Path) -> str:
    import hashlib
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("key,value,terms", [
    ("image", float("nan"), ["loss/d_adv=nan", "loss/l1=nan"]),
    ("image", float("inf"), ["loss/l1=inf"]),
    ("sketch", float("nan"), ["loss/l1=nan"]),
])
def test_nonfinite_batch_stops_at_that_step_and_keeps_the_good_checkpoint(
        key, value, terms, tiny_cfg, tmp_path, monkeypatch):
    """A NaN/Inf pixel in the 3rd batch (items 5-6): stop at step 2, keep checkpoints 1-2 as they are."""
    import textcolor.training as training_mod
    from textcolor.training import TrainingError, train
    cfg = _tiny(tiny_cfg)
    real_build = training_mod.build_dataset

    def build(cfg_, train):
        ds = real_build(cfg_, train)
        return _PoisonedDataset(ds, after=2 * cfg.train.batch_size, key=key, value=value) if train else ds
    monkeypatch.setattr(training_mod, "build_dataset", build)   # the name the loop calls
    run = tmp_path / "run"
    with pytest.raises(TrainingError) as info:
        train(cfg, run)
    message = str(info.value)
    assert message.startswith("step 2: non-finite loss") and "\n" not in message
    for term in terms:
        assert term in message, message
    names = sorted(p.name for p in (run / "checkpoints").iterdir() if not p.name.startswith("."))
    assert names == ["last.pt", "step_0000001.pt", "step_0000002.pt"]
    state = load_checkpoint(run / "checkpoints/last.pt")
    assert state["step"] == 2 and all_finite(state)
    # and resuming over a good checkpoint with the poison leaves it byte for byte unchanged
    digest = _sha(run / "checkpoints/last.pt")
    monkeypatch.setattr(training_mod, "build_dataset",
                        lambda c, train: _PoisonedDataset(real_build(c, train), 0, key, value)
                        if train else real_build(c, train))
    with pytest.raises(TrainingError, match=r"^step 2: non-finite loss"):
        train(cfg, run, resume=True)
    assert _sha(run / "checkpoints/last.pt") == digest
    assert sorted(p.name for p in (run / "checkpoints").iterdir() if not p.name.startswith(".")) == names


def test_nonfinite_penalty_term_is_named(tiny_cfg, tmp_path, monkeypatch):
    from textcolor import losses
    from textcolor.training import TrainingError, train
    cfg = _tiny(tiny_cfg)
    real = losses.PENALTIES[cfg.loss.penalty]
    calls = {"n": 0}

    def exploding(*a, **kw):
        calls["n"] += 1
        gp = real(*a, **kw)
        return gp * float("inf") if calls["n"] == 4 else gp
    monkeypatch.setitem(losses.PENALTIES, cfg.loss.penalty, exploding)
    with pytest.raises(TrainingError) as info:
        train(cfg, tmp_path / "run")
    assert str(info.value).startswith("step 3: non-finite loss") and "loss/gp=inf" in str(info.value)
    state = load_checkpoint(tmp_path / "run")
    assert state["step"] == 3 and all_finite(state)


def test_nan_gradient_with_finite_loss_never_reaches_a_checkpoint(tiny_cfg, tmp_path, monkeypatch):
    """Every reported loss is finite, but the gradient is NaN (d√x at 0): the update poisons the
    weights. The run must stop before writing those weights, naming the step and the module."""
    from textcolor import losses
    from textcolor.training import TrainingError, train
    cfg = _tiny(tiny_cfg)
    real_l1 = losses.l1
    calls = {"n": 0}

    def l1(fake, real):
        calls["n"] += 1
        value = real_l1(fake, real)
        if calls["n"] == 3:  # value + 0, gradient NaN
            value = value + 0 * torch.sqrt((fake * 0).sum())
        return value
    monkeypatch.setattr(losses, "l1", l1)
    with pytest.raises(TrainingError) as info:
        train(cfg, tmp_path / "run")
    message = str(info.value)
    assert message.startswith("step 2: non-finite") and "G" in message and "\n" not in message, message
    for p in list_checkpoints(tmp_path / "run" / "checkpoints"):
        assert all_finite(load_checkpoint(p)), p.name
    assert load_checkpoint(tmp_path / "run")["step"] == 2
