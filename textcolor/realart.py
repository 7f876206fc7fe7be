"""Real art nobody here drew: colour character sprites' extracted sketches and measure the tags' effect.

    python -m textcolor.realart "eileen happy.png" "lucy mad.png" --regions docs/real_art_regions.json \\
        --out docs/real_art.png --json real_art.json [--checkpoint runs/demo] [--size 64]

Each sprite (any image; transparency is composited on white) is cropped to its head and shoulders by
one fixed rule, with no per-image tuning:
  * the figure is the pixels with alpha >= 128 (an image without alpha is all figure);
  * the crop is a square whose side is HEAD_FRACTION (0.4) of the figure's bounding-box height, its
    top on the bounding box's top, centred horizontally on the figure's pixels within those rows;
    parts falling outside the image are white paper.
The crop goes through the usual `from_color` path (XDoG sketch at working resolution, lines at full
resolution) and is coloured with each of PROMPTS. The strip (--out) has one row per sprite: the
extracted lines (`Prepared.lines`, full resolution, multiplied onto the colour), then one panel per
prompt. The generator itself sees the XDoG of the crop brought to the working size (256 px for the
shipped model), where large dark fills such as black hair turn into solid ink.

Measurements, in CIELAB (skimage), per sprite and averaged over sprites:
  hair_dL      mean L* of the `white_hair` output minus that of `black_hair` in the sprite's hair box
               (a model that follows the tag: large and positive)
  mono_chroma  mean chroma of the `monochrome` output over the figure (the crop's pixels that are not
               near-white paper, any channel < 240, in the composited input) (ideal: near 0)
  face_dE      mean per-pixel CIE76 ΔE between `white_hair` and `black_hair` in the face box
               (the hair tag leaking into the skin) (ideal: near 0)
Boxes come from --regions, a JSON object keyed by sprite file name, each {"hair": [x0, y0, x1, y1],
"face": [...]} in fractions (0..1) of the crop; pixels on a line (lines < 0.5) inside a box are left
out, so a box measures fill colour, not ink. A sprite without an entry gets only mono_chroma.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
import torch
from skimage.color import rgb2lab

from textcolor import cli
from textcolor.cli import UsageError
from textcolor.colorize import Colorizer
from textcolor.grid import labelled_grid
from textcolor.imageio import open_rgb, save_png_atomic

HEAD_FRACTION = 0.4
ALPHA_MIN = 128          # alpha at or above this is figure (anti-aliased halos are not)
PAPER = 240              # composited pixels with every channel >= this are paper, not figure
LINE = 0.5               # Prepared.lines below this is ink
PANEL = 256              # side of each panel in the strip
PROMPTS = ("", "white_hair", "black_hair", "red_hair", "hatsune_miku", "monochrome")
METRICS = ("hair_dL", "mono_chroma", "face_dE")
REGIONS = ("hair", "face")


# --- pure helpers ------------------------------------------------------------------------------

def head_box(alpha: np.ndarray, fraction: float = HEAD_FRACTION) -> tuple[int, int, int, int]:
    """The head-and-shoulders square (x0, y0, x1, y1) of an [H, W] alpha channel (see the module
    docstring); it may extend past the image's left or right edge. Raises ValueError if nothing is
    opaque."""
    ys, xs = np.nonzero(alpha >= ALPHA_MIN)
    if not len(ys):
        raise ValueError("no opaque pixels")
    top, bottom = int(ys.min()), int(ys.max()) + 1
    side = max(1, int(round(fraction * (bottom - top))))
    cols = np.nonzero((alpha[top:top + side] >= ALPHA_MIN).any(0))[0]
    left = int(math.floor((cols.min() + cols.max() + 1 - side) / 2))
    return left, top, left + side, top + side


def crop_on_white(rgb: Image.Image, box: tuple[int, int, int, int]) -> Image.Image:
    """`rgb` cut to `box`, with anything outside the image white."""
    x0, y0, x1, y1 = box
    out = Image.new("RGB", (x1 - x0, y1 - y0), "white")
    out.paste(rgb, (-x0, -y0))
    return out


def box_mask(shape: tuple[int, int], box) -> np.ndarray:
    """[H, W] boolean mask of a box given in fractions (x0, y0, x1, y1) of the image; never empty."""
    h, w = shape
    x0, y0, x1, y1 = box
    c0, r0 = min(int(math.floor(x0 * w)), w - 1), min(int(math.floor(y0 * h)), h - 1)
    c1, r1 = max(int(math.ceil(x1 * w)), c0 + 1), max(int(math.ceil(y1 * h)), r0 + 1)
    mask = np.zeros((h, w), bool)
    mask[r0:r1, c0:c1] = True
    return mask


def lab(image: np.ndarray) -> np.ndarray:
    """uint8 RGB [H, W, 3] -> CIELAB float [H, W, 3]."""
    return rgb2lab(np.asarray(image)[..., :3].astype(np.float64) / 255.0)


def region_mean_l(image: np.ndarray, mask: np.ndarray) -> float:
    """Mean L* of `image` where `mask` is true (NaN for an empty mask)."""
    return float(lab(image)[..., 0][mask].mean()) if mask.any() else math.nan


def region_chroma(image: np.ndarray, mask: np.ndarray) -> float:
    """Mean CIELAB chroma sqrt(a*² + b*²) of `image` where `mask` is true."""
    if not mask.any():
        return math.nan
    ab = lab(image)[mask][:, 1:]
    return float(np.hypot(ab[:, 0], ab[:, 1]).mean())


def region_delta_e(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """Mean per-pixel CIE76 ΔE (Euclidean distance in CIELAB) between `a` and `b` where `mask` is true."""
    if not mask.any():
        return math.nan
    return float(np.linalg.norm(lab(a)[mask] - lab(b)[mask], axis=1).mean())


def figure_mask(rgb: np.ndarray) -> np.ndarray:
    """Pixels of a composited RGB image that are not near-white paper."""
    return (np.asarray(rgb)[..., :3] < PAPER).any(-1)


def measure(outputs: dict[str, np.ndarray], composited: np.ndarray, lines: np.ndarray,
            regions: dict | None) -> dict:
    """The three metrics for one sprite: outputs maps prompt -> uint8 RGB colouring of the crop,
    `lines` the [H, W] line art in [0, 1], `regions` the sprite's boxes (or None)."""
    res = {"mono_chroma": region_chroma(outputs["monochrome"], figure_mask(composited)),
           "hair_dL": math.nan, "face_dE": math.nan}
    if regions:
        paper = lines >= LINE
        hair = box_mask(lines.shape, regions["hair"]) & paper
        face = box_mask(lines.shape, regions["face"]) & paper
        white, black = outputs["white_hair"], outputs["black_hair"]
        res["hair_L_white"], res["hair_L_black"] = region_mean_l(white, hair), region_mean_l(black, hair)
        res["hair_dL"] = res["hair_L_white"] - res["hair_L_black"]
        res["face_dE"] = region_delta_e(white, black, face)
    return res


def nanmean(values) -> float:
    """Mean of the values that are not NaN (NaN if none are)."""
    kept = [v for v in values if not math.isnan(v)]
    return float(np.mean(kept)) if kept else math.nan


def load_regions(path: Path) -> dict:
    """--regions JSON -> {file name: {"hair": box, "face": box}}; UsageError (one line) if malformed."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: not valid JSON ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected an object keyed by sprite file name")
    for name, entry in data.items():
        if not isinstance(entry, dict) or set(REGIONS) - set(entry):
            raise UsageError(f"{path}: {name!r} needs both 'hair' and 'face' boxes")
        for key in REGIONS:
            box = entry[key]
            ok = (isinstance(box, list) and len(box) == 4
                  and all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1 for v in box)
                  and box[0] < box[2] and box[1] < box[3])
            if not ok:
                raise UsageError(f"{path}: {name!r} {key} must be [x0, y0, x1, y1] in 0..1 with x0 < x1, y0 < y1")
    return data


def format_table(per_sprite: dict[str, dict], mean: dict) -> str:
    rows = ["| sprite | hair ΔL* (white − black) | mono chroma | face leakage ΔE |", "|---|---|---|---|"]
    for name, r in list(per_sprite.items()) + [("**mean**", mean)]:
        rows.append(f"| {name} | " + " | ".join("–" if math.isnan(r[k]) else f"{r[k]:.2f}" for k in METRICS) + " |")
    return "\n".join(rows)


# --- the command -------------------------------------------------------------------------------

def _nan_to_none(d: dict) -> dict:
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in d.items()}


def _alpha(path: Path, size: tuple[int, int]) -> np.ndarray:
    """The file's alpha channel, oriented as open_rgb orients the image; all opaque without one."""
    with Image.open(path) as img:
        img = ImageOps.exif_transpose(img)
        if "A" in img.getbands() or "a" in img.getbands() or "transparency" in img.info:
            return np.asarray(img.convert("RGBA").getchannel("A"))
    return np.full(size[::-1], 255, np.uint8)


def run(args) -> int:
    for dst in [args.out] + ([args.json] if args.json else []):
        if any(dst.resolve() == s.resolve() for s in args.sprites):
            raise UsageError(f"{dst}: refusing to overwrite an input image")
        if dst.exists() and not args.overwrite:
            raise UsageError(f"{dst}: already exists (pass --overwrite to replace it)")
    regions = load_regions(args.regions) if args.regions else {}
    if args.size is not None and args.size < 8:
        raise UsageError(f"--size {args.size} is too small")
    crops = []
    for path in args.sprites:
        rgb = open_rgb(path)  # also turns a missing or broken file into one line
        try:
            box = head_box(_alpha(path, rgb.size))
        except ValueError:
            raise UsageError(f"{path}: fully transparent, nothing to crop") from None
        crops.append((path, box, crop_on_white(rgb, box)))
    missing = [p.name for p, _, _ in crops if regions and p.name not in regions]
    if missing:
        print(f"warning: no regions for {', '.join(missing)}: hair/face metrics skipped", file=sys.stderr)

    torch.manual_seed(args.seed)
    colorizer = Colorizer.from_checkpoint(args.checkpoint, device=args.device, size=args.size)
    rows, per_sprite = [], {}
    for path, box, crop in crops:
        item = colorizer.prepare(crop, from_color=True)
        outs = colorizer.colorize_prepared([item] * len(PROMPTS), list(PROMPTS))
        lines = item.lines[0].numpy()
        per_sprite[path.name] = measure({p: np.asarray(o) for p, o in zip(PROMPTS, outs)}, np.asarray(crop),
                                        lines, regions.get(path.name)) | {"crop": list(box)}
        sketch = Image.fromarray((lines * 255 + 0.5).clip(0, 255).astype(np.uint8)).convert("RGB")
        rows.append([im.resize((PANEL, PANEL), Image.LANCZOS) for im in [sketch] + outs])
    mean = {k: nanmean([r[k] for r in per_sprite.values()]) for k in METRICS}

    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_png_atomic(labelled_grid(rows, ["XDoG lines"] + [p or "(no tags)" for p in PROMPTS]), args.out)
    print(format_table(per_sprite, mean))
    if args.json:
        report = {"checkpoint": str(args.checkpoint or "shipped"), "size": colorizer.size, "prompts": list(PROMPTS),
                  "head_fraction": HEAD_FRACTION, "regions": str(args.regions) if args.regions else None,
                  "sprites": {k: _nan_to_none(v) for k, v in per_sprite.items()}, "mean": _nan_to_none(mean)}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(f"wrote {args.out}" + (f" and {args.json}" if args.json else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = cli.parser("textcolor-realart", __doc__)
    p.add_argument("sprites", nargs="+", type=Path, help="character images (transparent background)")
    p.add_argument("--out", required=True, type=Path, help="the labelled strip (PNG)")
    p.add_argument("--checkpoint", type=Path, help="train.py checkpoint, run dir or .safetensors (default: shipped)")
    p.add_argument("--json", type=Path, help="also write the measurements here")
    p.add_argument("--size", type=int, help="working resolution (default: the model's training size)")
    p.add_argument("--regions", type=Path, help="JSON of hair/face boxes per sprite file name")
    p.add_argument("--device", help="cpu, cuda, ... (default: cuda if available)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out / --json")
    args = p.parse_args(argv)
    return cli.run(lambda: run(args), extra=(ValueError,))


if __name__ == "__main__":
    sys.exit(main())
