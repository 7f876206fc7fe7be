"""Precompute a training cache: short-side-resized colour images and their XDoG sketches.

    python -m textcolor.prepare --folder DIR --out CACHE --size 256 [--workers 4]
    python -m textcolor.prepare --table meta.parquet --require-tag white_background --out CACHE

Writes CACHE/images/NNNNNN.png, CACHE/sketches/NNNNNN.png, CACHE/index.csv (image, sketch, tags,
source), CACHE/cache.json (size and XDoG parameters) and CACHE/skipped.csv (source, reason,
message). Images are resized, not cropped, so training still takes random crops, and skips XDoG.
Faulty inputs are skipped and listed; the source folder is never written to.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import multiprocessing
import os
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import torch
from PIL import Image
from tqdm import tqdm

from textcolor import cli
from textcolor.config import XDoGConfig
from textcolor.data import (CACHE_INDEX, CACHE_META, OUTSIDE, DatasetError, find_images, outside_root,
                            read_sidecar, resize_short, summarize_skipped, table_samples)
from textcolor.imageio import MAX_PIXELS, BadImageError, OutputError, open_rgb, save_png_atomic
from textcolor.sketch import add_xdog_args, parse_args, xdog_from_args
from textcolor.xdog import sketch_array

INDEX_COLUMNS = ["image", "sketch", "tags", "source"]
SKIPPED = "skipped.csv"

Job = tuple[int, str, str]              # (number, source path, prompt)
Row = tuple[str, str, str, str]         # INDEX_COLUMNS
Skip = tuple[str, str, str]             # (source, reason, message)


def _parser() -> argparse.ArgumentParser:
    p = cli.parser("textcolor-prepare", __doc__.splitlines()[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--folder", type=Path, help="images (recursive) with optional <stem>.txt tag files")
    src.add_argument("--table", type=Path, help="metadata table: .csv/.tsv, .parquet or .jsonl")
    p.add_argument("--image-root", type=Path, help="table: directory the file column is relative to "
                                                   "(default: the table's directory)")
    p.add_argument("--file-column", default="file")
    p.add_argument("--tags-column", default="tags")
    p.add_argument("--require-tag", action="append", default=[], metavar="TAG",
                   help="keep only rows carrying this tag (repeatable)")
    p.add_argument("--out", type=Path, required=True, help="cache directory (new, empty, or an earlier cache)")
    p.add_argument("--size", type=int, default=256, help="short side in pixels")
    p.add_argument("--min-size-frac", type=float, default=0.5, help="skip images whose short side < size·frac")
    p.add_argument("--workers", type=int, default=1, help="processes")
    add_xdog_args(p)
    return p


def _is_cache(path: Path) -> bool:
    return (path / CACHE_INDEX).is_file() and (path / CACHE_META).is_file()


def _out_problem(out: Path, source_dir: Path, table: Path | None) -> str | None:
    """Why the cache must not go to `out`, or None."""
    o, s = out.resolve(), source_dir.resolve()
    if o == s or s in o.parents or o in s.parents:
        return f"--out {out} overlaps the source folder {source_dir}; choose a directory outside it"
    if table is not None and o in table.resolve().parents:
        return f"--out {out} contains the table {table}; choose a directory outside it"
    if out.exists() and not out.is_dir():
        return f"--out {out} exists and is not a directory"
    if out.is_dir() and any(out.iterdir()) and not _is_cache(out):
        return (f"--out {out} is a non-empty directory but not a textcolor cache "
                f"(no {CACHE_INDEX} + {CACHE_META}); choose a new or empty directory")
    return None


def _jobs(args: argparse.Namespace) -> tuple[list[Job], Path, list[Skip]]:
    """The inputs, the folder they live in, and the inputs refused before any pixel is read
    (outside the dataset root, a tag file that is a FIFO, a device or too large)."""
    skips: list[Skip] = []
    if args.folder is not None:
        if not args.folder.is_dir():
            raise DatasetError(f"{args.folder}: not a directory")
        jobs = []
        for p in find_images(args.folder):
            if outside_root(p, args.folder):
                skips.append((str(p), OUTSIDE, f"{p}: links outside {args.folder}"))
                continue
            try:
                jobs.append((len(jobs), str(p), read_sidecar(p)))
            except BadImageError as e:
                skips.append((str(p), e.reason, str(e)))
        return jobs, args.folder, skips
    outside: list[tuple[str, str]] = []
    paths, prompts = table_samples(args.table, args.file_column, args.tags_column,
                                   args.image_root, args.require_tag, outside)
    root = args.image_root or args.table.parent
    skips += [(p, reason, f"{p}: {reason} {root}") for p, reason in outside]
    return [(i, str(p), t) for i, (p, t) in enumerate(zip(paths, prompts))], root, skips


def _prepare_one(job: Job, out: Path, size: int, min_size_frac: float,
                 xdog: XDoGConfig) -> tuple[Row | None, Skip | None]:
    number, src, prompt = job
    try:
        img = open_rgb(src, MAX_PIXELS)
    except BadImageError as e:
        return None, (src, e.reason, str(e))
    if min(img.size) < size * min_size_frac:
        message = f"{src}: {img.width}x{img.height} is smaller than {size}·{min_size_frac:g}"
        return None, (src, "too small", message)
    img = resize_short(img, size)
    sketch = Image.fromarray(sketch_array(np.array(img), xdog))  # a copy: torch warns on read-only arrays
    name = f"{number:06d}.png"
    save_png_atomic(img, out / "images" / name)          # OutputError ends the whole run
    save_png_atomic(sketch, out / "sketches" / name)
    return (f"images/{name}", f"sketches/{name}", prompt, src), None


def _single_thread() -> None:
    torch.set_num_threads(1)  # the pool provides the parallelism; avoid N×cores threads


def _run(jobs: list[Job], workers: int, work) -> Iterator[tuple[Row | None, Skip | None]]:
    if workers <= 1:
        yield from map(work, jobs)
        return
    with multiprocessing.Pool(workers, initializer=_single_thread) as pool:
        yield from pool.imap(work, jobs, chunksize=8)


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        df.to_csv(tmp, index=False)
        os.replace(tmp, path)
    except OSError as e:
        raise OutputError(f"{path}: cannot write ({e.strerror or e})") from None


def _start_cache(out: Path, size: int, xdog: XDoGConfig) -> None:
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "sketches").mkdir(exist_ok=True)
    # Index and meta from the start mark the directory as ours, so an interrupted run can be repeated.
    _write_csv(pd.DataFrame(columns=INDEX_COLUMNS), out / CACHE_INDEX)
    (out / CACHE_META).write_text(json.dumps({"size": size, "xdog": dataclasses.asdict(xdog)}, indent=1))


def prepare(args: argparse.Namespace) -> int:
    jobs, source_dir, skips = _jobs(args)
    problem = _out_problem(args.out, source_dir, args.table)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    xdog = xdog_from_args(args)
    try:
        _start_cache(args.out, args.size, xdog)
    except OSError as e:
        print(f"error: cannot create the cache in {args.out} ({e.strerror or e})", file=sys.stderr)
        return 2
    work = functools.partial(_prepare_one, out=args.out, size=args.size,
                             min_size_frac=args.min_size_frac, xdog=xdog)
    rows: list[Row] = []
    for row, skip in tqdm(_run(jobs, args.workers, work), total=len(jobs), desc="preparing",
                          unit="img", disable=None):
        if row:
            rows.append(row)
        else:
            skips.append(skip)
    _write_csv(pd.DataFrame(skips, columns=["source", "reason", "message"]), args.out / SKIPPED)
    _write_csv(pd.DataFrame(rows, columns=INDEX_COLUMNS), args.out / CACHE_INDEX)
    summary = summarize_skipped([(s[0], s[1]) for s in skips], len(rows) + len(skips), str(args.out / SKIPPED))
    print(f"prepared {len(rows)} images into {args.out}; {summary}")
    return 0 if rows else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(_parser(), argv)
    if isinstance(args, int):
        return args
    if args.size < 1 or args.workers < 1:
        print("error: --size and --workers must be ≥ 1", file=sys.stderr)
        return 2
    return cli.run(lambda: prepare(args))


if __name__ == "__main__":
    sys.exit(main())
