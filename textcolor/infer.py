"""Colour sketches from tags (`infer.py` and `textcolor-infer`).

    python infer.py --sketch s.png --tags "hatsune_miku"                   # -> s.colored.png
    python infer.py --sketch s.png --tags "hibiki_(kantai_collection)" --tags "akatsuki_(kantai_collection)" --grid strip.png
    python infer.py --sketch drawings/ --tags "red_hair, blue_eyes" --out coloured/
    python infer.py --sketch photo.png --from-color --tags monochrome --strength 1.5

Outputs never replace an input or an existing file (pass --overwrite for existing outputs).
"""
from __future__ import annotations

import argparse
import hashlib
import re
import sys
from pathlib import Path

from textcolor import cli
from textcolor.cli import UsageError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = cli.parser("textcolor-infer", __doc__)
    p.add_argument("--sketch", required=True, type=Path, help="a sketch image or a folder of them")
    p.add_argument("--tags", action="append", help="a prompt (comma-separated tags); repeat for several")
    p.add_argument("--out", type=Path, help="output file (one input, one prompt) or directory")
    p.add_argument("--grid", type=Path, help="also write one labelled strip: sketch, then one panel per prompt")
    p.add_argument("--from-color", action="store_true", help="inputs are colour images: extract the sketch with XDoG")
    p.add_argument("--literal", action="store_true",
                   help="give phrases to the text encoder as written, without reading colour names and "
                        "character names as our tags (\"crimson hair\" -> red_hair, textcolor.colorwords; "
                        "\"Reimu Hakurei\" -> hakurei_reimu, textcolor.charnames)")
    p.add_argument("--strength", type=float, default=1.0, help="tag strength: 0 untagged, 1 normal, >1 exaggerated")
    p.add_argument("--size", type=int, help="working resolution (default: the model's training size)")
    p.add_argument("--checkpoint", type=Path, help="train.py checkpoint, run dir or .safetensors (default: shipped model)")
    p.add_argument("--device", help="cpu, cuda, cuda:1, mps (default: cuda if available)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace existing output files (never inputs)")
    return p.parse_args(argv)


# Our own outputs in a folder of inputs: colouring them again would only multiply files.
OWN_OUTPUTS = ("*.colored.*", "*.mask.png")


def _own_output(name: str) -> bool:
    lower = name.lower()
    return ".colored." in lower or lower.endswith(".mask.png")


def find_inputs(path: Path) -> tuple[list[Path], int]:
    """The images to colour under `path` and how many of our own outputs were left out. A
    `*.sketch.png` (textcolor.sketch's output) is a sketch, so it is an input."""
    from textcolor.imageio import IMAGE_EXTS
    if path.is_dir():
        found, own = [], 0
        for p in sorted(path.rglob("*")):
            # not is_file(): a FIFO or a broken link is reported as a failed input, not passed over
            if p.name.startswith(".") or p.suffix.lower() not in IMAGE_EXTS or p.is_dir():
                continue
            if _own_output(p.name):
                own += 1
            else:
                found.append(p)
        if not found:
            skipped = f" (skipped {own} of our own outputs: {', '.join(OWN_OUTPUTS)})" if own else ""
            raise UsageError(f"{path}: no images in this folder{skipped}")
        return found, own
    if not path.exists():
        raise UsageError(f"{path}: no such file or folder")
    return [path], 0


def slug(prompt: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", prompt).strip("_")[:60] or "untagged"


def input_stems(inputs: list[Path]) -> dict[Path, str]:
    """Each input's name stem for its outputs. Inputs of one folder that share a stem (a.png,
    a.jpg, a.webp) keep their extension in it (a_png, a_jpg, a_webp), else one output would
    replace the others; a remaining clash (a.png, a.PNG) gets a hash of the file name."""
    groups: dict[tuple[Path, str], list[Path]] = {}
    for src in inputs:
        groups.setdefault((src.parent, src.stem.lower()), []).append(src)
    stems = {}
    for group in groups.values():
        for src in group:
            stems[src] = src.stem if len(group) == 1 else f"{src.stem}_{src.suffix.lstrip('.')}"
        if len(group) > 1 and len({stems[s].lower() for s in group}) < len(group):
            for src in group:
                stems[src] = f"{src.stem}_{hashlib.sha1(src.name.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"
    return stems


def plan_outputs(inputs: list[Path], prompts: list[str], out: Path | None, root: Path) -> dict:
    """(input, prompt) -> output path, distinct for distinct (input, prompt) pairs."""
    single = len(inputs) == 1 and len(prompts) == 1
    as_file = out is not None and single and out.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp")
    plan = {}
    # distinct prompts whose slugs coincide ("", "红发" -> "untagged") get a hash suffix, else
    # the second output would silently replace the first
    slugs = {p: slug(p) for p in dict.fromkeys(prompts)}
    clash = {s for s in slugs.values() if list(slugs.values()).count(s) > 1}
    names = {p: f"{s}_{hashlib.sha1(p.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}" if s in clash else s
             for p, s in slugs.items()}
    stems = input_stems(inputs)
    for src in inputs:
        for prompt in prompts:
            stem = stems[src]
            name = f"{stem}.colored.png" if len(prompts) == 1 else f"{stem}.colored.{names[prompt]}.png"
            if as_file:
                dst = out
            elif out is None:
                dst = src.with_name(name)
            else:
                rel = src.parent.relative_to(root) if root.is_dir() else Path()
                dst = out / rel / name
            plan[src, prompt] = dst
    seen: dict[Path, Path] = {}
    for (src, _), dst in plan.items():
        other = seen.setdefault(dst.resolve(), src)
        if other != src:
            raise UsageError(f"{src} and {other} would both be written to {dst}; rename one of them")
    return plan


def check_outputs(paths: list[Path], inputs: list[Path], overwrite: bool, grid: Path | None = None) -> None:
    if grid is not None and grid.resolve() in {p.resolve() for p in paths}:
        raise UsageError(f"--grid {grid} is also a colorization's output; choose another name")
    paths = paths + ([grid] if grid is not None else [])
    resolved_inputs = {p.resolve() for p in inputs}
    for dst in paths:
        if dst.resolve() in resolved_inputs:
            raise UsageError(f"{dst}: refusing to overwrite an input image")
        if dst.exists() and not overwrite:
            raise UsageError(f"{dst}: already exists (pass --overwrite to replace it)")


def run(args: argparse.Namespace) -> int:
    # every check of the arguments and the file system before torch is imported (seconds)
    if args.size is not None and args.size < 8:
        raise UsageError(f"--size {args.size} is too small")
    prompts = args.tags or [""]
    inputs, own = find_inputs(args.sketch)
    plan = plan_outputs(inputs, prompts, args.out, args.sketch)
    check_outputs(list(plan.values()), inputs, args.overwrite, args.grid)

    import torch
    from tqdm import tqdm

    from textcolor.colorize import BudgetError, Colorizer
    from textcolor.imageio import BadImageError, save_png_atomic

    torch.manual_seed(args.seed)
    colorizer = Colorizer.from_checkpoint(args.checkpoint, device=args.device, size=args.size)
    colorizer.ground_words = not args.literal
    grid_rows, failed = [], 0
    for src in tqdm(inputs, disable=len(inputs) == 1, desc="colouring", unit="img"):
        try:
            item = colorizer.prepare(src, from_color=args.from_color)
            images = colorizer.colorize_prepared([item] * len(prompts), prompts, args.strength)
        except (BadImageError, BudgetError, MemoryError) as e:
            if len(inputs) == 1:
                raise
            # one broken input of a folder: the others are still coloured, the exit status says it
            reason = str(e) if not isinstance(e, MemoryError) else f"{src}: out of memory"
            tqdm.write(f"skipped: {reason}", file=sys.stderr)
            failed += 1
            continue
        for prompt, img in zip(prompts, images):
            plan[src, prompt].parent.mkdir(parents=True, exist_ok=True)
            save_png_atomic(img, plan[src, prompt])
        if args.grid:
            sketch = ((item.sketch[0].clamp(-1, 1) + 1) * 127.5).byte().numpy()
            from PIL import Image
            grid_rows.append([Image.fromarray(sketch).convert("RGB").resize(images[0].size)] + images)
    if args.grid and grid_rows:
        from textcolor.grid import labelled_grid
        save_png_atomic(labelled_grid(grid_rows, ["sketch"] + [p or "(no tags)" for p in prompts]), args.grid)
    written = (len(inputs) - failed) * len(prompts)
    where = plan[inputs[0], prompts[0]] if written == 1 else (args.out or "beside the inputs")
    print(f"wrote {written} image(s) to {where}" + (f"; {failed} input(s) skipped" if failed else "")
          + (f"; left out {own} of our own outputs ({', '.join(OWN_OUTPUTS)})" if own else ""))
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)  # before torch is imported: a wrong argument answers at once
    from textcolor.memory import keep_freed_memory
    keep_freed_memory()
    # ValueError: e.g. --size not a multiple of the model's 2**depth
    return cli.run(lambda: run(args), extra=(ValueError,),
                   out_of_memory="out of memory; pass a smaller --size or a smaller image")


if __name__ == "__main__":
    sys.exit(main())
