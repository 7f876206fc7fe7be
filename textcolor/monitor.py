"""What a run shows in TensorBoard besides its scalars: the fixed probe grids (validation sketches ×
probe prompts, from step 0), the final validation L1, and the HParams entry a sweep compares.
"""
from __future__ import annotations

import time

import torch
from torch.utils.tensorboard.summary import hparams

from textcolor import losses
from textcolor.config import Config, to_dict
from textcolor.grid import labelled_grid, pil_to_chw, to_pil
from textcolor.models import Generator
from textcolor.tags import TagEncoder, embed


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
            "loss.lambda_eyes", "loss.lambda_locality", "loss.lambda_shift", "optim.lr", "optim.decay_steps",
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
    exp, ssi, sei = hparams(flat_hparams(cfg), metrics)
    fw = writer._get_file_writer()
    for summary in (exp, ssi, sei):
        fw.add_summary(summary)
    for k, v in metrics.items():
        writer.add_scalar(k, v, cfg.train.steps)


def log_probes(writer, G: Generator, val: dict, cfg: Config, encoder: TagEncoder | None, device, step: int) -> None:
    """The probe grids at `step`: own tags vs target, and the tag-ablation panel (one column per probe prompt)."""
    imgs = probe_images(G, val, cfg.train.probe_prompts, encoder, cfg.tags.pool, device)
    writer.add_image("samples", pil_to_chw(imgs["samples"]), step)
    if imgs["tag_ablation"] is not None:
        writer.add_image("tag_ablation", pil_to_chw(imgs["tag_ablation"]), step)


class ScalarLog:
    """Per-step metrics averaged over `log_every` steps, written with the speed and learning rates."""

    def __init__(self, images_per_step: int):
        self.images_per_step = images_per_step
        self.acc: dict[str, list[torch.Tensor]] = {}
        self.bad_samples, self.steps, self.t0 = 0, 0, time.perf_counter()

    def count_bad(self, flags) -> None:
        self.bad_samples += sum(1 for b in flags if b)

    def add(self, metrics: dict[str, torch.Tensor]) -> None:
        self.steps += 1
        for k, v in metrics.items():
            self.acc.setdefault(k, []).append(v)

    def write(self, writer, step: int, m) -> dict[str, float]:
        """Write the means since the last write at `step`; returns them."""
        dt = time.perf_counter() - self.t0
        means = {k: torch.stack(v).float().mean().item() for k, v in self.acc.items()}
        for k, v in means.items():
            writer.add_scalar(k, v, step)
        writer.add_scalar("speed/images_per_s", self.steps * self.images_per_step / dt, step)
        writer.add_scalar("lr/g", m.opt_g.param_groups[0]["lr"], step)
        writer.add_scalar("lr/d", m.opt_d.param_groups[0]["lr"], step)
        if self.bad_samples:
            writer.add_scalar("data/bad_samples", self.bad_samples, step)
        self.acc, self.steps, self.t0 = {}, 0, time.perf_counter()
        return means
