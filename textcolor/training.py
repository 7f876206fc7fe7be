"""The training loop: D main -> D penalty (every `gp_every` steps) -> G main, EMA, checkpoints, TensorBoard.

    train(load_config("configs/demo.yaml"), "runs/demo")

This file holds the sampler, the step and the loop. What they call lives one floor down:
trainstate (models, optimisers, checkpoint state), prompts (training prompts and colour swaps),
losses (the objective), monitor (probe grids, HParams), distributed (devices, all-reduce).
"""
from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.autograd.profiler import record_function
from torch.utils.data import DataLoader, Sampler
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from textcolor import losses
from textcolor.checkpoint import load_checkpoint, save_checkpoint
from textcolor.config import Config, from_dict, to_yaml
from textcolor.data import build_dataset, close_loader, out_dir_problem, summarize_skipped
from textcolor.distributed import all_reduce_grads, broadcast_module, init_distributed, pick_device
from textcolor.monitor import ScalarLog, log_probes, val_l1, write_hparams
from textcolor.prompts import LEAVE_OUT, RECOLOR, PromptSampler, Swap
from textcolor.runlock import RunDirError, claim_run_dir, unlock_run_dir
from textcolor.tags import build_encoder, embed, parse_prompt
from textcolor.threads import choose_threads
from textcolor.trainstate import (Models, TrainingError, build, check_finite_weights, init_weights, load_state,
                                  state_dict)
from textcolor.vocab import EYES, HAIR, LINE

Phase = Callable[[str], AbstractContextManager]


# --- data order --------------------------------------------------------------------------------

class ResumableSampler(Sampler):
    """An endless, seeded stream of (index, aug_seed) that can restart at any sample position.

    Global position `pos` maps to epoch pos // n, which is a fixed permutation; process `rank` of
    `world` takes positions start + rank, start + rank + world, ... so resuming at `start`
    reproduces the exact data order (and augmentation) of an uninterrupted run."""

    def __init__(self, n: int, seed: int, start: int = 0, rank: int = 0, world: int = 1):
        self.n, self.seed, self.start, self.rank, self.world = n, seed, start, rank, world

    def _perm(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.n, generator=g)

    def __iter__(self):
        pos = self.start + self.rank
        epoch, perm = -1, None
        while True:
            if pos // self.n != epoch:
                epoch = pos // self.n
                perm = self._perm(epoch)
            yield int(perm[pos % self.n]), (self.seed << 32) + pos
            pos += self.world

    def __len__(self) -> int:  # endless; DataLoader only needs a number
        return 2 ** 62


# --- the step ----------------------------------------------------------------------------------

def _requires_grad(m: torch.nn.Module, flag: bool) -> None:
    for p in m.parameters():
        p.requires_grad_(flag)


def _grad_norm(m: torch.nn.Module) -> torch.Tensor:
    norms = [p.grad.detach().float().norm() for p in m.parameters() if p.grad is not None]
    return torch.stack(norms).norm() if norms else torch.zeros(())


def _update(opt: torch.optim.Optimizer, module: torch.nn.Module, loss: torch.Tensor, world: int,
            want_norm: bool) -> torch.Tensor | None:
    """zero_grad -> backward -> all-reduce -> step; the gradient norm when asked (before the step)."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    all_reduce_grads(module, world)
    norm = _grad_norm(module) if want_norm else None
    opt.step()
    return norm


def lr_at(step: int, lr: float, steps: int, decay_steps: int, decay_to: float) -> float:
    """The learning rate of update `step` (0-based): `lr` until the last `decay_steps` of `steps`,
    then a straight line to lr × decay_to at the final update (warmup-stable-decay without warmup)."""
    start = steps - decay_steps
    if decay_steps == 0 or step < start:
        return lr
    frac = (step - start + 1) / decay_steps   # the final update (step = steps - 1) lands on decay_to
    return lr * (1.0 - frac * (1.0 - decay_to))


def set_lr(opts: tuple[torch.optim.Optimizer, ...], lr: float) -> None:
    for opt in opts:
        for group in opt.param_groups:
            group["lr"] = lr


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for pe, p in zip(ema.parameters(), model.parameters()):
        pe.lerp_(p.detach(), 1 - decay)
    for be, b in zip(ema.buffers(), model.buffers()):
        be.copy_(b)


class TrainStep:
    """One alternating update, D first, as train() and the benchmark run it. Weights are applied
    here only; calling it returns detached metrics.

    `phase(name)` wraps each phase (g_forward, d_main, penalty, d_update, g_main, ema): by default
    torch's record_function, so a profiler trace shows them; the benchmark passes a clock."""

    def __init__(self, m: Models, cfg: Config, world: int = 1, autocast: Callable = nullcontext,
                 phase: Phase = record_function):
        self.m, self.obj = m, losses.Objective.from_config(cfg.loss)
        self.cond_tags, self.ema = cfg.disc.cond_tags, cfg.train.ema
        self.world, self.autocast, self.phase = world, autocast, phase

    def __call__(self, sketch: torch.Tensor, image: torch.Tensor, emb: torch.Tensor | None, step: int,
                 want_norms: bool = False, mask: torch.Tensor | None = None,
                 swap: Swap | None = None) -> dict[str, torch.Tensor]:
        """sketch, image [B, 3, H, W]; emb [B(+S), ...] from tags.embed; mask [B, H, W] uint8 labels
        (synthetic data) enables the region terms. With `swap`, emb holds B + S rows (the batch's
        prompts, then the swapped ones) and G runs once on all B + S, so batch norm sees one set of
        statistics for both halves of the locality comparison."""
        m, obj, autocast, phase = self.m, self.obj, self.autocast, self.phase
        b = sketch.shape[0]
        metrics: dict[str, torch.Tensor] = {}

        # G forward: one pass serves both phases (and the swapped rows of the locality term)
        with phase("g_forward"):
            g_in = sketch if swap is None else torch.cat([sketch, sketch[swap.index]])
            detach_from = b if swap is not None and obj.locality_detach_tags else None
            with autocast():
                fake_all, c = m.G(g_in, emb, detach_tags_from=detach_from, return_tags=True)  # [B(+S), 3, H, W]
            fake = fake_all[:b]
            cond = None
            if self.cond_tags and c is not None:
                cond = m.G.cond.planes(c[:b].detach().float(), *sketch.shape[-2:])           # [B, k, H, W] for D

        if obj.lambda_adv > 0:  # L1-only runs (λ_adv = 0) train no critic at all
            # D main: real pairs up, fake pairs down
            with phase("d_main"):
                _requires_grad(m.D, True)
                with autocast():
                    real_logits = m.D(sketch, image, cond)
                    fake_logits = m.D(sketch, fake.detach(), cond)
                    loss_d = obj.d_adv(real_logits.float(), fake_logits.float())
                metrics.update({"loss/d_adv": loss_d.detach(), "score/real": real_logits.detach().float().mean(),
                                "score/fake": fake_logits.detach().float().mean()})
            # D penalty: lazy, every gp_every steps (its weight scaled to keep the average pull)
            if obj.penalty is not None and step % obj.gp_every == 0:
                with phase("penalty"):
                    with autocast():
                        gp = obj.penalty(lambda x: m.D(sketch, x, cond), image, fake)
                    loss_d = loss_d + obj.lambda_gp * gp
                    metrics["loss/gp"] = gp.detach()
            with phase("d_update"):
                norm = _update(m.opt_d, m.D, loss_d, self.world, want_norms)
            if norm is not None:
                metrics["grad_norm/d"] = norm
            metrics["loss/d"] = loss_d.detach()

        # G main: fool the updated D, stay close to the target in L1 (and the region terms)
        with phase("g_main"):
            _requires_grad(m.D, False)
            with autocast():
                g_adv = obj.g_adv(m.D(sketch, fake, cond).float()) if obj.lambda_adv > 0 else fake.new_zeros(())
            l1 = losses.l1(fake.float(), image)
            recon = l1
            for term in self._region_terms(fake_all, fake, image, mask, swap, metrics) if mask is not None else ():
                recon = recon + term
            loss_g = obj.lambda_adv * g_adv + obj.lambda_l1 * recon
            norm = _update(m.opt_g, m.G, loss_g, self.world, want_norms)
            _requires_grad(m.D, True)
        if norm is not None:
            metrics["grad_norm/g"] = norm
        metrics.update({"loss/g_adv": g_adv.detach(), "loss/l1": l1.detach(), "loss/g": loss_g.detach()})

        if m.G_ema is not None:
            with phase("ema"):
                update_ema(m.G_ema, m.G, self.ema)
        return metrics

    def _region_terms(self, fake_all: torch.Tensor, fake: torch.Tensor, image: torch.Tensor, mask: torch.Tensor,
                      swap: Swap | None, metrics: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """The λ-weighted hair/eye L1 and locality/shift terms, in the order they are added (× λ_l1 by the caller)."""
        obj = self.obj
        terms = []
        for weight, label, name in ((obj.lambda_hair, HAIR, "l1_hair"), (obj.lambda_eyes, EYES, "l1_eyes")):
            if weight > 0:
                term = losses.masked_l1(fake.float(), image, mask == label)
                terms.append(weight * term)
                metrics[f"loss/{name}"] = term.detach()
        if swap is not None:
            b = fake.shape[0]
            rows, moved, held = mask[swap.index], fake_all[b:].float(), fake[swap.index].detach().float()
            if obj.locality_average == "regions":
                loc = losses.region_mean_l1(moved, held, rows, swap.label, LINE, obj.locality_weights)
            else:
                loc = losses.masked_l1(moved, held, (rows != swap.label[:, None, None]) & (rows != LINE))
            terms.append(obj.lambda_locality * loc)
            metrics["loss/locality"] = loc.detach()
            if obj.lambda_shift > 0 and swap.shift is not None:
                shift = losses.region_shift_hinge(moved, held, rows == swap.label[:, None, None], swap.shift)
                terms.append(obj.lambda_shift * shift)
                metrics["loss/shift"] = shift.detach()
            sel = swap.recolor != LEAVE_OUT if obj.lambda_recolor > 0 and swap.recolor is not None else None
            if sel is not None and bool(sel.any()):
                target = image[swap.index][sel].clone()   # UNCHANGED rows keep the batch's target
                paint = swap.recolor[sel] == RECOLOR       # only the rows to recolour go through recolored
                target[paint] = losses.recolored(target[paint], rows[sel][paint], swap.label[sel][paint],
                                                 swap.old[sel][paint], swap.new[sel][paint])
                region = rows[sel] == swap.label[sel][:, None, None]
                rec = losses.l1(moved[sel], target) + losses.masked_l1(moved[sel], target, region)
                terms.append(obj.lambda_recolor * rec)
                metrics["loss/recolor"] = rec.detach()
        return terms


def check_finite(metrics: dict[str, torch.Tensor], step: int) -> None:
    """Policy for NaN/Inf: STOP. No skipped step, no rollback, no loss scaling: the run ends with a
    TrainingError naming the step and the non-finite terms, and nothing more is checkpointed, so the
    last checkpoint on disk is the last good one (resume it after fixing the cause)."""
    values = torch.stack([v.float() for v in metrics.values()])
    if bool(torch.isfinite(values).all()):
        return
    bad = [f"{k}={v.item()}" for k, v in metrics.items() if not torch.isfinite(v).all()]
    raise TrainingError(f"step {step}: non-finite loss ({', '.join(bad)}); stopped, last good checkpoint kept")


# --- the run -----------------------------------------------------------------------------------

@dataclass
class RunResult:
    step: int
    metrics: dict[str, float] = field(default_factory=dict)
    checkpoint: Path | None = None
    stopped_by_signal: bool = False
    train_seconds: float = 0.0                 # wall time of this run and of the chunks it resumed
    generator: torch.nn.Module | None = None   # the run's final generator (the EMA one when kept)
    encoder: object = None                     # its TagEncoder (None: untagged); for the projector export


def _ignore_stop_signals(worker_id: int) -> None:
    """DataLoader workers leave SIGINT/SIGTERM to the main process: a scheduler or `kill -- -PGID`
    signals the whole process group, and a worker killed mid-step made the main process die with a
    traceback instead of writing its final checkpoint. Workers still exit with the main process."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)


class _StopFlag:
    """SIGINT/SIGTERM ask the loop to checkpoint and leave at the next step boundary."""

    def __init__(self):
        self.signal: int | None = None
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def _handle(self, signum, frame):
        if self.signal is not None:  # second signal: give up politely
            raise KeyboardInterrupt
        self.signal = signum

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _write_text_atomic(path: Path, text: str) -> None:
    """`--resume --out DIR` reads DIR/config.yaml back: a crash while it is rewritten must leave the
    old file, not an empty one (an empty YAML silently means the default config)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def train(cfg: Config, out_dir: str | Path, resume: bool = False, max_steps: int | None = None) -> RunResult:
    """Train per `cfg` into `out_dir` (config.yaml, checkpoints/, TensorBoard events).

    `max_steps` stops early after that many steps of this call (tests use it to simulate a crash)."""
    t_start = time.perf_counter()
    out_dir = Path(out_dir)
    dd = init_distributed(cfg.train.device)
    device = pick_device(cfg.train.device, dd.local_rank)
    threads, threads_why = choose_threads(cfg.train.threads)  # fewer than the cores when others are running
    torch.set_num_threads(threads)
    try:  # refuse a bad --out, hold it (one run per directory), find the checkpoint to resume
        resume_from = claim_run_dir(out_dir, resume, lock=dd.main, problem=out_dir_problem(cfg, out_dir))
    except RunDirError as e:
        raise TrainingError(str(e)) from None
    state = load_checkpoint(resume_from) if resume_from else None
    if state is not None:
        saved = from_dict(state["config"])
        model_settings = lambda c: (c.gen, c.disc, c.tags.layout, c.tags.k, c.tags.pool, c.tags.heads)  # noqa: E731
        if model_settings(saved) != model_settings(cfg):
            raise TrainingError(f"{resume_from}: the config's model settings differ from the checkpoint's; "
                                f"resume with the run's own config.yaml")

    # data
    train_ds, val_ds = build_dataset(cfg, train=True), build_dataset(cfg, train=False)
    if len(train_ds) == 0:
        raise TrainingError(f"no usable training samples in {cfg.data.source}:{cfg.data.path or '(synthetic)'}")
    skipped = getattr(train_ds, "skipped", [])
    step = state["step"] if state else 0
    samples = state["samples_seen"] if state else 0
    # a recipe trained in chunks (--resume) is timed as the sum of its chunks, setup included
    seconds_before = float(state.get("train_seconds", 0.0)) if state else 0.0
    train_seconds = lambda: seconds_before + time.perf_counter() - t_start  # noqa: E731
    sampler = ResumableSampler(len(train_ds), cfg.train.seed, samples, dd.rank, dd.world)
    loader = DataLoader(train_ds, batch_size=cfg.train.batch_size, sampler=sampler, drop_last=True,
                        num_workers=cfg.data.workers, persistent_workers=False, worker_init_fn=_ignore_stop_signals,
                        pin_memory=device.type == "cuda", generator=torch.Generator().manual_seed(cfg.train.seed),
                        prefetch_factor=4 if cfg.data.workers > 0 else None)
    val_loader = DataLoader(val_ds, batch_size=min(len(val_ds), cfg.data.val_n), shuffle=False)
    val = next(iter(val_loader))

    # tags and models
    table = (state["tags"]["names"], state["tags"]["vectors"]) if state else None
    encoder = build_encoder(cfg.tags, table)
    m = build(cfg, encoder.dim if encoder is not None else 1, device)
    G_out = m.G_ema or m.G   # what probes, validation and the exported model use
    tagdrop = torch.Generator().manual_seed(cfg.train.seed * 7919 + dd.rank)
    prompt_sampler = PromptSampler(cfg, tagdrop)
    use_amp = cfg.train.amp and device.type == "cuda"
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if use_amp else nullcontext
    train_step = TrainStep(m, cfg, dd.world, autocast)
    objective = train_step.obj
    swaps = objective.uses_swaps and encoder is not None   # the locality/shift terms' swapped prompts
    if state is not None:
        load_state(m, state)
        tagdrop.set_state(state["rng"]["tagdrop"])
    elif cfg.train.init_from:
        fresh = init_weights(m, cfg.train.init_from)
        if dd.main:
            tqdm.write(f"init_from {cfg.train.init_from}: weights loaded"
                       + (f"; new, at their init: {', '.join(fresh)}" if fresh else ""))
    elif dd.world > 1:
        broadcast_module(m.G)
        broadcast_module(m.D)
        if m.G_ema is not None:
            m.G_ema.load_state_dict(m.G.state_dict())

    writer = None
    if dd.main:
        out_dir.mkdir(parents=True, exist_ok=True)
        _write_text_atomic(out_dir / "config.yaml", to_yaml(cfg))
        writer = SummaryWriter(str(out_dir))
        tqdm.write(f"threads: {threads} ({threads_why})\n"
                   f"logs: tensorboard --logdir {out_dir} --samples_per_plugin images=1000  (keeps every probe image)")
        if skipped:
            tqdm.write(summarize_skipped(skipped, getattr(train_ds, "total", None)))

    def save() -> Path | None:
        check_finite_weights(m, step - 1)  # every rank: they hold the same weights
        if not dd.main:
            return None
        return save_checkpoint(state_dict(m, cfg, step, samples, tagdrop, encoder, train_seconds()),
                               out_dir / "checkpoints", cfg.train.keep_last)

    mem = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
    # RNG last: everything above may draw from the global generator; the loop must not see that
    torch.manual_seed(cfg.train.seed + 1_000 * dd.rank)
    if state is not None:
        torch.set_rng_state(state["rng"]["torch"])
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state(state["rng"]["cuda"])

    result = RunResult(step)
    end = cfg.train.steps if max_steps is None else min(cfg.train.steps, step + max_steps)
    bar = tqdm(total=cfg.train.steps, initial=step, disable=not dd.main, desc=cfg.name, dynamic_ncols=True)
    scalars = ScalarLog(cfg.train.batch_size * dd.world)
    last_ckpt: Path | None = None
    batches = iter(loader)
    try:  # the bar ends its line before any error message is printed
        with _StopFlag() as stop:
            if dd.main and step == 0:
                log_probes(writer, G_out, val, cfg, encoder, device, step)
            while step < end and stop.signal is None:
                batch = next(batches)
                scalars.count_bad(batch.get("bad", []))
                sketch = batch["sketch"].to(device, non_blocking=True, memory_format=mem)
                image = batch["image"].to(device, non_blocking=True, memory_format=mem)
                mask = batch["mask"].to(device) if objective.uses_masks and "mask" in batch else None
                prompts, swap = prompt_sampler([parse_prompt(p) for p in batch["tags"]], device,
                                               swaps=swaps and mask is not None)   # swaps need the region masks
                # scalars at step 0 and every log_every after (a short run shows); a step's losses are
                # those of the weights before its update, so it logs at its own index (step - 1 below)
                log_now = step % cfg.train.log_every == 0
                set_lr((m.opt_g, m.opt_d), lr_at(step, cfg.optim.lr, cfg.train.steps, cfg.optim.decay_steps,
                                                 cfg.optim.decay_to))
                metrics = train_step(sketch, image, embed(encoder, prompts, cfg.tags.pool, device), step,
                                     want_norms=log_now, mask=mask, swap=swap)
                check_finite(metrics, step)
                step += 1
                samples += cfg.train.batch_size * dd.world
                bar.update(1)
                scalars.add(metrics)
                if log_now and dd.main:
                    result.metrics = scalars.write(writer, step - 1, m)
                    writer.add_scalar("time/train_minutes", train_seconds() / 60, step - 1)
                    bar.set_postfix({k.split("/")[-1]: f"{v:.3f}" for k, v in result.metrics.items()
                                     if k.startswith("loss/")})
                if dd.main and step % cfg.train.image_every == 0:
                    log_probes(writer, G_out, val, cfg, encoder, device, step)
                if step % cfg.train.ckpt_every == 0 or step == cfg.train.steps:
                    last_ckpt = save() or last_ckpt
    finally:
        bar.close()
        close_loader(batches)  # an error must not leave workers alive: they ignore SIGTERM, the exit would hang
    if stop.signal is not None and (last_ckpt is None or not last_ckpt.name.endswith(f"{step:07d}.pt")):
        last_ckpt = save() or last_ckpt
        if dd.main:
            tqdm.write(f"stopped by signal {stop.signal} at step {step}; checkpoint {last_ckpt}")
    result.step, result.checkpoint, result.stopped_by_signal = step, last_ckpt, stop.signal is not None
    result.train_seconds = train_seconds()
    if dd.main:
        result.generator, result.encoder = G_out, encoder
        if step == cfg.train.steps:
            final = {"final/val_l1": val_l1(G_out, val, encoder, cfg.tags.pool, device),
                     **{f"final/{k.replace('/', '_')}": v for k, v in result.metrics.items()}}
            write_hparams(writer, cfg, final)
            result.metrics.update(final)
        if scalars.bad_samples or skipped:
            tqdm.write(f"data: {len(skipped)} files skipped at scan, {scalars.bad_samples} failed at load")
        writer.close()
        unlock_run_dir(out_dir)
    return result
