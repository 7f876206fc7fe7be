"""How training sketches vary, so they look like what users bring.

A user's sketch is drawn at 256–1024 px, by hand (clean ink lines) or extracted from a colour
image, with their own line weight. The model colours it at its working size, and infer.py brings
it there with `xdog.downscale_lines`. Training sketches are made the same way: a synthetic
character is rendered at a draw size S ≥ the working size, its lines are drawn in one of these
styles at S, and the same operator brings them down:

    xdog        XDoG of the colour render at S (parameters jittered), then downscale_lines
    xdog_small  the colour render brought to the working size first, then XDoG there: exactly the
                `infer.py --from-color` path for a colour illustration
    ink         the render's own ink (outlines, pupils, strands), no shading edges: clean line art
                as a person inks it, then downscale_lines

`line_jitter` is the probability that the XDoG parameters are drawn from a range around seed 000's
(σ, ε) and that the lines are thickened by a pixel at S (a heavier pen). Everything is drawn from
a generator seeded by the sample, so a sample's sketch is deterministic.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from textcolor.config import LINE_STYLES, XDoGConfig
from textcolor.xdog import downscale_lines, xdog_rgb


def draw_size(size: int, max_scale: float, rng: np.random.Generator) -> int:
    """A draw size in [size, size·max_scale], log-uniform (as many small drawings as large)."""
    if max_scale <= 1.0:
        return size
    return int(round(size * math.exp(rng.uniform(0.0, math.log(max_scale)))))


def jittered_xdog(base: XDoGConfig, rng: np.random.Generator) -> XDoGConfig:
    """σ from 0.75× to 2× seed 000's (finer or bolder lines), ε from ½× to 2× (more or fewer
    shading edges)."""
    return replace(base, sigma=base.sigma * float(rng.uniform(0.75, 2.0)),
                   eps=base.eps * float(2 ** rng.uniform(-1.0, 1.0)))


def thicken(lines: torch.Tensor) -> torch.Tensor:
    """[B, 1, H, W] lines (0 = ink): one pixel heavier in every direction (a 3×3 min filter)."""
    return -F.max_pool2d(-lines, 3, stride=1, padding=1)


def area_resize(image01: torch.Tensor, size: int) -> torch.Tensor:
    """[B, C, H, W] -> [B, C, size, size] by area averaging (a render brought to the working size)."""
    if image01.shape[-1] == size and image01.shape[-2] == size:
        return image01
    return F.interpolate(image01, size=(size, size), mode="area")


def make_sketch(image01: torch.Tensor, ink: torch.Tensor, size: int, style: str, jitter: float,
                base: XDoGConfig, rng: np.random.Generator) -> torch.Tensor:
    """One training sketch at the working size.

    image01 [1, 3, S, S] colour render in [0, 1]; ink [1, 1, S, S] its ink mask (1 = ink) ->
    [1, 1, size, size] in {0, 1} (1 = paper)."""
    if style not in LINE_STYLES:
        raise ValueError(f"unknown line style {style!r}; valid: {', '.join(LINE_STYLES)}")
    jittered = rng.random() < jitter
    cfg = jittered_xdog(base, rng) if jittered else base
    heavier = jittered and rng.random() < 0.5
    if style == "xdog_small":
        return xdog_rgb(area_resize(image01, size), cfg).round()
    lines = xdog_rgb(image01, cfg) if style == "xdog" else 1.0 - ink
    if heavier:
        lines = thicken(lines)
    if lines.shape[-1] == size:
        return lines.round()
    return downscale_lines(lines, (size, size))
