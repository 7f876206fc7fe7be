"""Batched XDoG line extraction (Winnemöller et al.), exactly as in seed 000.

On a grey image I in [0, 1]:
    S = (1 + p)·G_σ(I) − p·G_kσ(I)
    T = 1                       where S ≥ ε
        1 + tanh(φ·(S − ε))     elsewhere
With φ = 1e9 the tanh is a hard step: lines are 0, paper is 1.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from textcolor.config import XDoGConfig

# ITU-R BT.601 luma, what PIL's convert("L") uses.
LUMA = (0.299, 0.587, 0.114)


def gaussian_kernel1d(sigma: float, truncate: float = 4.0, dtype=torch.float32) -> torch.Tensor:
    radius = max(1, int(truncate * sigma + 0.5))  # same radius rule as scipy.ndimage
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).to(dtype)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of [B, C, H, W] with reflect padding (edge pixel not repeated)."""
    k = gaussian_kernel1d(sigma, dtype=x.dtype).to(x.device)
    r = k.numel() // 2
    b, c, h, w = x.shape
    y = x.reshape(b * c, 1, h, w)
    # 'reflect' needs pad < size; fall back to 'replicate' for tiny images
    mode = "reflect" if r < min(h, w) else "replicate"
    y = F.conv2d(F.pad(y, (r, r, 0, 0), mode=mode), k.view(1, 1, 1, -1))
    y = F.conv2d(F.pad(y, (0, 0, r, r), mode=mode), k.view(1, 1, -1, 1))
    return y.reshape(b, c, h, w)


def rgb_to_gray(rgb: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] in [0, 1] -> [B, 1, H, W] luma."""
    w = torch.tensor(LUMA, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    return (rgb * w).sum(1, keepdim=True)


def xdog(gray: torch.Tensor, sigma: float = 0.4, k: float = 4.5, p: float = 19.0,
         eps: float = 0.01, phi: float = 1e9) -> torch.Tensor:
    """[B, 1, H, W] grey in [0, 1] -> [B, 1, H, W] sketch in [0, 1] (1 = paper, 0 = line)."""
    s = (1 + p) * gaussian_blur(gray, sigma) - p * gaussian_blur(gray, k * sigma)
    # tanh saturates to −1 for φ·(S−ε) ≲ −20, so clamping keeps huge φ finite without changing T
    t = 1 + torch.tanh((phi * (s - eps)).clamp(min=-50.0))
    return torch.where(s >= eps, torch.ones_like(s), t)


def xdog_rgb(rgb: torch.Tensor, cfg: XDoGConfig | None = None) -> torch.Tensor:
    """[B, 3, H, W] colour in [0, 1] -> [B, 1, H, W] sketch in [0, 1]."""
    cfg = cfg or XDoGConfig()
    return xdog(rgb_to_gray(rgb), cfg.sigma, cfg.k, cfg.p, cfg.eps, cfg.phi)


def sketch_array(rgb: np.ndarray, cfg: XDoGConfig | None = None) -> np.ndarray:
    """uint8 [H, W, 3] colour -> uint8 [H, W] sketch; a convenience for single images."""
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255.0
    s = xdog_rgb(x, cfg)[0, 0]
    return (s * 255.0 + 0.5).clamp(0, 255).to(torch.uint8).numpy()



# A downscaled sketch is re-binarised: pixels darker than this become line, as XDoG lines are.
LINE_THRESHOLD = 0.75


def downscale_lines(lines: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """[B, 1, H, W] line art in [0, 1] (0 = ink) -> [B, 1, h, w] in {0, 1}: the darkest pixel of
    each block, thresholded. The one operator that brings a sketch to the working size, in
    inference (textcolor.colorize) and in training (textcolor.sketchstyle). A block average would
    fade a line drawn at 4× the working size (¼ of a block wide) below the threshold; the min keeps
    every line (textcolor.evaluate's pair_2x_accuracy: 74.5% with the average, 93.5% with the min)."""
    small = -F.adaptive_max_pool2d(-lines, shape)
    return (small >= LINE_THRESHOLD).to(lines.dtype)
