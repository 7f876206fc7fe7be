"""Labelled image grids: the TensorBoard tag-ablation panel and `infer.py --grid` share this."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont


def to_pil(x: torch.Tensor) -> Image.Image:
    """[3, H, W] in [-1, 1] -> RGB image."""
    arr = ((x.detach().float().clamp(-1, 1) + 1) * 127.5 + 0.5).to(torch.uint8)
    return Image.fromarray(arr.permute(1, 2, 0).cpu().numpy())


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one fixed-size default font
        return ImageFont.load_default()


def _fit(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    """Shorten `text` with an ellipsis until it fits in `width` pixels (binary search: dropping one
    character at a time took minutes for a 10 000-character prompt)."""
    if draw.textlength(text, font=font) <= width:
        return text
    lo, hi = 0, len(text)  # the longest prefix that fits with the ellipsis
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if draw.textlength(text[:mid] + "…", font=font) <= width:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo] + "…"


def labelled_grid(rows: list[list[Image.Image]], labels: list[str], pad: int = 2) -> Image.Image:
    """Rows of equally sized panels under one header row of column labels."""
    w, h = rows[0][0].size
    cols = max(len(r) for r in rows)
    font_px = max(9, min(16, w // 12))
    header = font_px + 6
    grid = Image.new("RGB", (cols * (w + pad) + pad, header + len(rows) * (h + pad) + pad), "white")
    draw = ImageDraw.Draw(grid)
    font = _font(font_px)
    for c, label in enumerate(labels[:cols]):
        draw.text((pad + c * (w + pad) + 2, 3), _fit(draw, label, font, w - 4), fill="black", font=font)
    for r, row in enumerate(rows):
        for c, panel in enumerate(row):
            grid.paste(panel.convert("RGB").resize((w, h)), (pad + c * (w + pad), header + pad + r * (h + pad)))
    return grid


def pil_to_chw(img: Image.Image) -> np.ndarray:
    """RGB image -> uint8 [3, H, W] for SummaryWriter.add_image."""
    return np.asarray(img.convert("RGB")).transpose(2, 0, 1).copy()
