"""Which pixels hear which tag: the per-pixel attention of a model with `gen.tag_attn_levels`.

    python -m textcolor.pixelattn --checkpoint CKPT --prompt "red_hair, blue_eyes"
        mean attention weight of each tag (and of the "none" slot) by mask region, over held-out
        synthetic originals coloured as infer.py colours them
    python -m textcolor.pixelattn --checkpoint CKPT --prompt "red_hair, blue_eyes" --sketch s.png --out maps.png
        the maps of one sketch: one row per attention level, one panel per tag, brighter = heard more

Phrases are grounded as infer.py grounds them ("crimson hair" is heard as red_hair; `--literal`
turns it off), and the tags are named as the model hears them.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image

from textcolor import cli, synth
from textcolor.cli import UsageError
from textcolor.colorize import Colorizer, Prepared
from textcolor.evaluate import EVAL_SEED
from textcolor.grid import labelled_grid
from textcolor.imageio import save_png_atomic
from textcolor.vocab import MASK_LABELS

NONE = "(none)"
REGIONS = ("hair", "eyes", "skin", "outfit", "accessory", "background")
PANEL = 160


def heard_tags(colorizer: Colorizer, prompt: str) -> list[str]:
    """The prompt's tags as the model hears them (grounded unless the colorizer is literal), then NONE."""
    return [name for name, _ in colorizer.heard(prompt)] + [NONE]


def pixel_attention(colorizer: Colorizer, item: Prepared, prompt: str) -> dict[int, np.ndarray]:
    """{decoder level: [T+1, h, w]} attention of each pixel of that level over the prompt's tags and
    the none slot (heard_tags' order; each pixel's weights sum to 1)."""
    if not len(colorizer.G.tag_attn):
        raise UsageError("this model has no per-pixel tag attention (its gen.tag_attn_levels is empty)")
    maps: dict[int, np.ndarray] = {}

    def keep(level: int):
        def hook(module, inputs, output):
            x, tokens = inputs
            a = module.attention(x, tokens)[0]                                    # [h·w, T+1]
            maps[level] = a.T.reshape(-1, *x.shape[-2:]).float().cpu().numpy()
        return hook

    handles = [m.register_forward_hook(keep(int(level))) for level, m in colorizer.G.tag_attn.items()]
    try:
        colorizer.colorize_prepared([item], [prompt])
    finally:
        for h in handles:
            h.remove()
    return dict(sorted(maps.items()))


def by_region(colorizer: Colorizer, prompt: str, n: int = 8, size: int = 256, offset: int = 0) -> pd.DataFrame:
    """Mean attention weight of each heard tag by mask region and level, over n held-out synthetic
    originals (the evaluation's seeds, EVAL_SEED + offset upwards) drawn at `size` px."""
    names = heard_tags(colorizer, prompt)
    sums: dict[tuple[int, str], list[np.ndarray]] = {}
    for k in range(n):
        sample = synth.render(EVAL_SEED + offset + k, size, character="original", monochrome=False)
        item = colorizer.prepare(Image.fromarray(sample.image), from_color=True)
        mask = torch.from_numpy(sample.mask.astype(np.int64))[None, None].float()
        for level, a in pixel_attention(colorizer, item, prompt).items():
            labels = F.interpolate(mask, size=a.shape[1:], mode="nearest")[0, 0].long().numpy()
            for region in REGIONS:
                inside = labels == MASK_LABELS.index(region)
                if inside.any():
                    sums.setdefault((level, region), []).append(a[:, inside].mean(1))
    rows = [{"level": level, "region": region, **dict(zip(names, np.mean(v, 0)))}
            for (level, region), v in sorted(sums.items(), key=lambda kv: (kv[0][0], REGIONS.index(kv[0][1])))]
    return pd.DataFrame(rows)


def maps_image(sketch: Image.Image, names: list[str], maps: dict[int, np.ndarray]) -> Image.Image:
    """One row per level, one panel per tag: the sketch darkened where the tag is not heard."""
    base = np.asarray(sketch.convert("L").resize((PANEL, PANEL), Image.LANCZOS), np.float32) / 255
    rows = []
    for a in maps.values():
        row = []
        for w in a:
            heat = np.asarray(Image.fromarray(w.astype(np.float32)).resize((PANEL, PANEL), Image.NEAREST))
            rgb = np.stack([heat, heat * 0.6, 0.2 * (1 - heat)], -1) * (0.4 + 0.6 * base[..., None])
            row.append(Image.fromarray((rgb * 255 + 0.5).clip(0, 255).astype(np.uint8)))
        rows.append(row)
    return labelled_grid(rows, names)


def format_table(table: pd.DataFrame) -> str:
    cols = list(table.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in table.iterrows():
        lines.append("| " + " | ".join(str(r[c]) if c in ("level", "region") else f"{r[c]:.2f}" for c in cols) + " |")
    return "\n".join(lines)


def run(args) -> int:
    if args.out and args.out.exists() and not args.overwrite:
        raise UsageError(f"{args.out}: already exists (pass --overwrite to replace it)")
    if args.out and not args.sketch:
        raise UsageError("--out draws the maps of one sketch: give it with --sketch")
    if args.n < 1:
        raise UsageError(f"--n must be ≥ 1, got {args.n}")
    colorizer = Colorizer.from_checkpoint(args.checkpoint, device=args.device)
    colorizer.ground_words = not args.literal
    if colorizer.encoder is None:
        raise UsageError("this model has no tag conditioning")
    if args.sketch:
        item = colorizer.prepare(args.sketch, from_color=args.from_color)
        maps = pixel_attention(colorizer, item, args.prompt)
        names = heard_tags(colorizer, args.prompt)
        for level, a in maps.items():
            print(f"level {level} ({a.shape[1]}×{a.shape[2]}): " + ", ".join(
                f"{t} {w:.2f}" for t, w in zip(names, a.reshape(len(names), -1).mean(1))))
        if args.out:
            sketch = Image.fromarray((item.lines[0].numpy() * 255 + 0.5).clip(0, 255).astype(np.uint8))
            args.out.parent.mkdir(parents=True, exist_ok=True)
            save_png_atomic(maps_image(sketch, names, maps), args.out)
            print(f"wrote {args.out}")
        return 0
    print(format_table(by_region(colorizer, args.prompt, args.n, args.size, args.offset)))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = cli.parser("textcolor-pixelattn", __doc__)
    p.add_argument("--prompt", required=True, help='tags as infer.py takes them, e.g. "red_hair, blue_eyes"')
    p.add_argument("--checkpoint", type=Path, help="train.py checkpoint, run dir or .safetensors (default: shipped)")
    p.add_argument("--sketch", type=Path, help="show the maps of this sketch instead of the by-region table")
    p.add_argument("--from-color", action="store_true", help="--sketch is a colour image: extract its lines first")
    p.add_argument("--out", type=Path, help="with --sketch: write the maps here (PNG)")
    p.add_argument("--n", type=int, default=8, help="synthetic originals for the table (default 8)")
    p.add_argument("--size", type=int, default=256, help="their size in px (default 256)")
    p.add_argument("--offset", type=int, default=0, help="first held-out seed after the evaluation's first")
    p.add_argument("--literal", action="store_true", help="give phrases to the text encoder as written")
    p.add_argument("--device", help="cpu, cuda, ... (default: cuda if available)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    args = p.parse_args(argv)
    return cli.run(lambda: run(args), extra=(ValueError,))


if __name__ == "__main__":
    sys.exit(main())
