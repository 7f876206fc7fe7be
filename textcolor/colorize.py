"""The one inference path: infer.py, the evaluation, the notebook and the web page all use it.

    from textcolor.colorize import Colorizer
    colorizer = Colorizer.from_checkpoint()                 # the model shipped with the package
    img = colorizer("sketch.png", "hatsune_miku")          # PIL.Image, same size as the input
    imgs = colorizer(["a.png", "b.png"], "monochrome", strength=1.0)

Resolution policy: the sketch is coloured at the model's working resolution (its training size,
or `size`): the short side is scaled to `size`, the long side in proportion, both rounded to a
multiple of 2**depth. A sketch is brought there by the darkest pixel of each block (so thin lines
of a large drawing survive) and thresholded; a colour image (`from_color`) is resized and then
XDoG'd at that size, as in training. The colour is upscaled back to the input size, and the input's
own line art is multiplied on top at full resolution, so lines stay crisp at any size and aspect
ratio.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from textcolor.checkpoint import CheckpointError, load_generator
from textcolor.charnames import ground_names
from textcolor.colorwords import ground_prompt
from textcolor.config import Config, GeneratorConfig
from textcolor.imageio import open_rgb
from textcolor.models import Generator
from textcolor.tags import build_encoder, encoder_width, parse_prompt
from textcolor.xdog import downscale_lines, rgb_to_gray, xdog_rgb

DEFAULT_MODEL = Path(__file__).resolve().parent / "assets" / "default" / "model.safetensors"



@dataclass
class Prepared:
    sketch: torch.Tensor      # [3, h, w] in [-1, 1] at working resolution
    lines: torch.Tensor       # [1, H, W] in [0, 1] at the input's resolution (1 = paper)
    size: tuple[int, int]     # (W, H) of the input


def working_shape(width: int, height: int, size: int, multiple: int) -> tuple[int, int]:
    """(w, h) with the short side at `size`, aspect kept, both multiples of `multiple`."""
    scale = size / min(width, height)
    snap = lambda v: max(multiple, int(round(v * scale / multiple)) * multiple)  # noqa: E731
    return snap(width), snap(height)


# --- the resource budget: refuse before allocating ----------------------------------------------

# Working sides further apart than this are a strip, not a drawing: a 200000×1 PNG would become a
# 51-megapixel working image. Checked before any tensor is made.
MAX_ASPECT = 32
# Estimated peak bytes of one colorization (generator activations plus the full-size composition);
# inputs above it are refused with the --size that fits, batches above it are split.
DEFAULT_BUDGET = int(float(os.environ.get("TEXTCOLOR_MEMORY_BUDGET_GB", "4")) * 2 ** 30)
_LIVE = 6   # activations alive at once per level in the U-Net (skip, block input/output, norm, act)


def generator_bytes(gen: GeneratorConfig, width: int, height: int) -> int:
    """Estimated activation bytes of one [3, height, width] sample through the generator (float32):
    each level keeps about _LIVE tensors of its channels at its resolution."""
    f = gen.stem_factor if gen.stem == "unshuffle" else 1
    pixels = width * height / f ** 2
    per_pixel = sum(min(gen.base * 2 ** i, gen.max_ch) / 4 ** i for i in range(gen.depth + 1))
    head = width * height * (gen.head_ch + 3) * 3 if f > 1 else 0
    return int(4 * (_LIVE * pixels * per_pixel + head))


def compose_bytes(width: int, height: int) -> int:
    """The full-resolution line art [1, H, W] and one upscaled colour [3, H, W] with its temporaries."""
    return 4 * width * height * (3 + 3 * 3)


class BudgetError(ValueError):
    """An input that would exceed the memory budget or the aspect-ratio limit; one line that says
    what to pass instead."""


def _check_strength(strength: float) -> None:
    # NaN/Inf would reach the uint8 cast as undefined values: a black or random picture, no error
    if not math.isfinite(strength):
        raise ValueError(f"strength must be a finite number, got {strength}")


class Colorizer:
    def __init__(self, generator: Generator, cfg: Config, encoder, device: torch.device, size: int | None = None):
        # channels-last (NHWC) convolutions: 1.3-1.8x faster on the 2-core CPU, more at larger sizes
        self.G = generator.eval().requires_grad_(False).to(device, memory_format=torch.channels_last)
        self.cfg, self.encoder, self.device = cfg, encoder, device
        self.size = size or cfg.data.size
        self.multiple = generator.multiple
        self.budget = DEFAULT_BUDGET
        self.ground_words = True   # names and colour phrases read as our tags (textcolor.charnames, .colorwords)
        if self.size % self.multiple:
            raise ValueError(f"size {self.size} must be a multiple of {self.multiple}")

    @classmethod
    def from_checkpoint(cls, path: str | Path | None = None, device: str | None = None,
                        size: int | None = None) -> "Colorizer":
        """A train.py checkpoint (file or run dir; the EMA generator when present), an exported
        .safetensors generator, or None for the model shipped with the package."""
        if path is None:
            if not DEFAULT_MODEL.exists():
                raise CheckpointError(f"the shipped model {DEFAULT_MODEL} is missing; reinstall textcolor "
                                      f"or pass --checkpoint")
            path = DEFAULT_MODEL
        g = load_generator(path)
        dev = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        width = encoder_width(g.cfg.tags.encoder) if g.cfg.tags.layout != "none" else None
        if width is not None and width != g.generator.embed_dim:
            raise CheckpointError(f"{path}: its tags are {g.generator.embed_dim}-d but its tag encoder "
                                  f"{g.cfg.tags.encoder!r} gives {width}-d vectors")
        # the embedding cache is this machine's ($TEXTCOLOR_CACHE): checkpoint_config drops the file's path
        encoder = build_encoder(g.cfg.tags, (g.tag_names, g.tag_vectors))
        return cls(g.generator, g.cfg, encoder, dev, size)

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | None = None,
                        size: int | None = None) -> "Colorizer":
        """A hub-layout directory (model.safetensors, config.json, README.md: `python -m
        textcolor.checkpoint export SRC DIR --hub`), read from local disk only: no network."""
        d = Path(directory)
        if not (d / "model.safetensors").is_file():
            raise CheckpointError(f"{d}: no model.safetensors here (not a textcolor hub directory)")
        return cls.from_checkpoint(d / "model.safetensors", device=device, size=size)

    # --- preparation ---------------------------------------------------------------------------

    def prepare(self, source, from_color: bool = False) -> Prepared:
        """Any image source -> working-resolution sketch + full-resolution line art."""
        rgb = open_rgb(source)
        w, h = rgb.size
        ww, wh = self.check_budget(w, h, str(source) if isinstance(source, (str, Path)) else "image")
        full = torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None].float() / 255  # [1, 3, H, W]
        if from_color:
            # XDoG at working resolution is exactly what the model saw in training
            small = F.interpolate(full, size=(wh, ww), mode="bicubic", antialias=True, align_corners=False)
            sketch = xdog_rgb(small.clamp(0, 1), self.cfg.xdog)[0]                       # [1, h, w]
            lines = xdog_rgb(full, self.cfg.xdog)[0]                                       # [1, H, W]
        else:
            lines = rgb_to_gray(full)[0]
            sketch = downscale_lines(lines[None], (wh, ww))[0]                           # as in training
        return Prepared(sketch.expand(3, -1, -1) * 2 - 1, lines, (w, h))

    def item_bytes(self, w: int, h: int) -> int:
        """Estimated peak bytes of colouring one w×h input."""
        ww, wh = working_shape(w, h, self.size, self.multiple)
        return generator_bytes(self.cfg.gen, ww, wh) + compose_bytes(w, h)

    def check_budget(self, w: int, h: int, name: str = "image") -> tuple[int, int]:
        """The working shape of a w×h input, or BudgetError (what to pass instead) when its aspect
        ratio is extreme or one colorization would exceed the memory budget."""
        if max(w, h) > MAX_ASPECT * min(w, h):
            raise BudgetError(f"{name}: {w}x{h} is more than {MAX_ASPECT}:1; crop it into parts "
                              f"of at most {MAX_ASPECT}:1")
        need = self.item_bytes(w, h)
        if need > self.budget:
            def fits(size: int) -> bool:
                return generator_bytes(self.cfg.gen, *working_shape(w, h, size, self.multiple)) \
                    + compose_bytes(w, h) <= self.budget
            fit = self.multiple if fits(self.multiple) else None
            while fit is not None and fit * 2 < self.size and fits(fit * 2):
                fit *= 2
            hint = f"pass --size {fit} or a smaller image" if fit else "pass a smaller image"
            raise BudgetError(f"{name}: colouring {w}x{h} at size {self.size} needs about {need / 2 ** 30:.1f} GB, "
                              f"over the {self.budget / 2 ** 30:g} GB budget (TEXTCOLOR_MEMORY_BUDGET_GB); {hint}")
        return working_shape(w, h, self.size, self.multiple)

    def embed(self, prompts: Sequence[str]) -> torch.Tensor | None:
        if self.encoder is None:
            return None
        return self.encoder.embed_prompts([self.heard(p) for p in prompts], pool=self.cfg.tags.pool).to(self.device)

    def heard(self, prompt: str) -> list[tuple[str, float]]:
        """A prompt's tags as the model hears them: character names and colour phrases read as the
        tags they name (textcolor.charnames, textcolor.colorwords) unless `ground_words` is off."""
        items = parse_prompt(prompt)
        return ground_prompt(ground_names(items)) if self.ground_words else items

    # --- colouring -----------------------------------------------------------------------------

    @torch.no_grad()
    def colorize_prepared(self, items: Sequence[Prepared], prompts: Sequence[str], strength: float = 1.0) -> list[Image.Image]:
        """Batches items that share a working shape; out = G(s, ∅) + w·(G(s, t) − G(s, ∅))."""
        _check_strength(strength)
        if self.encoder is None or strength == 1.0:
            return self.colorize_embedded(items, self.embed(prompts))
        tagged, null = self.embed(prompts), self.embed([""] * len(prompts))
        return self.colorize_embedded(items, tagged, null_embeddings=null, strength=strength)

    @torch.no_grad()
    def colorize_embedded(self, items: Sequence[Prepared], embeddings: torch.Tensor | None,
                          null_embeddings: torch.Tensor | None = None, strength: float = 1.0) -> list[Image.Image]:
        """Colour from pooled tag embeddings [B, E] directly: interpolation and tag arithmetic."""
        _check_strength(strength)
        outs: list[Image.Image | None] = [None] * len(items)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, item in enumerate(items):
            groups.setdefault(tuple(item.sketch.shape[-2:]), []).append(i)
        # a batch that would exceed the budget runs in parts (one item fits: prepare checked it)
        chunks = {}
        for (h, w), idx in groups.items():
            n = max(1, self.budget // max(1, generator_bytes(self.cfg.gen, w, h)))
            chunks.update({(h, w, k): idx[k:k + n] for k in range(0, len(idx), n)})
        groups = chunks
        pick = lambda e, idx: None if e is None else e[idx].to(self.device)  # noqa: E731
        for idx in groups.values():
            sketch = torch.stack([items[i].sketch for i in idx]).to(self.device)        # [B, 3, h, w]
            sketch = sketch.contiguous(memory_format=torch.channels_last)
            colour = self.G(sketch, pick(embeddings, idx))
            if null_embeddings is not None:
                null = self.G(sketch, pick(null_embeddings, idx))
                colour = (null + strength * (colour - null)).clamp(-1, 1)
            for j, i in enumerate(idx):
                outs[i] = self._compose(colour[j], items[i])
        return outs

    def _compose(self, colour: torch.Tensor, item: Prepared) -> Image.Image:
        w, h = item.size
        up = F.interpolate(colour[None].float().cpu(), size=(h, w), mode="bicubic", align_corners=False)[0]
        up = ((up.clamp(-1, 1) + 1) / 2) * item.lines                                    # crisp lines on top
        arr = (up.permute(1, 2, 0).numpy() * 255 + 0.5).clip(0, 255).astype(np.uint8)
        return Image.fromarray(arr)

    def __call__(self, sketch, tags: str | Sequence[str] = "", strength: float = 1.0,
                 from_color: bool = False):
        """One source -> one image; a list of sources -> a list (tags: one prompt, or one per source)."""
        single = not isinstance(sketch, (list, tuple))
        sources = [sketch] if single else list(sketch)
        prompts = [tags] * len(sources) if isinstance(tags, str) else list(tags)
        if len(prompts) != len(sources):
            raise ValueError(f"{len(prompts)} prompts for {len(sources)} sketches")
        out = self.colorize_prepared([self.prepare(s, from_color) for s in sources], prompts, strength)
        return out[0] if single else out
