"""The training loop: D main -> D penalty (every `gp_every` steps) -> G main, EMA, checkpoints, TensorBoard.

    train(load_config("configs/demo.yaml"), "runs/demo")

Multi-process: `torchrun --nproc_per_node N train.py ...` (gloo on CPU, nccl on CUDA). Gradients are
averaged with torch.distributed all-reduce after each backward, as StyleGAN2-ADA does, because
DistributedDataParallel cannot take the penalty's double backward through a second forward.
"""
from __future__ import annotations

import copy
import os
import signal
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Sampler
from tqdm import tqdm

from textcolor import losses
from textcolor.checkpoint import (CheckpointError, generator_parts, list_checkpoints, load_checkpoint, resolve,
                                 save_checkpoint)
from textcolor.config import Config, from_dict, to_dict, to_yaml
from textcolor.grid import labelled_grid, pil_to_chw, to_pil
from textcolor.models import Generator, PatchDiscriminator, build_models
from textcolor.runlock import RunDirError, claim_run_dir, unlock_run_dir
from textcolor.synth import EYES, HAIR, LINE, hex_to_rgb, load_colors


class TrainingError(RuntimeError):
    """Stops a run with a one-line message (bad run dir, non-finite loss, ...)."""


# --- devices and processes ---------------------------------------------------------------------

def pick_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    if name != "auto":
        dev = torch.device(name)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise TrainingError(f"train.device={name} but CUDA is not available")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank)
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device_name: str) -> Dist:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist()
    if not dist.is_initialized():
        use_nccl = torch.cuda.is_available() and device_name in ("auto", "cuda")
        dist.init_process_group("nccl" if use_nccl else "gloo")
    return Dist(dist.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0")))


def all_reduce_grads(module: torch.nn.Module, world: int) -> None:
    """Average gradients over processes in one flat buffer."""
    if world == 1:
        return
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.flatten() for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def broadcast_module(module: torch.nn.Module) -> None:
    """Same initial weights on every process."""
    for t in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(t.data, src=0)


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


# --- tags --------------------------------------------------------------------------------------

def make_encoder(cfg: Config, tag_table: dict | None = None):
    """The tag encoder, or None for the untagged baseline (layout none never loads a text model)."""
    if cfg.tags.layout == "none":
        return None
    from textcolor.tags import TagEncoder
    kw = {"cache_dir": cfg.tags.cache_dir or None}
    if tag_table and tag_table.get("names"):
        return TagEncoder.from_table(tag_table["names"], tag_table["vectors"], model=cfg.tags.encoder, **kw)
    return TagEncoder(cfg.tags.encoder, **kw)


def embed(encoder, prompts: list[str], pool: str, device: torch.device) -> torch.Tensor | None:
    if encoder is None:
        return None
    return encoder.embed_prompts(list(prompts), pool=pool).to(device)  # [B, E]


def drop_prompts(prompts: list[str], p: float, gen: torch.Generator, tag_p: float = 0.0,
                 short_p: float = 0.0, keep: Sequence[str] = (), color_p: float = 0.0,
                 paraphrase_p: float = 0.0, paraphrases: dict[str, list[str]] | None = None) -> list[str]:
    """Training prompts as users type them. Each prompt becomes empty with probability p (the null
    vector); a kept prompt is cut to one random tag with probability short_p, or to its colour tags
    alone ("red_hair, blue_eyes") with probability color_p, else each of its tags is dropped with
    probability tag_p. Then each colour tag is reworded with probability paraphrase_p from the
    paraphrase table ("red-haired girl", "ruby hair"; textcolor.paraphrase).

    Users type lone tags and short mixes: pooled alone, a tag's vector lies far from a ten-tag
    training prompt, so they must be trained on. Tags in `keep` (monochrome) describe the whole
    target: only the empty prompt drops them, or a grey target would teach that grey comes unasked.
    Every draw comes from `gen`, so a resumed run sees the same prompts."""
    from textcolor.paraphrase import paraphrase_prompt
    from textcolor.tags import parse_prompt, tag_text, tags_to_prompt
    keep = set(keep)
    colors = {tag_text(t) for t in (paraphrases or {})}
    flags = (torch.rand(len(prompts), generator=gen) >= p).tolist()
    out = []
    for prompt, k in zip(prompts, flags):
        items = parse_prompt(prompt) if k else []
        u = torch.rand(1, generator=gen).item() if items and (short_p > 0 or color_p > 0) else 1.0
        if u < short_p:
            lone = items[int(torch.randint(len(items), (1,), generator=gen))]
            items = [it for it in items if it is lone or it[0] in keep]
        elif u < short_p + color_p and any(tag_text(it[0]) in colors for it in items):
            items = [it for it in items if tag_text(it[0]) in colors or it[0] in keep]
        elif tag_p > 0 and items:
            items = [it for it, v in zip(items, torch.rand(len(items), generator=gen).tolist())
                     if v >= tag_p or it[0] in keep]
        if paraphrase_p > 0 and items:
            items = paraphrase_prompt(items, paraphrase_p, gen, paraphrases)
        out.append(tags_to_prompt(items))
    return out


# --- the step ----------------------------------------------------------------------------------

@dataclass
class Models:
    G: Generator
    D: PatchDiscriminator
    G_ema: Generator | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer


def _requires_grad(m: torch.nn.Module, flag: bool) -> None:
    for p in m.parameters():
        p.requires_grad_(flag)


def _grad_norm(m: torch.nn.Module) -> torch.Tensor:
    norms = [p.grad.detach().float().norm() for p in m.parameters() if p.grad is not None]
    return torch.stack(norms).norm() if norms else torch.zeros(())


def _d_step(m: Models, cfg: Config, sketch, image, fake, cond, step: int, world: int, autocast,
            want_norms: bool) -> dict[str, torch.Tensor]:
    lc = cfg.loss
    d_loss = losses.get(losses.D_LOSSES, lc.adv, "adversarial loss")
    # D main: real pairs up, fake pairs down
    _requires_grad(m.D, True)
    with autocast():
        real_logits = m.D(sketch, image, cond)
        fake_logits = m.D(sketch, fake.detach(), cond)
        loss_adv_d = d_loss(real_logits.float(), fake_logits.float())
    loss_d = loss_adv_d
    metrics = {"loss/d_adv": loss_adv_d.detach(), "score/real": real_logits.detach().float().mean(),
               "score/fake": fake_logits.detach().float().mean()}

    # D penalty: lazy (every gp_every steps) with its weight scaled by gp_every to keep the same average pull
    if lc.penalty != "none" and step % lc.gp_every == 0:
        penalty_fn = losses.get(losses.PENALTIES, lc.penalty, "penalty")
        with autocast():
            gp = penalty_fn(lambda x: m.D(sketch, x, cond), image, fake)
        loss_d = loss_d + lc.lambda_gp * lc.gp_every * gp
        metrics["loss/gp"] = gp.detach()
    m.opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    all_reduce_grads(m.D, world)
    if want_norms:
        metrics["grad_norm/d"] = _grad_norm(m.D)
    m.opt_d.step()
    metrics["loss/d"] = loss_d.detach()
    return metrics


def swap_color_tags(prompts: list[str], gen: torch.Generator, colors: dict[str, list[str]]
                    ) -> tuple[list[int], list[str], list[str], list[tuple[str, str]]]:
    """Counterfactual prompts for the locality term. In each prompt that holds a colour tag of
    `colors` ({"hair": [red_hair, ...], "eyes": [...]}; written as the tag or spaced), one such tag
    drawn at random is replaced by another colour of the same kind. Returns the indices of the
    prompts changed, their new text, the kind swapped in each ("hair" | "eyes") and the (old, new)
    colour tag of each, as `colors` spells them. Reworded
    colours ("crimson-haired girl") are not recognised and leave their prompt out."""
    from textcolor.tags import parse_prompt, tag_text, tags_to_prompt
    kind_of = {tag_text(t): (kind, t) for kind, tags in colors.items() for t in tags}
    index, swapped, kinds, moves = [], [], [], []
    for i, prompt in enumerate(prompts):
        items = parse_prompt(prompt)
        spots = [j for j, (name, _) in enumerate(items) if tag_text(name) in kind_of]
        if not spots:
            continue
        j = spots[int(torch.randint(len(spots), (1,), generator=gen))]
        kind, tag = kind_of[tag_text(items[j][0])]
        others = [t for t in colors[kind] if t != tag]
        new = others[int(torch.randint(len(others), (1,), generator=gen))]
        items[j] = (new, items[j][1])
        index.append(i)
        swapped.append(tags_to_prompt(items))
        kinds.append(kind)
        moves.append((tag, new))
    return index, swapped, kinds, moves


def color_distance(a: Sequence[int], b: Sequence[int]) -> float:
    """Euclidean distance of two 0-255 RGB colours in the generator's [-1, 1] units."""
    return float(torch.dist(torch.tensor(a, dtype=torch.float32), torch.tensor(b, dtype=torch.float32)) / 127.5)


@dataclass
class Swap:
    """The locality term's counterfactual half of a batch: rows `index` of the batch again, their
    prompt with one colour tag swapped (embedded after the batch's own), and the mask label of
    the region that colour belongs to (outside it, nothing may change; inside, the mean colour
    must move at least `shift`: loss.lambda_shift)."""
    index: torch.Tensor   # [S] long
    label: torch.Tensor   # [S] uint8 mask label (synth.HAIR | synth.EYES)
    shift: torch.Tensor | None = None  # [S] least move of the region's mean colour, [-1, 1] RGB units


def train_step(m: Models, cfg: Config, sketch: torch.Tensor, image: torch.Tensor, emb: torch.Tensor | None,
               step: int, world: int = 1, autocast=nullcontext, want_norms: bool = False,
               mask: torch.Tensor | None = None, swap: Swap | None = None) -> dict[str, torch.Tensor]:
    """One alternating update, D first. Returns detached metrics; weights are applied here only.

    mask [B, H, W] uint8 labels (synthetic data) enables the region terms; with `swap`, emb holds
    B + S rows (the batch's prompts, then the swapped ones) and G runs once on all B + S, so batch
    norm sees one set of statistics for both halves of the locality comparison."""
    lc = cfg.loss
    g_loss = losses.get(losses.G_LOSSES, lc.adv, "adversarial loss")
    b = sketch.shape[0]
    emb_own = emb[:b] if emb is not None else None
    cond = None
    if cfg.disc.cond_tags and emb is not None:
        cond = m.G.cond(sketch, emb_own)[:, 3:].detach()    # [B, k, H, W] tag planes for D
    g_in = sketch if swap is None else torch.cat([sketch, sketch[swap.index]])
    with autocast():
        fake_all = m.G(g_in, emb, detach_tags_from=b if swap is not None and lc.locality_detach_tags else None)
        # [B(+S), 3, H, W]; one G forward serves both phases
    fake = fake_all[:b]

    metrics: dict[str, torch.Tensor] = {}
    if lc.lambda_adv > 0:  # L1-only runs (λ_adv = 0) train no critic at all
        metrics = _d_step(m, cfg, sketch, image, fake, cond, step, world, autocast, want_norms)

    # G main: fool the updated D, stay close to the target in L1
    _requires_grad(m.D, False)
    with autocast():
        g_adv = g_loss(m.D(sketch, fake, cond).float()) if lc.lambda_adv > 0 else fake.new_zeros(())
    l1 = losses.l1(fake.float(), image)
    recon = l1
    if mask is not None:
        for weight, label, name in ((lc.lambda_hair, HAIR, "l1_hair"), (lc.lambda_eyes, EYES, "l1_eyes")):
            if weight > 0:
                term = losses.masked_l1(fake.float(), image, mask == label)
                recon = recon + weight * term
                metrics[f"loss/{name}"] = term.detach()
        if swap is not None:
            rows, moved, held = mask[swap.index], fake_all[b:].float(), fake[swap.index].detach().float()
            if lc.locality_average == "regions":
                loc = losses.region_mean_l1(moved, held, rows, swap.label, LINE)
            else:
                loc = losses.masked_l1(moved, held, (rows != swap.label[:, None, None]) & (rows != LINE))
            recon = recon + lc.lambda_locality * loc
            metrics["loss/locality"] = loc.detach()
            if lc.lambda_shift > 0 and swap.shift is not None:
                shift = losses.region_shift_hinge(moved, held, rows == swap.label[:, None, None], swap.shift)
                recon = recon + lc.lambda_shift * shift
                metrics["loss/shift"] = shift.detach()
    loss_g = lc.lambda_adv * g_adv + lc.lambda_l1 * recon
    m.opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    all_reduce_grads(m.G, world)
    if want_norms:
        metrics["grad_norm/g"] = _grad_norm(m.G)
    m.opt_g.step()
    _requires_grad(m.D, True)
    metrics.update({"loss/g_adv": g_adv.detach(), "loss/l1": l1.detach(), "loss/g": loss_g.detach()})

    if m.G_ema is not None:
        update_ema(m.G_ema, m.G, cfg.train.ema)
    return metrics


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for pe, p in zip(ema.parameters(), model.parameters()):
        pe.lerp_(p.detach(), 1 - decay)
    for be, b in zip(ema.buffers(), model.buffers()):
        be.copy_(b)


def check_finite(metrics: dict[str, torch.Tensor], step: int) -> None:
    """Policy for NaN/Inf: STOP. No skipped step, no rollback, no loss scaling: the run ends with a
    TrainingError naming the step and the non-finite terms, and nothing more is checkpointed, so the
    last checkpoint on disk is the last good one (resume it after fixing the cause)."""
    values = torch.stack([v.float() for v in metrics.values()])
    if bool(torch.isfinite(values).all()):
        return
    bad = [f"{k}={v.item()}" for k, v in metrics.items() if not torch.isfinite(v).all()]
    raise TrainingError(f"step {step}: non-finite loss ({', '.join(bad)}); stopped, last good checkpoint kept")


def check_finite_weights(m: Models, step: int) -> None:
    """Same policy for the weights, before they are checkpointed: finite losses can still come with
    a NaN/Inf gradient (e.g. d/dx sqrt(x) at 0) whose update poisons the weights."""
    for name, module in (("G", m.G), ("D", m.D), ("G_ema", m.G_ema)):
        if module is None:
            continue
        tensors = [(k, t) for k, t in module.state_dict().items() if t.is_floating_point()]
        if bool(torch.stack([torch.isfinite(t).all() for _, t in tensors]).all()):
            continue
        bad = next(k for k, t in tensors if not bool(torch.isfinite(t).all()))
        raise TrainingError(f"step {step}: non-finite weights in {name} ({bad}) after finite losses "
                            f"(a NaN/Inf gradient); stopped, last good checkpoint kept")


# --- building and state ------------------------------------------------------------------------

def build(cfg: Config, embed_dim: int, device: torch.device) -> Models:
    torch.manual_seed(cfg.train.seed)  # identical initial weights for every process and every resume
    G, D = build_models(cfg, embed_dim)
    G, D = G.to(device), D.to(device)
    if cfg.train.channels_last:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False) if cfg.train.ema > 0 else None
    # fused Adam: one kernel over all parameters (≈7× faster than the per-tensor loop on CPU)
    fused = cfg.optim.fused and device.type in ("cpu", "cuda")
    kw = dict(lr=cfg.optim.lr, betas=(cfg.optim.beta1, cfg.optim.beta2), fused=fused or None)
    return Models(G, D, G_ema, torch.optim.Adam(G.parameters(), **kw), torch.optim.Adam(D.parameters(), **kw))


def state_dict(m: Models, cfg: Config, step: int, samples: int, tagdrop: torch.Generator, encoder) -> dict:
    names, vectors = encoder.table() if encoder is not None else ([], torch.zeros(0))
    return {
        "step": step, "samples_seen": samples, "config": to_dict(cfg),
        "G": m.G.state_dict(), "D": m.D.state_dict(),
        **({"G_ema": m.G_ema.state_dict()} if m.G_ema is not None else {}),
        "opt_g": m.opt_g.state_dict(), "opt_d": m.opt_d.state_dict(),
        "rng": {"torch": torch.get_rng_state(), "tagdrop": tagdrop.get_state(),
                **({"cuda": torch.cuda.get_rng_state()} if torch.cuda.is_available() else {})},
        "tags": {"model": cfg.tags.encoder, "names": list(names), "vectors": vectors.float().cpu(),
                 "embed_dim": m.G.embed_dim},
    }


def load_state(m: Models, state: dict) -> None:
    try:
        m.G.load_state_dict(state["G"])
        m.D.load_state_dict(state["D"])
        if m.G_ema is not None:
            m.G_ema.load_state_dict(state.get("G_ema", state["G"]))
        m.opt_g.load_state_dict(state["opt_g"])
        m.opt_d.load_state_dict(state["opt_d"])
    except (KeyError, RuntimeError, ValueError) as e:
        raise CheckpointError(f"checkpoint does not match this config's architecture "
                              f"({str(e).splitlines()[0][:200]})") from None


def init_weights(m: Models, source: str | Path) -> list[str]:
    """Fine-tuning: G, G_ema and D from another run's checkpoint or an exported generator (which
    holds G only: D keeps its init). Parameters the source lacks (e.g. extra attention heads) keep
    their init; any source tensor this architecture has no place for, or of another shape, is an
    error. Returns the names of the parameters that kept their init."""
    p = resolve(source)
    if p.suffix == ".safetensors":
        g, _, _, _ = generator_parts(p)
        parts = {"G": g}
    else:
        state = load_checkpoint(p)
        parts = {k: state[k] for k in ("G", "G_ema", "D") if k in state}
    parts.setdefault("G_ema", parts["G"])
    fresh: set[str] = set()
    for key, module in (("G", m.G), ("G_ema", m.G_ema), ("D", m.D)):
        if module is None or key not in parts:
            continue
        own = module.state_dict()
        extra = [k for k in parts[key] if k not in own]
        shape = [k for k, v in parts[key].items() if k in own and own[k].shape != v.shape]
        if extra or shape:
            bad = (extra or shape)[0]
            raise CheckpointError(f"{p}: does not fit this config's architecture ({key}.{bad}: "
                                  f"{'no such parameter' if extra else 'another shape'})")
        module.load_state_dict(parts[key], strict=False)
        if key == "G":
            fresh = {k for k in own if k not in parts[key]}
    return sorted(fresh)


# --- logging -----------------------------------------------------------------------------------

@torch.no_grad()
def probe_images(G: Generator, val: dict, prompts: list[str], encoder, pool: str, device) -> dict:
    """Fixed validation sketches: sketch | output | target, and the tag-ablation panel."""
    was_training = G.training
    G.eval()
    sketch, target = val["sketch"].to(device), val["image"].to(device)
    own = G(sketch, embed(encoder, val["tags"], pool, device))
    rows = [[to_pil(s), to_pil(o), to_pil(t)] for s, o, t in zip(sketch, own, target)]
    samples = labelled_grid(rows, ["sketch", "output (own tags)", "target"])
    panel = None
    if encoder is not None:
        outs = [G(sketch, embed(encoder, [p] * len(sketch), pool, device)) for p in prompts]  # P × [B, 3, H, W]
        rows = [[to_pil(sketch[i])] + [to_pil(o[i]) for o in outs] for i in range(len(sketch))]
        panel = labelled_grid(rows, ["sketch"] + [p or "(no tags)" for p in prompts])
    G.train(was_training)
    return {"samples": samples, "tag_ablation": panel}


@torch.no_grad()
def val_l1(G: Generator, val: dict, encoder, pool: str, device) -> float:
    was_training = G.training
    G.eval()
    out = G(val["sketch"].to(device), embed(encoder, val["tags"], pool, device))
    G.train(was_training)
    return losses.l1(out, val["image"].to(device)).item()


def flat_hparams(cfg: Config) -> dict:
    keep = ("tags.layout", "tags.k", "tags.pool", "tags.heads", "tags.drop_prob", "gen.base", "gen.depth", "gen.norm",
            "gen.act", "gen.dropout", "disc.layers", "disc.norm", "disc.cond_tags", "loss.adv", "loss.penalty",
            "loss.lambda_adv", "loss.lambda_l1", "loss.lambda_gp", "loss.gp_every", "loss.lambda_hair",
            "loss.lambda_eyes", "loss.lambda_locality", "loss.lambda_shift", "optim.lr",
            "train.batch_size", "train.steps", "data.size", "data.source")
    d = to_dict(cfg)
    out = {}
    for key in keep:
        v = d
        for part in key.split("."):
            v = v[part]
        out[key] = v
    return out


def write_hparams(writer, cfg: Config, metrics: dict[str, float]) -> None:
    """HParams entry in the run's own directory, so a sweep compares side by side."""
    from torch.utils.tensorboard.summary import hparams
    exp, ssi, sei = hparams(flat_hparams(cfg), metrics)
    fw = writer._get_file_writer()
    for summary in (exp, ssi, sei):
        fw.add_summary(summary)
    for k, v in metrics.items():
        writer.add_scalar(k, v, cfg.train.steps)


# --- the run -----------------------------------------------------------------------------------

@dataclass
class RunResult:
    step: int
    metrics: dict[str, float] = field(default_factory=dict)
    checkpoint: Path | None = None
    stopped_by_signal: bool = False


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


def prepare_run_dir(out_dir: Path, resume: bool) -> Path | None:
    """Refuse to train over someone's checkpoints unless resuming; return the checkpoint to resume."""
    ckpts = list_checkpoints(out_dir / "checkpoints")
    if ckpts and not resume:
        raise TrainingError(f"{out_dir} already holds checkpoints; pass --resume to continue it, "
                            f"or choose another --out")
    if resume and ckpts:
        # the newest numbered file, not last.pt: a crash between writing step_N.pt (atomically, so
        # it is complete) and re-pointing last.pt leaves last.pt one checkpoint behind
        return ckpts[-1]
    return None


def train(cfg: Config, out_dir: str | Path, resume: bool = False, max_steps: int | None = None) -> RunResult:
    """Train per `cfg` into `out_dir` (config.yaml, checkpoints/, TensorBoard events).

    `max_steps` stops early after that many steps of this call (tests use it to simulate a crash)."""
    from textcolor.data import build_dataset, close_loader, out_dir_problem, summarize_skipped
    out_dir = Path(out_dir)
    dd = init_distributed(cfg.train.device)
    device = pick_device(cfg.train.device, dd.local_rank)
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    try:  # refuse a bad --out, then hold it: one run per directory (textcolor.runlock)
        claim_run_dir(out_dir, resume, lock=dd.main, problem=out_dir_problem(cfg, out_dir))
    except RunDirError as e:
        raise TrainingError(str(e)) from None
    resume_from = prepare_run_dir(out_dir, resume)
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
    sampler = ResumableSampler(len(train_ds), cfg.train.seed, samples, dd.rank, dd.world)
    loader = DataLoader(train_ds, batch_size=cfg.train.batch_size, sampler=sampler, drop_last=True,
                        num_workers=cfg.data.workers, persistent_workers=False, worker_init_fn=_ignore_stop_signals,
                        pin_memory=device.type == "cuda", generator=torch.Generator().manual_seed(cfg.train.seed),
                        prefetch_factor=4 if cfg.data.workers > 0 else None)
    val_loader = DataLoader(val_ds, batch_size=min(len(val_ds), cfg.data.val_n), shuffle=False)
    val = next(iter(val_loader))

    # tags and models
    encoder = make_encoder(cfg, state["tags"] if state else None)
    embed_dim = encoder.dim if encoder is not None else 1
    m = build(cfg, embed_dim, device)
    tagdrop = torch.Generator().manual_seed(cfg.train.seed * 7919 + dd.rank)
    paraphrases = None
    if cfg.tags.paraphrase > 0 or cfg.tags.color_prompt > 0:
        from textcolor.paraphrase import load_paraphrases
        paraphrases = load_paraphrases()
    colors = load_colors()
    color_kinds = {kind: sorted(tags) for kind, tags in colors.items()}  # the locality term's swaps
    color_rgb = {tag: hex_to_rgb(h) for table in colors.values() for tag, h in table.items()}
    label_of = {"hair": HAIR, "eyes": EYES}
    uses_masks = max(cfg.loss.lambda_hair, cfg.loss.lambda_eyes, cfg.loss.lambda_locality, cfg.loss.lambda_shift) > 0
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
        from torch.utils.tensorboard import SummaryWriter
        writer = SummaryWriter(str(out_dir))
        if skipped:
            tqdm.write(summarize_skipped(skipped, getattr(train_ds, "total", None)))

    def save() -> Path | None:
        check_finite_weights(m, step - 1)  # every rank: they hold the same weights
        if not dd.main:
            return None
        return save_checkpoint(state_dict(m, cfg, step, samples, tagdrop, encoder), out_dir / "checkpoints",
                               cfg.train.keep_last)

    use_amp = cfg.train.amp and device.type == "cuda"
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if use_amp else nullcontext
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
    acc: dict[str, list[torch.Tensor]] = {}
    bad_samples, t_log, steps_since = 0, time.perf_counter(), 0
    last_ckpt: Path | None = None
    batches = iter(loader)
    try:  # the bar ends its line before any error message is printed
        with _StopFlag() as stop:
            if dd.main and step == 0:
                _log_images(writer, m, val, cfg, encoder, device, step)
            while step < end and stop.signal is None:
                batch = next(batches)
                bad_samples += sum(1 for b in batch.get("bad", []) if b)
                sketch = batch["sketch"].to(device, non_blocking=True, memory_format=mem)
                image = batch["image"].to(device, non_blocking=True, memory_format=mem)
                prompts = drop_prompts(batch["tags"], cfg.tags.drop_prob, tagdrop, cfg.tags.tag_drop,
                                       cfg.tags.short_prompt, cfg.tags.keep_tags, cfg.tags.color_prompt,
                                       cfg.tags.paraphrase, paraphrases)
                mask = batch["mask"].to(device) if uses_masks and "mask" in batch else None
                swap = None
                if mask is not None and max(cfg.loss.lambda_locality, cfg.loss.lambda_shift) > 0 and encoder is not None:
                    index, swapped, kinds, moves = swap_color_tags(prompts, tagdrop, color_kinds)
                    if index:
                        prompts = prompts + swapped
                        shift = torch.tensor([cfg.loss.shift_frac * color_distance(color_rgb[a], color_rgb[b])
                                              for a, b in moves], device=device) if cfg.loss.lambda_shift > 0 else None
                        swap = Swap(torch.tensor(index, device=device),
                                    torch.tensor([label_of[k] for k in kinds], dtype=torch.uint8, device=device),
                                    shift)
                emb = embed(encoder, prompts, cfg.tags.pool, device)
                log_now = (step + 1) % cfg.train.log_every == 0
                metrics = train_step(m, cfg, sketch, image, emb, step, dd.world, autocast, want_norms=log_now,
                                     mask=mask, swap=swap)
                check_finite(metrics, step)
                step += 1
                samples += cfg.train.batch_size * dd.world
                steps_since += 1
                bar.update(1)
                for k, v in metrics.items():
                    acc.setdefault(k, []).append(v)
                if log_now and dd.main:
                    dt = time.perf_counter() - t_log
                    means = {k: torch.stack(v).float().mean().item() for k, v in acc.items()}
                    for k, v in means.items():
                        writer.add_scalar(k, v, step)
                    writer.add_scalar("speed/images_per_s", steps_since * cfg.train.batch_size * dd.world / dt, step)
                    writer.add_scalar("lr/g", m.opt_g.param_groups[0]["lr"], step)
                    writer.add_scalar("lr/d", m.opt_d.param_groups[0]["lr"], step)
                    if bad_samples:
                        writer.add_scalar("data/bad_samples", bad_samples, step)
                    bar.set_postfix({k.split("/")[-1]: f"{v:.3f}" for k, v in means.items() if k.startswith("loss/")})
                    result.metrics = means
                    acc, t_log, steps_since = {}, time.perf_counter(), 0
                if dd.main and step % cfg.train.image_every == 0:
                    _log_images(writer, m, val, cfg, encoder, device, step)
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
    if dd.main:
        if step == cfg.train.steps:
            final = {"final/val_l1": val_l1(m.G_ema or m.G, val, encoder, cfg.tags.pool, device),
                     **{f"final/{k.replace('/', '_')}": v for k, v in result.metrics.items()}}
            write_hparams(writer, cfg, final)
            result.metrics.update(final)
        if bad_samples or skipped:
            tqdm.write(f"data: {len(skipped)} files skipped at scan, {bad_samples} failed at load")
        from textcolor.projector import export_for_run  # the tag vectors in TensorBoard's projector
        export_for_run(m.G_ema or m.G, encoder, None, writer, step)
        writer.close()
        unlock_run_dir(out_dir)
    return result


def _log_images(writer, m: Models, val: dict, cfg: Config, encoder, device, step: int) -> None:
    G = m.G_ema or m.G
    imgs = probe_images(G, val, cfg.train.probe_prompts, encoder, cfg.tags.pool, device)
    writer.add_image("samples", pil_to_chw(imgs["samples"]), step)
    if imgs["tag_ablation"] is not None:
        writer.add_image("tag_ablation", pil_to_chw(imgs["tag_ablation"]), step)
