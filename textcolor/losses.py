"""Losses as pure functions of logits and tensors. Weights are applied in the train step only.

Adversarial losses take patch logits of any shape and average them.
Penalties take a `critic` callable x -> logits, so the sketch/tag condition stays fixed while
the gradient is taken with respect to the colour image alone.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

from textcolor.config import LossConfig
from textcolor.synth import HIGHLIGHT, SHADE
from textcolor.vocab import MASK_LABELS

Tensor = torch.Tensor


# --- adversarial -------------------------------------------------------------------------------

def d_nonsat(real: Tensor, fake: Tensor) -> Tensor:
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def g_nonsat(fake: Tensor) -> Tensor:
    return F.softplus(-fake).mean()  # maximise log D(x, G(x)) (non-saturating)


def d_lsgan(real: Tensor, fake: Tensor) -> Tensor:
    return 0.5 * ((real - 1).pow(2).mean() + fake.pow(2).mean())


def g_lsgan(fake: Tensor) -> Tensor:
    return 0.5 * (fake - 1).pow(2).mean()


def d_hinge(real: Tensor, fake: Tensor) -> Tensor:
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def g_hinge(fake: Tensor) -> Tensor:
    return -fake.mean()


def d_wgan(real: Tensor, fake: Tensor) -> Tensor:
    return fake.mean() - real.mean()


def g_wgan(fake: Tensor) -> Tensor:
    return -fake.mean()


D_LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "nonsat": d_nonsat, "lsgan": d_lsgan, "hinge": d_hinge, "wgan": d_wgan}
G_LOSSES: dict[str, Callable[[Tensor], Tensor]] = {
    "nonsat": g_nonsat, "lsgan": g_lsgan, "hinge": g_hinge, "wgan": g_wgan}


def l1(fake: Tensor, real: Tensor) -> Tensor:
    return (fake - real).abs().mean()


def masked_l1(a: Tensor, b: Tensor, region: Tensor) -> Tensor:
    """Mean |a - b| over the pixels of `region` ([B, H, W] bool), each sample weighted equally;
    samples whose region is empty count for nothing. a, b: [B, C, H, W]."""
    r = region[:, None].to(a.dtype)
    area = r.sum((1, 2, 3))
    per_sample = ((a - b).abs() * r).sum((1, 2, 3)) / (area * a.shape[1]).clamp_min(1)
    present = (area > 0).to(a.dtype)
    return (per_sample * present).sum() / present.sum().clamp_min(1)


def region_mean_l1(a: Tensor, b: Tensor, labels: Tensor, skip: Tensor, line: int,
                   weights: dict[int, float] | None = None) -> Tensor:
    """masked_l1 of each label region, averaged over the regions: every region a sample shows
    counts once, whatever its area. labels [B, H, W] integer; `skip` [B] the label left out of
    each sample (the region its swapped tag may change); `line` a label left out everywhere.
    `weights` {label: w} scales a region's term (others 1); the sum is still divided by the number
    of regions, so raising one region's weight leaves the others' pull as it was."""
    weights = weights or {}
    terms = []
    for label in labels.unique().tolist():
        if label == line:
            continue
        region = (labels == label) & (skip[:, None, None] != label)
        if region.any():
            terms.append(weights.get(label, 1.0) * masked_l1(a, b, region))
    return torch.stack(terms).mean() if terms else a.new_zeros(())


def region_shift_hinge(moved: Tensor, held: Tensor, region: Tensor, least: Tensor) -> Tensor:
    """mean over samples of max(0, least − ‖mean_region(moved) − mean_region(held)‖₂): a swapped
    colour tag must move its region's mean colour at least `least` ([S], image units). Without it
    the locality term is met by not hearing the tag at all. moved, held [S, C, H, W]; region
    [S, H, W] bool; samples whose region is empty are left out."""
    area = region.sum((1, 2))                                                       # [S]
    keep = area > 0
    if not keep.any():
        return moved.new_zeros(())
    w = region[:, None].to(moved.dtype)
    mean = lambda x: (x * w).sum((2, 3)) / area.clamp_min(1)[:, None]  # noqa: E731  [S, C]
    dist = (mean(moved) - mean(held)).pow(2).sum(1).add(1e-12).sqrt()               # [S]
    return torch.relu(least - dist)[keep].mean()


def recolored(image: Tensor, labels: Tensor, region: Tensor, old: Tensor, new: Tensor, shade: float = SHADE,
              highlight: float = HIGHLIGHT) -> Tensor:
    """The target a colour-swapped prompt asks for: inside each sample's `region` label the fill
    colour is replaced by `new`, its shade and highlight with it; every other pixel is kept.
    image [S, 3, H, W] in [-1, 1]; labels [S, H, W]; region [S] labels; old, new [S, 3] in
    [-1, 1]: the colour the prompt named and the one swapped in.

    The fill colour o is, of the region's commonest pixel colours within 12 levels of `old` (an
    original's colour is its tag's, jittered ±8), the one that explains most pixels as itself, its
    shade o·`shade` or its highlight o + `highlight`·(1 − o) (the renderer's palette,
    textcolor.synth; the shade alone is often the commonest colour); `old` itself if none is near.
    Fill, shade, highlight, ink and their blends are all p·o + q·white: for a chromatic o each pixel's
    (p, q) is solved by least squares and redrawn as p·n + q·white, exact to rounding. A grey o
    cannot tell p from q: per channel, darker than o is read as shade or ink (scaled by n / o),
    lighter as highlight (its distance to white scaled by (1 − n) / (1 − o)); exact for the
    palette colours, approximate for blends of a highlight with a shade."""
    x = (image + 1) / 2
    out = x.clone()
    n01 = (new + 1) / 2
    for i in range(x.shape[0]):
        inside = labels[i] == region[i]
        if not inside.any():
            continue
        px = x[i][:, inside]                                                         # [3, N]
        near = ((old[i] + 1) * 127.5).round()
        o = _fill_color((px * 255).round().clamp(0, 255), near, shade, highlight)[:, None] / 255   # [3, 1]
        n = n01[i].to(x.dtype)[:, None]
        if float(o.max() - o.min()) > 0.1:
            # a chromatic fill: each pixel is p·o + q·white (fill, shade, highlight, ink and their
            # blends all are), solved per pixel by least squares and redrawn as p·n + q·white
            design = torch.cat([o, torch.ones_like(o)], 1)                           # [3, 2]
            pq = torch.linalg.lstsq(design, px).solution                             # [2, N]
            out[i][:, inside] = (n * pq[:1] + pq[1:]).clamp(0, 1)
        else:
            # a grey fill cannot tell p from q; per channel, darker than o is shade or ink
            # (scaled by n / o), lighter is highlight (its distance to white scaled)
            below = px * n / o.clamp_min(1e-3)
            above = 1 - (1 - px) * (1 - n) / (1 - o).clamp_min(1e-3)
            out[i][:, inside] = torch.where(px <= o, below, above).clamp(0, 1)
    return out * 2 - 1


def _fill_color(px: Tensor, near: Tensor, shade: float, highlight: float) -> Tensor:
    """px [3, N] and near [3] in 0-255 levels -> the fill colour [3] (see recolored)."""
    colors, counts = px.T.unique(dim=0, return_counts=True)
    close = (colors - near.to(colors.dtype)).abs().amax(1) <= 12
    if not close.any():
        return near.to(px.dtype)
    colors, counts = colors[close], counts[close]
    candidates = colors[counts.argsort(descending=True)[:4]]                      # [K, 3]
    best, best_n = candidates[0], -1
    for c in candidates:
        n = sum(int(((px - v[:, None]).abs() <= 1).all(0).sum())
                for v in (c, (c * shade).round(), (c + highlight * (255 - c)).round()))
        if n > best_n:
            best, best_n = c, n
    return best


# --- gradient penalties ------------------------------------------------------------------------

def grad_sq_norm(critic: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """‖∇ₓ D̄(x)‖² per sample, [B]; differentiable (create_graph) so it can be minimised.

    D̄ is the critic value the adversarial loss sees: the mean of the sample's patch logits. (The
    sum, as in the reference WGAN-GP code, scales the penalty by the squared patch count, ~200² at
    64 px, and D then settles for a constant output.) For a per-sample scalar D both are the same."""
    x = x.detach().requires_grad_(True)
    out = critic(x)
    acc = torch.promote_types(out.dtype, torch.float32)  # bf16 under autocast -> fp32; fp64 stays fp64
    per_sample = out.to(acc).reshape(out.shape[0], -1).mean(1)                  # [B, 1, h, w] -> [B]
    (grad,) = torch.autograd.grad(per_sample.sum(), x, create_graph=True)
    return grad.to(acc).pow(2).flatten(1).sum(1)


def mix(real: Tensor, fake: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """x̂ = ε·real + (1−ε)·fake with ε ~ U[0, 1] drawn per sample."""
    eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype, generator=generator)
    return eps * real.detach() + (1 - eps) * fake.detach()


def zero_mixed(critic, real: Tensor, fake: Tensor, generator=None) -> Tensor:
    """Zero-centred penalty on mixed samples (seed 000's default): E‖∇D(x̂)‖²."""
    return grad_sq_norm(critic, mix(real, fake, generator)).mean()


def one_mixed(critic, real: Tensor, fake: Tensor, generator=None) -> Tensor:
    """WGAN-GP: E(‖∇D(x̂)‖ − 1)². The 1e-12 keeps sqrt differentiable at a zero gradient."""
    norm = (grad_sq_norm(critic, mix(real, fake, generator)) + 1e-12).sqrt()
    return (norm - 1).pow(2).mean()


def r1(critic, real: Tensor, fake: Tensor, generator=None) -> Tensor:
    """Zero-centred on real samples only (Mescheder et al. 2018): E‖∇D(x)‖²."""
    return grad_sq_norm(critic, real).mean()


PENALTIES: dict[str, Callable[..., Tensor]] = {
    "zero_mixed": zero_mixed, "one_mixed": one_mixed, "r1": r1}


def get(registry: dict, name: str, what: str):
    try:
        return registry[name]
    except KeyError:
        raise ValueError(f"unknown {what} {name!r}; valid: {', '.join(registry)}") from None


# --- the objective -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Objective:
    """cfg.loss resolved once: the functions by name and the weights the train step applies.

    The lazy penalty (every `gp_every` steps) carries weight λ_gp · gp_every, so it keeps the same
    average pull as an every-step penalty."""
    d_adv: Callable[[Tensor, Tensor], Tensor]
    g_adv: Callable[[Tensor], Tensor]
    penalty: Callable[..., Tensor] | None   # None: no penalty
    gp_every: int
    lambda_adv: float
    lambda_l1: float
    lambda_gp: float
    lambda_hair: float
    lambda_eyes: float
    lambda_locality: float
    locality_average: str                  # regions | pixels
    lambda_shift: float
    locality_detach_tags: bool
    lambda_recolor: float = 0.0
    locality_weights: dict[int, float] = field(default_factory=dict)   # {mask label: weight}, regions average

    @classmethod
    def from_config(cls, lc: LossConfig) -> Objective:
        return cls(d_adv=get(D_LOSSES, lc.adv, "adversarial loss"), g_adv=get(G_LOSSES, lc.adv, "adversarial loss"),
                   penalty=None if lc.penalty == "none" else get(PENALTIES, lc.penalty, "penalty"),
                   gp_every=lc.gp_every, lambda_adv=lc.lambda_adv, lambda_l1=lc.lambda_l1,
                   lambda_gp=lc.lambda_gp * lc.gp_every, lambda_hair=lc.lambda_hair, lambda_eyes=lc.lambda_eyes,
                   lambda_locality=lc.lambda_locality, locality_average=lc.locality_average,
                   lambda_shift=lc.lambda_shift, locality_detach_tags=lc.locality_detach_tags,
                   lambda_recolor=lc.lambda_recolor,
                   locality_weights={MASK_LABELS.index(name): w for name, w in lc.locality_weights.items()})

    @property
    def uses_masks(self) -> bool:
        """The region terms need the synthetic data's label masks."""
        return max(self.lambda_hair, self.lambda_eyes, self.lambda_locality, self.lambda_shift, self.lambda_recolor) > 0

    @property
    def uses_swaps(self) -> bool:
        """The locality, shift and recolour terms need colour-swapped prompts."""
        return max(self.lambda_locality, self.lambda_shift, self.lambda_recolor) > 0
