"""Write the XDoG sketch of images, each at its own size.

    python -m textcolor.sketch photo.png drawings/ --out sketches/ [--sigma 0.4 --k 4.5 --p 19 --eps 0.01 --phi 1e9]

Each input becomes DIR/<stem>.sketch.png (directories: the images directly inside them).
Transparent areas count as white paper. Exit status: 0 all written, 1 some inputs failed (one
line each on stderr), 2 usage errors.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from textcolor import cli
from textcolor.config import XDoGConfig
from textcolor.imageio import BadImageError, OutputError, is_image_name, open_rgb, save_png_atomic
from textcolor.xdog import sketch_array

SUFFIX = ".sketch.png"


def add_xdog_args(parser: argparse.ArgumentParser) -> None:
    d = XDoGConfig()
    g = parser.add_argument_group("XDoG (defaults: seed 000's values)")
    g.add_argument("--sigma", type=float, default=d.sigma, help="narrow Gaussian std, pixels")
    g.add_argument("--k", type=float, default=d.k, help="wide/narrow std ratio")
    g.add_argument("--p", type=float, default=d.p, help="sharpening strength")
    g.add_argument("--eps", type=float, default=d.eps, help="threshold")
    g.add_argument("--phi", type=float, default=d.phi, help="tanh slope below the threshold")


def xdog_from_args(args: argparse.Namespace) -> XDoGConfig:
    return XDoGConfig(sigma=args.sigma, k=args.k, p=args.p, eps=args.eps, phi=args.phi)


# Largest blur (k·sigma, pixels) the XDoG options may ask for: the kernel has 8·k·sigma taps, and
# --sigma 1e6 would otherwise run for hours on a 20-pixel image (NaN raised ValueError deep inside).
MAX_BLUR = 100.0


def xdog_problem(args: argparse.Namespace) -> str | None:
    """Why the XDoG options cannot be used, or None."""
    for name in ("sigma", "k", "p", "eps", "phi"):
        if not math.isfinite(getattr(args, name)):
            return f"--{name} must be a finite number, got {getattr(args, name)}"
    if args.sigma <= 0 or args.k <= 0:
        return "--sigma and --k must be > 0"
    if args.sigma * max(args.k, 1.0) > MAX_BLUR:
        return f"--sigma × --k must be at most {MAX_BLUR:g} pixels"
    if abs(args.p) > 1e4:  # (1+p)·G − p·G overflows float32 into inf − inf = NaN
        return "--p must be between -10000 and 10000"
    return None


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace | int:
    """argparse, but returning its exit status instead of raising SystemExit (for main(argv));
    invalid XDoG options are one line on stderr and status 2, as argparse's own errors."""
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 2
    problem = xdog_problem(args) if hasattr(args, "sigma") else None
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    return args


def _expand(inputs: list[Path]) -> list[Path]:
    files = []
    for p in inputs:
        if p.is_dir():
            files += sorted(f for f in p.iterdir() if f.is_file() and is_image_name(f.name))
        else:
            files.append(p)
    return files


def _sketch_one(src: Path, dst: Path, cfg: XDoGConfig) -> None:
    save_png_atomic(Image.fromarray(sketch_array(np.array(open_rgb(src)), cfg)), dst)


def _refusal(src: Path, dst: Path, inputs: set[Path], written: dict[Path, Path],
             overwrite: bool) -> str | None:
    """Why dst must not be written for src, or None."""
    key = dst.resolve()
    if key in inputs:
        return f"{src}: output {dst} would overwrite an input; choose another --out"
    if key in written:
        return f"{src}: output {dst} was already written for {written[key]} (same name stem)"
    if dst.exists() and not overwrite:
        return f"{src}: {dst} exists (use --overwrite to replace it)"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = cli.parser("textcolor-sketch", __doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="*", type=Path, metavar="IMAGE_OR_DIR")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--overwrite", action="store_true", help="replace existing sketches")
    add_xdog_args(parser)
    args = parse_args(parser, argv)
    if isinstance(args, int):
        return args
    if not args.inputs:
        print("error: no inputs given", file=sys.stderr)
        return 2
    missing = [p for p in args.inputs if not p.exists()]
    if missing:
        print(f"error: no such file or directory: {missing[0]}", file=sys.stderr)
        return 2
    files = _expand(args.inputs)
    if not files:
        print(f"error: no images found in {', '.join(map(str, args.inputs))}", file=sys.stderr)
        return 2
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"error: cannot create {args.out} ({e.strerror or e})", file=sys.stderr)
        return 2

    cfg = xdog_from_args(args)
    inputs = {f.resolve() for f in files}
    written: dict[Path, Path] = {}
    failed = 0
    for src in tqdm(files, desc="sketching", unit="img", disable=None):
        dst = args.out / (src.stem + SUFFIX)
        problem = _refusal(src, dst, inputs, written, args.overwrite)
        if problem is None:
            try:
                _sketch_one(src, dst, cfg)
                written[dst.resolve()] = src
            except (BadImageError, OutputError) as e:
                problem = str(e)
        if problem:
            failed += 1
            tqdm.write(problem, file=sys.stderr)
    print(f"wrote {len(written)} sketch(es) to {args.out}" + (f"; {failed} failed" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
