"""The trainable state of a run: G, D, the EMA generator and both optimisers, built from the config,
saved into and restored from a checkpoint dict, or initialised from another run's weights.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import torch

from textcolor.checkpoint import CheckpointError, generator_parts, load_checkpoint, resolve
from textcolor.config import Config, to_dict
from textcolor.models import Generator, PatchDiscriminator, build_models


class TrainingError(RuntimeError):
    """Stops a run with a one-line message (bad run dir, non-finite loss or weights, ...)."""


@dataclass
class Models:
    G: Generator
    D: PatchDiscriminator
    G_ema: Generator | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer



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


def state_dict(m: Models, cfg: Config, step: int, samples: int, tagdrop: torch.Generator, encoder,
               train_seconds: float = 0.0) -> dict:
    names, vectors = encoder.table() if encoder is not None else ([], torch.zeros(0))
    return {
        "step": step, "samples_seen": samples, "train_seconds": float(train_seconds), "config": to_dict(cfg),
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
