"""One-run performance benchmark: machine ceiling, training, penalty, data, inference, memory.

    python -m textcolor.bench                        # full run (< 10 min on 2 CPU cores), bench.json
    python -m textcolor.bench --device cuda --json out/bench.json
    python -m textcolor.bench --quick --config-overrides data.size=32 gen.base=8   # tiny smoke run

Everything is measured in the same run, on the same machine, so the ratios are meaningful:

  ceiling   fp32 peak GFLOP/s: on CPU the best of several GEMM shapes, the base config's conv2d
            forwards and thread counts, beside the theoretical FMA peak (textcolor/peak.py); the
            square matmul alone is fp32_matmul_gflops (bf16 too).
  train     images/s of the training's own step (textcolor.training.TrainStep) for configs/base.yaml
            and configs/demo.yaml (random tensors, so no data loading), in a child process each (its
            peak RSS is the training memory). FLOPs per step are counted with FlopCounterMode over
            one step (G forward, D main, penalty double backward, G main). MFU = FLOP/s ÷ the
            measured fp32 peak (mfu_theoretical: ÷ the FMA peak). Phase split: the same step with a
            timing hook around its phases (G forward | D main | penalty | D update | G main | EMA;
            the penalty's backward is in D update, one
            backward with D main's); `phases.sum_over_step` says how the phases add up to a step.
  penalty   base-config step time with the zero-centred penalty every step and lazy (every 16
            steps: one step with it, 15 without, amortised), each ÷ the step time with no penalty.
            The variants are interleaved in rounds (main, phase-timed, no penalty, lazy without
            penalty) and the ratios are medians of per-round ratios, so drift hits all alike.
  contention  the share of the machine's CPU other processes used during the run
            (meta.contention) and the other runnable tasks at start and after each section; above
            5 %, or with another runnable task, or with an MFU above 1, no target prints PASS.
  data      XDoG and synth-render images/s, and a DataLoader over a freshly prepared cache (and over
            the synth source that base.yaml trains on) with the config's worker count, ÷ the rate
            training consumes images.
  infer     ms per image of the shipped generator at batch 1 and 8; wall time of a cold
            `infer.py` process (known tag, unseen tag with an empty embedding cache, unseen tag
            again with the cache filled); time and peak RSS of the full Colorizer call at several
            sizes, each in a fresh process, and how they grow against the pixel count.

All repeated timings are medians after warm-up. Targets are checked and written to `targets`.
The JSON holds nested dicts; see `REQUIRED_KEYS` for the keys every run produces.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from textcolor.config import BUNDLED_CONFIGS  # light: omegaconf only

REPO = Path(__file__).resolve().parent.parent
EMBED_DIM = 384            # all-MiniLM-L6-v2, the bundled tag encoder
LAZY_EVERY = 16            # the lazy-penalty interval the penalty section measures
KNOWN_TAG = "hatsune_miku"
UNSEEN_TAG = "crimson hair"

# Every run produces these (dotted paths into the JSON); tests check them.
REQUIRED_KEYS = (
    "ceiling.fp32_gflops",
    "train.base.images_per_s", "train.base.mfu", "train.base.flops_per_image", "train.base.step_s",
    "train.demo.images_per_s", "train.demo.mfu", "train.demo.flops_per_image",
    "penalty.every_step_overhead", "penalty.lazy_overhead",
    "data.xdog_images_per_s", "data.render_images_per_s", "data.loader_images_per_s",
    "data.loader_over_consumption",
    "infer.ms_per_image_b1", "infer.ms_per_image_b8", "infer.cold_start_s",
    "memory.train_base_peak_mb", "memory.train_demo_peak_mb",
)

TARGETS = {  # name: (dotted key, op, target); growth targets are filled in with the pixel ratio
    "train_base_mfu": ("train.base.mfu", ">=", 0.70),
    "penalty_lazy_overhead": ("penalty.lazy_overhead", "<=", 1.10),
    "loader_over_consumption": ("data.loader_over_consumption", ">=", 5.0),
    "infer_cold_start_s": ("infer.cold_start_s", "<=", 2.0),
    "infer_time_growth": ("infer.growth.time_ratio", "<=", None),
    "infer_memory_growth": ("infer.growth.memory_ratio", "<=", None),
}


class BenchError(RuntimeError):
    """A section that could not be measured; one line."""


@dataclass
class Options:
    device: str = "cpu"
    quick: bool = False
    overrides: list[str] = field(default_factory=list)
    base_config: str = str(BUNDLED_CONFIGS / "base.yaml")
    demo_config: str = str(BUNDLED_CONFIGS / "demo.yaml")
    threads: int = 0
    infer_size: int = 256
    infer_sizes: tuple[int, ...] = (256, 512, 1024)
    cache_images: int = 0          # 0: 300 (full) / 32 (quick)
    train_budget_s: float = 0.0    # 0: 220 (full) / 10 (quick) for base; demo gets a fixed share
    unseen: bool = True            # time infer.py with an unseen tag (loads the text model)


# --- small helpers -----------------------------------------------------------------------------

# children log against the parent's start, so one run reads as one timeline
_T0 = float(os.environ.get("TEXTCOLOR_BENCH_T0") or time.time())


def log(msg: str) -> None:
    print(f"[bench {time.time() - _T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def _proc_status_kb(field_name: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return float(line.split()[1])
    except OSError:
        pass
    return None


def rss_mb() -> float:
    kb = _proc_status_kb("VmRSS")
    return (kb or 0.0) / 1024


def peak_rss_mb() -> float:
    """Peak resident set of this process (VmHWM; ru_maxrss where /proc is missing)."""
    kb = _proc_status_kb("VmHWM")
    if kb is None:
        import resource
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if sys.platform == "darwin":
            kb /= 1024
    return kb / 1024


def cpu_snapshot() -> dict:
    """Machine-wide busy and steal CPU seconds (/proc/stat) and this process tree's own CPU
    seconds (self + waited-for children), to tell afterwards how much of the machine others used."""
    import resource
    own = sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
              for f in ("ru_utime", "ru_stime"))
    snap = {"own_s": own, "wall": time.time()}
    try:
        fields = [float(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        hz = os.sysconf("SC_CLK_TCK")
        user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0.0] * 8)[:8]
        snap.update(busy_s=(user + nice + system + irq + softirq) / hz, steal_s=steal / hz)
    except (OSError, ValueError, IndexError):
        pass
    return snap


def contention(before: dict, after: dict) -> dict:
    """Share of the machine's CPU time that went to other processes (and to the hypervisor)
    while the benchmark ran: timings taken with a high share are contaminated."""
    n = os.cpu_count() or 1
    capacity = max(after["wall"] - before["wall"], 1e-9) * n
    out = {"cpus": n}
    if "busy_s" in before and "busy_s" in after:
        others = max(0.0, (after["busy_s"] - before["busy_s"]) - (after["own_s"] - before["own_s"]))
        out["other_processes_cpu_share"] = others / capacity
        out["steal_share"] = max(0.0, after["steal_s"] - before["steal_s"]) / capacity
    out["own_cpu_share"] = (after["own_s"] - before["own_s"]) / capacity
    try:
        out["loadavg_1min_end"] = os.getloadavg()[0]
    except OSError:
        pass
    return out


def _sync(device) -> None:
    import torch
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device) -> float:
    _sync(device)
    t = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t


def median(xs) -> float:
    return float(statistics.median(xs))


def _get(d: dict, dotted: str):
    for part in dotted.split("."):
        if not isinstance(d, dict) or part not in d:
            return None
        d = d[part]
    return d


def _plan(step_s: float, budget_s: float, cost_per_rep: float, lo: int, hi: int) -> int:
    """How many repetitions fit in the budget (at least lo, at most hi)."""
    if step_s <= 0:
        return hi
    return max(lo, min(hi, int(budget_s / (step_s * cost_per_rep))))


class _NoModuleTracker:
    """FlopCounterMode's module tracker hooks backward, which breaks autograd.grad on leaf inputs
    (the penalty); only the global total is needed."""
    parents = {"Global"}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def flop_counter():
    from torch.utils.flop_counter import FlopCounterMode
    fc = FlopCounterMode(display=False)
    fc.mod_tracker = _NoModuleTracker()
    return fc


def generator_flops(cfg, embed_dim: int = 384, tags: int = 10) -> float:
    """FLOPs of one generator forward + backward for one image at cfg.data.size (a prompt of
    `tags` tags): what a configuration costs before any timing."""
    import torch
    from textcolor.models import Generator
    g = Generator(cfg.gen, cfg.tags, embed_dim)
    sketch = torch.rand(1, 3, cfg.data.size, cfg.data.size) * 2 - 1
    emb = torch.randn(1, tags, embed_dim + 1) if cfg.tags.pool == "attention" else torch.randn(1, embed_dim)
    if emb.dim() == 3:
        emb[..., -1] = 1.0
    with flop_counter() as fc:
        g(sketch, emb).mean().backward()
    return float(fc.get_total_flops())


def _flops_by_op(fc) -> dict[str, float]:
    counts = fc.get_flop_counts().get("Global", {})
    return {str(getattr(op, "__name__", op)).split(".")[-1]: float(v) for op, v in counts.items() if v > 0}


# --- child processes ---------------------------------------------------------------------------

def run_child(kind: str, spec: dict, timeout: float = 3600) -> dict:
    """Run `kind` in a fresh Python process (own peak RSS, own allocator); return its JSON."""
    with tempfile.TemporaryDirectory(prefix="textcolor-bench-") as td:
        out = Path(td) / "out.json"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in [env.get("PYTHONPATH")] if p])
        env.setdefault("HF_HUB_OFFLINE", "1")
        env["TEXTCOLOR_BENCH_T0"] = repr(_T0)
        cmd = [sys.executable, "-m", "textcolor.bench", "--worker", kind,
               "--worker-spec", json.dumps(spec), "--worker-out", str(out)]
        try:  # the child's progress lines go to our stderr, live where it is a real file
            sys.stderr.flush()
            err_fd = sys.stderr.fileno()
        except (AttributeError, OSError, ValueError):
            err_fd = None
        try:
            proc = subprocess.run(cmd, env=env, timeout=timeout, stdout=err_fd or subprocess.PIPE,
                                  stderr=err_fd or subprocess.STDOUT, text=True)
        except subprocess.TimeoutExpired:
            raise BenchError(f"{kind} worker ran past {timeout:.0f} s") from None
        if err_fd is None and proc.stdout:
            sys.stderr.write(proc.stdout)
        if proc.returncode != 0 or not out.exists():
            raise BenchError(f"{kind} worker failed (exit {proc.returncode}); its output is above")
        return json.loads(out.read_text())


def _worker_setup(spec: dict):
    import torch
    from textcolor.memory import keep_freed_memory
    keep_freed_memory()  # as train.py and infer.py do
    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    return torch.device(spec["device"])


# --- ceiling -----------------------------------------------------------------------------------

def matmul_gflops(device, dtype, sizes, reps: int) -> tuple[float, int]:
    """Best GFLOP/s of an n×n @ n×n matmul over sizes and repetitions (after one warm-up)."""
    import torch
    best, best_n = 0.0, sizes[0]
    for n in sizes:
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        timed(lambda: a @ b, device)
        for _ in range(reps):
            t = timed(lambda: a @ b, device)
            rate = 2 * n ** 3 / t / 1e9
            if rate > best:
                best, best_n = rate, n
        del a, b
    return best, best_n


def bench_ceiling(opts: Options) -> dict:
    """fp32_gflops, the MFU basis: on CPU the best of several GEMM shapes, the base config's conv2d
    forwards and thread counts (textcolor/peak.py), with the theoretical FMA peak beside it; on CUDA
    the best square matmul. The square matmul is kept as fp32_matmul_gflops."""
    import torch
    dev = torch.device(opts.device)
    if dev.type == "cuda":
        sizes, reps = ((4096,), 3) if opts.quick else ((4096, 8192), 5)
    else:
        sizes, reps = ((1024,), 3) if opts.quick else ((2048, 4096), 4)
    fp32, n32 = matmul_gflops(dev, torch.float32, sizes, reps)
    log(f"ceiling: fp32 matmul {fp32:.1f} GFLOP/s (n={n32})")
    out = {"fp32_gflops": fp32, "fp32_matmul_gflops": fp32, "fp32_matmul_n": n32, "peak_kernel": f"matmul n={n32}"}
    if dev.type == "cpu":
        from textcolor import peak
        from textcolor.config import load_config
        info = peak.cpu_info()
        m = peak.measured_gflops(load_config(opts.base_config, opts.overrides), quick=opts.quick)
        if m["best_gflops"] > fp32:
            out.update(fp32_gflops=m["best_gflops"], peak_kernel=m["best_kernel"])
        out.update(gemm_best_gflops=m["gemm_best_gflops"], conv_best_gflops=m.get("conv_best_gflops", 0.0),
                   peak_by_threads={str(k): v for k, v in m["by_threads"].items()},
                   cpu={k: v for k, v in info.items() if v is not None})
        theory = peak.theoretical_gflops(info)
        if theory:
            out["theoretical_gflops"] = theory
        log(f"ceiling: measured fp32 peak {out['fp32_gflops']:.1f} GFLOP/s ({out['peak_kernel']}); "
            f"theoretical FMA peak {f'{theory:.1f} GFLOP/s' if theory else 'unknown'}")
    # a CPU without bf16 matrix units (AVX512-BF16, AMX) emulates bf16 GEMM at a few GFLOP/s: one
    # n = 4096 product there takes minutes, so it gets one small size (its figure says as much)
    native_bf16 = dev.type == "cuda" or bool(peak.cpu_info().get("bf16"))
    try:
        bf16, n16 = matmul_gflops(dev, torch.bfloat16, sizes if native_bf16 else (1024,),
                                  reps if native_bf16 else 2)
        out.update(bf16_gflops=bf16, bf16_matmul_n=n16)
        log(f"ceiling: bf16 matmul {bf16:.1f} GFLOP/s (n={n16})")
    except RuntimeError as e:  # bf16 matmul unsupported on this device
        log(f"ceiling: bf16 matmul unavailable ({str(e).splitlines()[0][:80]})")
    if dev.type == "cuda":
        out["tf32_allowed"] = bool(torch.backends.cuda.matmul.allow_tf32)
    return out


# --- training ----------------------------------------------------------------------------------

class _PhaseClock:
    """Accumulates wall time per phase name (device-synchronised)."""

    def __init__(self, device):
        self.device, self.times = device, {}

    @contextlib.contextmanager
    def __call__(self, name: str):
        _sync(self.device)
        t = time.perf_counter()
        yield
        _sync(self.device)
        self.times[name] = self.times.get(name, 0.0) + time.perf_counter() - t


class _PhaseFlops:
    """Accumulates counted FLOPs per phase name."""

    def __init__(self):
        self.times = {}   # same attribute as _PhaseClock: name -> FLOPs

    @contextlib.contextmanager
    def __call__(self, name: str):
        fc = flop_counter()
        with fc:
            yield
        self.times[name] = self.times.get(name, 0.0) + float(fc.get_total_flops())


def _train_inputs(cfg, device):
    import torch
    import torch.nn.functional as F
    g = torch.Generator().manual_seed(0)
    b, s = cfg.train.batch_size, cfg.data.size
    lines = (torch.rand(b, 1, s, s, generator=g) > 0.1).float()          # paper 1, ink 0
    sketch = (lines * 2 - 1).expand(b, 3, s, s).contiguous()
    image = torch.rand(b, 3, s, s, generator=g) * 2 - 1
    emb = F.normalize(torch.randn(b, EMBED_DIM, generator=g), dim=1)
    mem = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
    return (sketch.to(device, memory_format=mem), image.to(device, memory_format=mem), emb.to(device))


def _loss_variant(cfg, **kw):
    return replace(cfg, loss=replace(cfg.loss, **kw))


def train_worker(spec: dict) -> dict:
    """Benchmark one config's TrainStep; optionally the penalty variants (in this process)."""
    import torch
    from contextlib import nullcontext
    from textcolor.config import load_config
    from textcolor.training import TrainStep
    from textcolor.trainstate import build

    device = _worker_setup(spec)
    name, quick, budget = spec["name"], spec["quick"], spec["budget_s"]
    cfg = load_config(spec["config"], spec["overrides"])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    rss0 = rss_mb()
    m = build(cfg, EMBED_DIM, device)
    rss_build = rss_mb()
    sketch, image, emb = _train_inputs(cfg, device)
    use_amp = cfg.train.amp and device.type == "cuda"
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if use_amp else nullcontext
    counter = [0]
    steps: dict[int, TrainStep] = {}   # one TrainStep per loss variant: its objective resolved once

    def step(c=cfg, index: int | None = None) -> float:
        i = counter[0] if index is None else index
        counter[0] += 1
        run = steps.setdefault(id(c), TrainStep(m, c, 1, autocast))
        return timed(lambda: run(sketch, image, emb, i), device)

    # FLOPs of one real step (step 0: the penalty runs whatever gp_every is); it is also warm-up 1
    fc = flop_counter()
    t = time.perf_counter()
    with fc:
        TrainStep(m, cfg, 1, autocast)(sketch, image, emb, 0)
    _sync(device)
    flops = float(fc.get_total_flops())
    log(f"train/{name}: {flops / 1e9:.1f} GFLOP per step counted ({time.perf_counter() - t:.1f} s)")
    # FLOPs per phase (the same step with a counting phase hook); warm-up 2
    pf = _PhaseFlops()
    TrainStep(m, cfg, 1, autocast, phase=pf)(sketch, image, emb, 0)
    phase_flops = {k: v for k, v in pf.times.items() if v > 0}   # EMA has no matmul/conv

    # warm-up 3: a plain step, not in the medians; its time plans the rounds
    gp_on, gp_every = cfg.loss.penalty != "none", cfg.loss.gp_every
    on_idx = lambda j: j * gp_every  # noqa: E731 - step indices where the config's penalty runs
    warm = step(index=0 if gp_on else None)
    variants = spec["penalty_variants"]
    every_cfg = _loss_variant(cfg, penalty="zero_mixed", gp_every=1)
    none_cfg = _loss_variant(cfg, penalty="none")
    lazy_cfg = _loss_variant(cfg, penalty="zero_mixed", gp_every=LAZY_EVERY)
    # the main step is the every-step variant for base.yaml; a lazy step with its penalty runs
    # the same operations (only the penalty's weight differs), so it is not timed twice
    every_is_main = (cfg.loss.penalty, gp_every) == ("zero_mixed", 1)
    cost = 2.05 + (gp_every > 1 and gp_on) * 0.7          # main + phase-timed step (+ the off step)
    if variants:
        cost += 1.4 + (0 if every_is_main else 2.0)         # none + lazy without (+ every + lazy with)
    lo = 1 if quick else (3 if 3 * cost * warm <= 1.5 * budget else 2)
    rounds = _plan(warm, budget, cost, lo, 10 if variants else 40)
    log(f"train/{name}: warm-up step {warm:.3f} s; {rounds} interleaved rounds")

    # interleaved rounds: drift or a neighbour's load hits every variant of a round alike, and the
    # ratios below are taken within a round
    rec: dict[str, list[float]] = {}
    phase_reps: dict[str, list[float]] = {}
    add = lambda k, v: rec.setdefault(k, []).append(v)  # noqa: E731
    for j in range(rounds):
        add("main", step(index=on_idx(j) if gp_on else None))
        if gp_on and gp_every > 1:                          # a lazy config: its steps without penalty
            add("main_off", step(index=on_idx(j) + 1))
        clock = _PhaseClock(device)
        TrainStep(m, cfg, 1, autocast, phase=clock)(sketch, image, emb, on_idx(j))
        for k, v in clock.times.items():
            phase_reps.setdefault(k, []).append(v)
        phase_reps.setdefault("sum", []).append(sum(clock.times.values()))
        if variants:
            add("none", step(none_cfg))
            add("lazy_off", step(lazy_cfg, index=LAZY_EVERY * (j + 1) + 1 + j % (LAZY_EVERY - 1)))
            if every_is_main:
                add("every", rec["main"][-1])
                add("lazy_on", rec["main"][-1])
            else:
                add("every", step(every_cfg))
                add("lazy_on", step(lazy_cfg, index=LAZY_EVERY * (j + 1)))
    if "main_off" in rec:  # amortise a lazy config's penalty over its interval
        per_round = [(a + (gp_every - 1) * b) / gp_every for a, b in zip(rec["main"], rec["main_off"])]
    else:
        per_round = rec["main"]
    step_s = median(per_round)
    log(f"train/{name}: step {step_s:.3f} s (median of {rounds}) → {cfg.train.batch_size / step_s:.3f} images/s")
    phases = {f"{k}_s": median(v) for k, v in phase_reps.items()}
    phases["sum_over_step"] = median([s / t for s, t in zip(phase_reps["sum"], rec["main"])])
    log(f"train/{name}: phases " + ", ".join(f"{k} {v:.3f}" for k, v in phases.items()))

    out = {
        "config": spec["config"], "batch_size": cfg.train.batch_size, "size": cfg.data.size,
        "step_s": step_s, "step_s_all": per_round, "warmup_step_s": warm, "steps_timed": rounds,
        "images_per_s": cfg.train.batch_size / step_s,
        "flops_per_step": flops, "flops_per_image": flops / cfg.train.batch_size,
        "flops_by_op": _flops_by_op(fc), "phase_flops": phase_flops,
        "phase_flops_sum_over_step": sum(phase_flops.values()) / flops,
        "phases": phases,
        "rss_after_import_mb": rss0, "rss_after_build_mb": rss_build,
        "threads": torch.get_num_threads(), "amp": use_amp,
        "params_g": sum(p.numel() for p in m.G.parameters()),
        "params_d": sum(p.numel() for p in m.D.parameters()),
    }

    if variants:
        t_none, t_every = median(rec["none"]), median(rec["every"])
        lazy = [(a + (LAZY_EVERY - 1) * b) / LAZY_EVERY for a, b in zip(rec["lazy_on"], rec["lazy_off"])]
        out["penalty"] = {
            "step_s_none": t_none, "step_s_every": t_every,
            "step_s_lazy_with_penalty": median(rec["lazy_on"]),
            "step_s_lazy_without_penalty": median(rec["lazy_off"]),
            "step_s_lazy_amortised": median(lazy), "lazy_every": LAZY_EVERY, "rounds": rounds,
            "lazy_with_penalty_is_main_step": every_is_main,
            # medians of the per-round ratios (each round times all variants back to back)
            "every_step_overhead": median([a / b for a, b in zip(rec["every"], rec["none"])]),
            "lazy_overhead": median([a / b for a, b in zip(lazy, rec["none"])]),
            "lazy_off_over_none": median([a / b for a, b in zip(rec["lazy_off"], rec["none"])]),
        }
        log(f"train/{name}: penalty none {t_none:.3f} s, every step {t_every:.3f} s, "
            f"lazy/{LAZY_EVERY} {median(lazy):.3f} s amortised")

    out["peak_rss_mb"] = peak_rss_mb()
    if device.type == "cuda":
        out["cuda_max_allocated_mb"] = torch.cuda.max_memory_allocated(device) / 2 ** 20
    return out


def bench_train(opts: Options, name: str, config: str, budget: float, penalty_variants: bool) -> dict:
    spec = {"name": name, "config": config, "overrides": opts.overrides, "device": opts.device,
            "threads": opts.threads, "quick": opts.quick, "budget_s": budget,
            "penalty_variants": penalty_variants}
    log(f"train/{name}: {Path(config).name} {' '.join(opts.overrides)} (child process)")
    return run_child("train", spec)


# --- data --------------------------------------------------------------------------------------

def _loader_rate(dataset, cfg, device, n_batches: int, min_s: float) -> dict:
    """Images/s of the training DataLoader setup (sampler, workers, prefetch) after the first batch."""
    import torch
    from torch.utils.data import DataLoader
    from textcolor.training import ResumableSampler
    workers = cfg.data.workers
    loader = DataLoader(dataset, batch_size=cfg.train.batch_size,
                        sampler=ResumableSampler(len(dataset), cfg.train.seed), drop_last=True,
                        num_workers=workers, pin_memory=torch.device(device).type == "cuda",
                        prefetch_factor=4 if workers > 0 else None)
    t0 = time.perf_counter()
    it = iter(loader)
    next(it)
    first = time.perf_counter() - t0
    t0, got = time.perf_counter(), 0
    while got < n_batches or time.perf_counter() - t0 < min_s:
        next(it)
        got += 1
        if got >= 50 * n_batches:
            break
    dt = time.perf_counter() - t0
    del it, loader
    return {"images_per_s": got * cfg.train.batch_size / dt, "first_batch_s": first, "batches": got,
            "workers": workers}


def bench_data(opts: Options, consumption: float | None) -> dict:
    import torch
    from textcolor import prepare
    from textcolor.config import load_config
    from textcolor.data import CacheDataset
    from textcolor.data import SynthDataset
    from textcolor.synth import render
    from textcolor.synthfolder import write_folder
    from textcolor.xdog import xdog_rgb

    cfg = load_config(opts.base_config, opts.overrides)
    size, quick = cfg.data.size, opts.quick
    out: dict[str, Any] = {"size": size}

    # XDoG, batched as the loader/prepare would use it
    batch = 4 if quick else 16
    x = torch.rand(batch, 3, size, size)
    xdog_rgb(x, cfg.xdog)
    ts = [timed(lambda: xdog_rgb(x, cfg.xdog), "cpu") for _ in range(3 if quick else 7)]
    out["xdog_images_per_s"] = batch / median(ts)
    out["xdog_batch"] = batch
    log(f"data: XDoG {out['xdog_images_per_s']:.1f} images/s at {size} px (batch {batch})")

    # synthetic renders, one at a time (what SynthDataset does per sample)
    n = 4 if quick else 24
    render(10**6, size)
    t = time.perf_counter()
    for i in range(n):
        render(10**6 + 1 + i, size)
    out["render_images_per_s"] = n / (time.perf_counter() - t)
    ds = SynthDataset(n=n, size=size, xdog=cfg.xdog, flip=True)
    t = time.perf_counter()
    for i in range(n):
        ds[(i, i)]
    out["synth_sample_per_s"] = n / (time.perf_counter() - t)
    log(f"data: render {out['render_images_per_s']:.1f} images/s, SynthDataset sample "
        f"{out['synth_sample_per_s']:.1f}/s")

    # a prepared cache from synth images
    n_cache = opts.cache_images or (32 if quick else 300)
    n_cache = max(n_cache, cfg.train.batch_size)
    with tempfile.TemporaryDirectory(prefix="textcolor-bench-data-") as td:
        src, cache = Path(td) / "synth", Path(td) / "cache"
        t = time.perf_counter()
        write_folder(src, n_cache, 0, size, cfg.data.mono_frac)
        out["synth_write_images_per_s"] = n_cache / (time.perf_counter() - t)
        t = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):
            rc = prepare.main(["--folder", str(src), "--out", str(cache), "--size", str(size),
                               "--workers", str(max(1, min(2, os.cpu_count() or 1)))])
        if rc != 0:
            raise BenchError(f"textcolor.prepare exited with {rc}")
        out["prepare_images_per_s"] = n_cache / (time.perf_counter() - t)
        out["cache_images"] = n_cache
        log(f"data: wrote {n_cache} synth images ({out['synth_write_images_per_s']:.1f}/s), "
            f"prepared the cache ({out['prepare_images_per_s']:.1f}/s)")
        cache_ds = CacheDataset(cache, size=size, train=True, flip=cfg.data.flip, xdog=cfg.xdog)
        nb, min_s = (5, 0.5) if quick else (40, 4.0)
        r = _loader_rate(cache_ds, cfg, opts.device, nb, min_s)
    out["loader_images_per_s"] = r["images_per_s"]
    out["loader_first_batch_s"] = r["first_batch_s"]
    out["loader_workers"] = r["workers"]
    out["loader_batches"] = r["batches"]
    log(f"data: cache DataLoader {r['images_per_s']:.1f} images/s ({r['workers']} workers)")
    synth_ds = SynthDataset(n=cfg.data.synth_n, size=size, mono_frac=cfg.data.mono_frac,
                            xdog=cfg.xdog, flip=cfg.data.flip)
    nb, min_s = (3, 0.3) if quick else (15, 3.0)
    r = _loader_rate(synth_ds, cfg, opts.device, nb, min_s)
    out["loader_synth_images_per_s"] = r["images_per_s"]
    log(f"data: synth DataLoader {r['images_per_s']:.1f} images/s ({r['workers']} workers)")
    if consumption:
        out["consumption_images_per_s"] = consumption
        out["loader_over_consumption"] = out["loader_images_per_s"] / consumption
        out["synth_loader_over_consumption"] = out["loader_synth_images_per_s"] / consumption
    return out


# --- inference ---------------------------------------------------------------------------------

def infer_worker(spec: dict) -> dict:
    """The shipped model at one working size, in a fresh process: full Colorizer call time and
    peak RSS; optionally the generator alone at several batch sizes."""
    import torch
    from PIL import Image
    from textcolor.colorize import Colorizer

    device = _worker_setup(spec)
    size, reps = spec["size"], spec["reps"]
    rss0 = rss_mb()
    col = Colorizer.from_checkpoint(device=str(device), size=size)
    rss_load = rss_mb()
    img = Image.open(spec["sketch"]).convert("RGB").resize((size, size), Image.Resampling.LANCZOS)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    col(img, KNOWN_TAG)  # warm-up
    ts = [timed(lambda: col(img, KNOWN_TAG), device) for _ in range(reps)]
    out = {"size": size, "pipeline_ms": 1000 * median(ts), "rss_after_import_mb": rss0,
           "rss_after_load_mb": rss_load, "peak_rss_mb": peak_rss_mb()}
    out["working_mb"] = out["peak_rss_mb"] - rss_load
    if device.type == "cuda":
        out["cuda_max_allocated_mb"] = torch.cuda.max_memory_allocated(device) / 2 ** 20
    item = col.prepare(img)
    for b in spec.get("batches", []):
        sketch = item.sketch[None].expand(b, -1, -1, -1).contiguous().to(device)
        emb = col.embed([KNOWN_TAG] * b)
        with torch.no_grad():
            col.G(sketch, emb)
            tb = [timed(lambda: col.G(sketch, emb), device) for _ in range(reps)]
        out[f"g_ms_per_image_b{b}"] = 1000 * median(tb) / b
    return out


def _infer_cli(sketch: Path, tag: str, cache: Path, device: str, out_png: Path) -> float:
    """Wall time of `python infer.py --sketch s.png --tags TAG` from spawn to exit (PNG written)."""
    env = dict(os.environ, TEXTCOLOR_CACHE=str(cache), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    cmd = [sys.executable, str(REPO / "infer.py"), "--sketch", str(sketch), "--tags", tag,
           "--out", str(out_png), "--device", device]
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=str(sketch.parent), capture_output=True, text=True)
    dt = time.perf_counter() - t
    if proc.returncode != 0 or not out_png.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise BenchError(f"infer.py --tags {tag!r} failed (exit {proc.returncode}): {tail[0][:200]}")
    return dt


def bench_infer(opts: Options) -> tuple[dict, dict]:
    from PIL import Image
    from textcolor.synth import render
    from textcolor.xdog import sketch_array

    quick = opts.quick
    reps = 2 if quick else 5
    res: dict[str, Any] = {"model": "shipped", "working_size": opts.infer_size}
    mem: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="textcolor-bench-infer-") as td:
        td = Path(td)
        sketch = td / "s.png"
        Image.fromarray(sketch_array(render(3, 256).image)).save(sketch)

        # the generator alone at the working size, batch 1 and 8, and the full call per size
        sizes = sorted(set(opts.infer_sizes))
        per_size: dict[str, dict] = {}
        for s in sorted(set(sizes) | {opts.infer_size}):
            spec = {"size": s, "device": opts.device, "threads": opts.threads, "sketch": str(sketch),
                    "reps": reps, "batches": [1, 8] if s == opts.infer_size else []}
            r = run_child("infer", spec)
            if s == opts.infer_size:
                res["ms_per_image_b1"] = r["g_ms_per_image_b1"]
                res["ms_per_image_b8"] = r["g_ms_per_image_b8"]
                res["pipeline_ms_b1"] = r["pipeline_ms"]
                log(f"infer: G at {s} px: {r['g_ms_per_image_b1']:.1f} ms/image (b1), "
                    f"{r['g_ms_per_image_b8']:.1f} ms/image (b8); full call {r['pipeline_ms']:.1f} ms")
            if s in sizes:
                per_size[str(s)] = {k: v for k, v in r.items() if not k.startswith("g_ms")}
                log(f"infer: {s} px full call {r['pipeline_ms']:.1f} ms, peak RSS {r['peak_rss_mb']:.0f} MB "
                    f"(+{r['working_mb']:.0f} MB over the loaded model)")
        res["sizes"] = per_size
        if len(sizes) >= 2:
            lo, hi = per_size[str(sizes[0])], per_size[str(sizes[-1])]
            floor = 1.0  # MB: keeps the ratio finite when the small size needs no new pages
            res["growth"] = {
                "from_px": sizes[0], "to_px": sizes[-1], "pixel_ratio": (sizes[-1] / sizes[0]) ** 2,
                "time_ratio": hi["pipeline_ms"] / lo["pipeline_ms"],
                "memory_ratio": max(hi["working_mb"], floor) / max(lo["working_mb"], floor),
                "peak_rss_ratio": hi["peak_rss_mb"] / lo["peak_rss_mb"],
            }
        mem["infer_peak_mb"] = {s: v["peak_rss_mb"] for s, v in per_size.items()}
        mem["infer_working_mb"] = {s: max(v["working_mb"], 0.0) for s, v in per_size.items()}

        # cold processes
        env = dict(os.environ, HF_HUB_OFFLINE="1")
        its = []
        for _ in range(1 if quick else 2):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", "import torch"], env=env, check=True)
            its.append(time.perf_counter() - t)
        res["python_torch_import_s"] = median(its)
        cold = []
        for i in range(1 if quick else 3):
            cold.append(_infer_cli(sketch, KNOWN_TAG, td / f"cache_known{i}", opts.device, td / f"known{i}.png"))
        res["cold_start_s"] = median(cold)
        res["cold_start_all_s"] = cold
        log(f"infer: cold infer.py, known tag: {res['cold_start_s']:.2f} s "
            f"(python + import torch alone {res['python_torch_import_s']:.2f} s)")
        if opts.unseen:
            cache = td / "cache_unseen"
            res["cold_start_unseen_s"] = _infer_cli(sketch, UNSEEN_TAG, cache, opts.device, td / "unseen0.png")
            res["unseen_cached_s"] = _infer_cli(sketch, UNSEEN_TAG, cache, opts.device, td / "unseen1.png")
            log(f"infer: unseen tag {UNSEEN_TAG!r}: {res['cold_start_unseen_s']:.2f} s with an empty "
                f"embedding cache, {res['unseen_cached_s']:.2f} s with it filled")
    return res, mem


# --- the run -----------------------------------------------------------------------------------

def _section(errors: dict, name: str, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception as e:  # one failed section must not lose the others' numbers
        errors[name] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]
        log(f"{name}: FAILED ({errors[name]})")
        return None


def run_benchmark(opts: Options) -> dict:
    import torch
    from textcolor.memory import keep_freed_memory
    if opts.threads:
        torch.set_num_threads(opts.threads)
    t_start = time.perf_counter()
    res: dict[str, Any] = {
        "meta": {"torch": torch.__version__, "python": platform.python_version(),
                 "machine": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
                 "threads": torch.get_num_threads(), "device": opts.device, "quick": opts.quick,
                 "overrides": list(opts.overrides), "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                 "keep_freed_memory": keep_freed_memory()},   # as the workers, train.py and infer.py set it
    }
    if opts.device == "cuda":
        res["meta"]["gpu"] = torch.cuda.get_device_name(0)
    try:
        res["meta"]["loadavg_1min_start"] = os.getloadavg()[0]
    except OSError:
        pass
    snap = cpu_snapshot()
    from textcolor.threads import other_load
    loads = [other_load()]              # other runnable tasks: at start, after each section
    errors: dict[str, str] = {}
    quick = opts.quick
    budget = opts.train_budget_s or (10.0 if quick else 220.0)

    res["ceiling"] = _section(errors, "ceiling", lambda: bench_ceiling(opts)) or {}
    loads.append(other_load())
    ceiling = res["ceiling"].get("fp32_gflops")
    train: dict[str, Any] = {}
    memory: dict[str, Any] = {}
    for name, config, share, variants in (("base", opts.base_config, 1.0, True),
                                           ("demo", opts.demo_config, 0.1, False)):
        r = _section(errors, f"train.{name}",
                     lambda: bench_train(opts, name, config, budget * share, variants))
        if r is None:
            continue
        pen = r.pop("penalty", None)
        if pen is not None:
            res["penalty"] = pen
        basis = ceiling
        if opts.device == "cuda" and r.get("amp") and res["ceiling"].get("bf16_gflops"):
            basis = res["ceiling"]["bf16_gflops"]
        if basis:
            r["achieved_gflops"] = r["flops_per_step"] / r["step_s"] / 1e9
            r["mfu"] = r["achieved_gflops"] / basis
            if res["ceiling"].get("theoretical_gflops"):
                r["mfu_theoretical"] = r["achieved_gflops"] / res["ceiling"]["theoretical_gflops"]
            ph = r["phases"]
            r["phase_mfu"] = {k: r["phase_flops"][k] / ph[f"{k}_s"] / 1e9 / basis
                              for k in r["phase_flops"] if r["phase_flops"][k] > 0 and ph.get(f"{k}_s")}
        r["phase_share"] = {k[:-2]: v / r["phases"]["sum_s"] for k, v in r["phases"].items()
                            if k.endswith("_s") and k != "sum_s"}
        train[name] = r
        memory[f"train_{name}_peak_mb"] = r["peak_rss_mb"]
        if "cuda_max_allocated_mb" in r:
            memory[f"train_{name}_cuda_max_allocated_mb"] = r["cuda_max_allocated_mb"]
        log(f"train/{name}: {r['images_per_s']:.2f} images/s, {r['flops_per_image'] / 1e9:.1f} GFLOP/image, "
            f"MFU {r.get('mfu', float('nan')):.3f}, peak RSS {r['peak_rss_mb']:.0f} MB")
    res["train"] = train

    loads.append(other_load())
    consumption = train.get("base", {}).get("images_per_s")
    res["data"] = _section(errors, "data", lambda: bench_data(opts, consumption)) or {}
    inf = _section(errors, "infer", lambda: bench_infer(opts))
    if inf is not None:
        res["infer"], mem = inf
        memory.update(mem)
    res["memory"] = memory
    res["meta"]["wall_s"] = time.perf_counter() - t_start
    res["meta"]["contention"] = contention(snap, cpu_snapshot())
    res["meta"]["contention"]["other_runnable"] = loads + [other_load()]
    res["targets"] = check_targets(res)
    if errors:
        res["errors"] = errors
    return res


def check_targets(res: dict) -> dict:
    out = {}
    pixel_ratio = _get(res, "infer.growth.pixel_ratio")
    for name, (key, op, target) in TARGETS.items():
        target = pixel_ratio if target is None else target
        value = _get(res, key)
        if value is None or target is None:
            continue
        ok = value >= target if op == ">=" else value <= target
        out[name] = {"key": key, "value": value, "op": op, "target": target, "pass": bool(ok)}
        why = unverified(res, key, value)
        if why:  # no PASS for a number that cannot be trusted
            out[name].update({"pass": False, "unverified": why})
    return out


CONTENDED_SHARE = 0.05     # other processes' share of the CPU above which timings are not trusted


def unverified(res: dict, key: str, value: float) -> str | None:
    """Why a timing verdict cannot be trusted (no PASS is printed), or None."""
    if key.endswith(".mfu") and value > 1:
        return f"MFU {value:.2f} > 1: the peak or the FLOP count is wrong"
    c = _get(res, "meta.contention") or {}
    share = c.get("other_processes_cpu_share", 0.0) + c.get("steal_share", 0.0)
    if share > CONTENDED_SHARE:
        return f"other processes used {share:.0%} of the CPU"
    if max(c.get("other_runnable", [0]), default=0) >= 1:
        return f"other runnable tasks {max(c['other_runnable']):g} during the run"
    return None


# --- output ------------------------------------------------------------------------------------

ROWS = (  # (label, dotted key, format, unit)
    ("fp32 peak (best measured)", "ceiling.fp32_gflops", "{:.1f}", "GFLOP/s"),
    ("fp32 square matmul", "ceiling.fp32_matmul_gflops", "{:.1f}", "GFLOP/s"),
    ("fp32 best conv2d forward", "ceiling.conv_best_gflops", "{:.1f}", "GFLOP/s"),
    ("fp32 theoretical FMA peak", "ceiling.theoretical_gflops", "{:.1f}", "GFLOP/s"),
    ("bf16 matmul ceiling", "ceiling.bf16_gflops", "{:.1f}", "GFLOP/s"),
    ("train base images/s", "train.base.images_per_s", "{:.3f}", "img/s"),
    ("train base step", "train.base.step_s", "{:.2f}", "s"),
    ("train base FLOPs/image", "train.base.flops_per_image", "{:.3g}", "FLOP"),
    ("train base achieved", "train.base.achieved_gflops", "{:.1f}", "GFLOP/s"),
    ("train base MFU", "train.base.mfu", "{:.3f}", ""),
    ("train base MFU (theoretical)", "train.base.mfu_theoretical", "{:.3f}", ""),
    ("  share G forward", "train.base.phase_share.g_forward", "{:.1%}", ""),
    ("  share D main", "train.base.phase_share.d_main", "{:.1%}", ""),
    ("  share penalty", "train.base.phase_share.penalty", "{:.1%}", ""),
    ("  share G main", "train.base.phase_share.g_main", "{:.1%}", ""),
    ("  share EMA", "train.base.phase_share.ema", "{:.1%}", ""),
    ("  phases sum / step", "train.base.phases.sum_over_step", "{:.3f}", ""),
    ("train demo images/s", "train.demo.images_per_s", "{:.1f}", "img/s"),
    ("train demo MFU", "train.demo.mfu", "{:.3f}", ""),
    ("penalty every step / none", "penalty.every_step_overhead", "{:.3f}", "×"),
    ("penalty lazy/16 / none", "penalty.lazy_overhead", "{:.3f}", "×"),
    ("XDoG", "data.xdog_images_per_s", "{:.1f}", "img/s"),
    ("synth render", "data.render_images_per_s", "{:.1f}", "img/s"),
    ("cache DataLoader", "data.loader_images_per_s", "{:.1f}", "img/s"),
    ("synth DataLoader", "data.loader_synth_images_per_s", "{:.1f}", "img/s"),
    ("cache loader / consumption", "data.loader_over_consumption", "{:.1f}", "×"),
    ("infer G b1", "infer.ms_per_image_b1", "{:.1f}", "ms/img"),
    ("infer G b8", "infer.ms_per_image_b8", "{:.1f}", "ms/img"),
    ("infer full call b1", "infer.pipeline_ms_b1", "{:.1f}", "ms"),
    ("cold infer.py, known tag", "infer.cold_start_s", "{:.2f}", "s"),
    ("cold infer.py, unseen tag", "infer.cold_start_unseen_s", "{:.2f}", "s"),
    ("infer.py, unseen tag cached", "infer.unseen_cached_s", "{:.2f}", "s"),
    ("python -c 'import torch'", "infer.python_torch_import_s", "{:.2f}", "s"),
    ("infer time growth", "infer.growth.time_ratio", "{:.2f}", "×"),
    ("infer memory growth", "infer.growth.memory_ratio", "{:.2f}", "×"),
    ("pixel ratio", "infer.growth.pixel_ratio", "{:.0f}", "×"),
    ("train base peak RSS", "memory.train_base_peak_mb", "{:.0f}", "MB"),
    ("train demo peak RSS", "memory.train_demo_peak_mb", "{:.0f}", "MB"),
    ("train base CUDA max alloc", "memory.train_base_cuda_max_allocated_mb", "{:.0f}", "MB"),
)


def format_table(res: dict) -> str:
    verdict = {t["key"]: t for t in res.get("targets", {}).values()}
    lines = [f"{'metric':32s} {'value':>12s} {'unit':8s} target"]
    for label, key, fmt, unit in ROWS:
        v = _get(res, key)
        if v is None:
            continue
        t = verdict.get(key)
        verdict_word = f"UNVERIFIED ({t['unverified']})" if t and t.get("unverified") else \
            ("PASS" if t and t["pass"] else "FAIL")
        tgt = f"{t['op']} {t['target']:g}  {verdict_word}" if t else ""
        lines.append(f"{label:32s} {fmt.format(v):>12s} {unit:8s} {tgt}")
    for s, v in (_get(res, "infer.sizes") or {}).items():
        lines.append(f"{'infer ' + s + ' px full call':32s} {v['pipeline_ms']:12.1f} {'ms':8s} "
                     f"peak RSS {v['peak_rss_mb']:.0f} MB (+{max(v['working_mb'], 0):.0f})")
    c = _get(res, "meta.contention") or {}
    other = c.get("other_processes_cpu_share", 0.0) + c.get("steal_share", 0.0)
    if other:
        lines.append(f"{'other processes + steal':32s} {other:12.1%} {'of CPU':8s} "
                     f"(this run {c.get('own_cpu_share', 0):.0%})")
    if other > 0.05:
        lines.append(f"WARNING: other processes used {other:.0%} of the machine during the run: "
                     f"the timings are contaminated; rerun on a quiet machine")
    for name, msg in res.get("errors", {}).items():
        lines.append(f"ERROR {name}: {msg}")
    return "\n".join(lines)


def recipe_step_seconds(cfg, steps: int = 5, warmup: int = 2, explicit_stem: bool = False) -> dict[str, float]:
    """Median seconds per phase of `cfg`'s training step on its own synthetic batch, with the region
    masks and prompt swaps its loss terms use (the main benchmark's random tensors have neither).
    Every call draws the same batch and the same swaps, so two calls compare like with like.
    `explicit_stem` runs the unshuffle stem on the tiled [B, 3+k, H, W] input instead of
    Generator.encode_input's per-sample-bias form (the same function)."""
    import torch
    from torch.utils.data import DataLoader
    from textcolor.data import build_dataset
    from textcolor.prompts import PromptSampler
    from textcolor.tags import build_encoder, embed, parse_prompt
    from textcolor.training import TrainStep
    from textcolor.trainstate import build

    torch.manual_seed(cfg.train.seed)
    cpu = torch.device("cpu")
    batch = next(iter(DataLoader(build_dataset(cfg, train=True), batch_size=cfg.train.batch_size)))
    encoder = build_encoder(cfg.tags, None)
    m = build(cfg, encoder.dim if encoder is not None else 1, cpu)
    if explicit_stem:
        m.G.encode_input = lambda sketch, c: m.G.stem(sketch if c is None else m.G.cond.tile(sketch, c))
    prompts = PromptSampler(cfg, torch.Generator().manual_seed(cfg.train.seed))
    clock = _PhaseClock(cpu)
    step = TrainStep(m, cfg, phase=clock)
    swaps = step.obj.uses_swaps and encoder is not None
    per_step: dict[str, list[float]] = {}
    for i in range(warmup + steps):
        chosen, swap = prompts([parse_prompt(t) for t in batch["tags"]], cpu, swaps=swaps)
        clock.times = {}
        t = time.perf_counter()
        step(batch["sketch"], batch["image"], embed(encoder, chosen, cfg.tags.pool, cpu), i,
             mask=batch["mask"], swap=swap)
        clock.times["step"] = time.perf_counter() - t
        if i >= warmup:
            for k, v in clock.times.items():
                per_step.setdefault(k, []).append(v)
    return {k: median(v) for k, v in per_step.items()}


def _parser() -> argparse.ArgumentParser:
    from textcolor import cli
    p = cli.parser("textcolor-bench", __doc__.splitlines()[0])
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="default: cuda if available, else cpu")
    p.add_argument("--json", type=Path, default=Path("bench.json"), help="where to write the results")
    p.add_argument("--quick", action="store_true", help="a tiny run: fewer repetitions, small cache")
    p.add_argument("--config-overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="config overrides for both training configs and the data section "
                        "(e.g. data.size=32 gen.base=8)")
    p.add_argument("--base-config", default=Options.base_config)
    p.add_argument("--demo-config", default=Options.demo_config)
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch default)")
    p.add_argument("--infer-size", type=int, default=256, help="working size for the batch-1/8 timings")
    p.add_argument("--infer-sizes", default="256,512,1024", help="sizes for time/memory growth")
    p.add_argument("--cache-images", type=int, default=0, help="images in the prepared cache (0: auto)")
    p.add_argument("--train-budget", type=float, default=0.0,
                   help="seconds of timed base-config rounds (0: 220, or 10 with --quick)")
    p.add_argument("--no-unseen", action="store_true", help="skip infer.py with an unseen tag")
    p.add_argument("--g-flops", nargs="+", metavar="CONFIG",
                   help="only print the generator's forward + backward GFLOP per image for these configs")
    p.add_argument("--recipe-step", metavar="CONFIG",
                   help="only time CONFIG's training step on its own synthetic batch (masks, prompt swaps), "
                        "per phase, with the tag stem as a per-sample bias and explicit")
    p.add_argument("--steps", type=int, default=5, help="--recipe-step: timed steps per variant")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--worker-spec", help=argparse.SUPPRESS)
    p.add_argument("--worker-out", help=argparse.SUPPRESS)
    return p


WORKERS = {"train": train_worker, "infer": infer_worker}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.worker:
        out = WORKERS[args.worker](json.loads(args.worker_spec))
        Path(args.worker_out).write_text(json.dumps(out))
        return 0
    if args.g_flops:
        from textcolor.config import ConfigError, load_config
        try:
            cfgs = [(path, load_config(path, args.config_overrides)) for path in args.g_flops]
        except ConfigError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        for path, cfg in cfgs:
            print(f"{path}: {cfg.data.size} px, G forward + backward {generator_flops(cfg) / 1e9:.2f} GFLOP/image")
        return 0
    if args.recipe_step:
        from textcolor.config import ConfigError, load_config
        try:
            cfg = load_config(args.recipe_step, args.config_overrides)
        except ConfigError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        if args.threads:
            import torch
            torch.set_num_threads(args.threads)
        for label, explicit in (("stem as per-sample bias", False), ("stem on the tiled input", True)):
            t = recipe_step_seconds(cfg, args.steps, explicit_stem=explicit)
            print(f"{args.recipe_step} {cfg.data.size} px, batch {cfg.train.batch_size}, {label}: step {t.pop('step'):.3f} s ("
                  + ", ".join(f"{k} {v:.3f}" for k, v in t.items()) + ")")
        return 0
    import torch
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but CUDA is not available", file=sys.stderr)
        return 2
    try:
        sizes = tuple(int(s) for s in args.infer_sizes.split(",") if s.strip())
    except ValueError:
        print(f"error: --infer-sizes {args.infer_sizes!r} is not a comma-separated list of integers",
              file=sys.stderr)
        return 2
    bad = [o for o in args.config_overrides if "=" not in o]
    if bad:
        print(f"error: override {bad[0]!r} is not of the form key=value", file=sys.stderr)
        return 2
    opts = Options(device=device, quick=args.quick, overrides=list(args.config_overrides),
                   base_config=args.base_config, demo_config=args.demo_config, threads=args.threads,
                   infer_size=args.infer_size, infer_sizes=sizes or (args.infer_size,),
                   cache_images=args.cache_images, train_budget_s=args.train_budget,
                   unseen=not args.no_unseen)
    # fail fast on a bad config before minutes of measuring
    from textcolor.config import ConfigError, load_config
    try:
        for path in (opts.base_config, opts.demo_config):
            load_config(path, opts.overrides)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    res = run_benchmark(opts)
    print(format_table(res))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=1, allow_nan=True) + "\n")
        print(f"wrote {args.json} ({res['meta']['wall_s']:.0f} s)")
    return 1 if res.get("errors") else 0


if __name__ == "__main__":
    sys.exit(main())
