"""The synthetic data set written to a folder: PNG, mask and tag file per sample plus metadata.csv,
the layout `data.source=folder` (and any other tool) reads.

    python -m textcolor.synth --out DIR --n N --seed S --size PX [--mono-frac F]
"""
from __future__ import annotations

import csv
import re
import sys
from pathlib import Path
from typing import Callable

from PIL import Image
from tqdm import tqdm

from textcolor import cli
from textcolor.synth import render

METADATA = "metadata.csv"
METADATA_COLUMNS = ["file", "character", "tags", "hair_color", "eye_color", "monochrome"]
_OWN_FILE = re.compile(r"^\d{5,}(\.png|\.txt|\.mask\.png)$")


def _is_own_metadata(path: Path) -> bool:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return next(csv.reader(f), None) == METADATA_COLUMNS
    except (OSError, ValueError, csv.Error):
        return False


def _foreign_files(out: Path) -> list[str]:
    """Files in out this tool did not write: all of them, unless our metadata.csv marks the folder
    as synth output, in which case those not named like ours."""
    names = sorted(p.name for p in out.iterdir())
    if not _is_own_metadata(out / METADATA):
        return names
    return [n for n in names if n != METADATA and not _OWN_FILE.match(n)]


def _previous_stems(out: Path) -> set[str]:
    """Stems an earlier run recorded in out/metadata.csv."""
    try:
        with open(out / METADATA, newline="", encoding="utf-8") as f:
            stems = {Path(row.get("file") or "").stem for row in csv.DictReader(f)}
    except (OSError, ValueError, csv.Error):
        return set()
    return {s for s in stems if s.isdigit()}


def write_folder(out: Path, n: int, seed: int, size: int, mono_frac: float,
                 progress: Callable | None = None) -> None:
    """Render n samples into out; files an earlier, longer run recorded there are removed so
    the folder never mixes two data sets."""
    out.mkdir(parents=True, exist_ok=True)
    stale = _previous_stems(out) - {f"{i:05d}" for i in range(n)}
    for stem in stale:
        for suffix in (".png", ".txt", ".mask.png"):
            (out / f"{stem}{suffix}").unlink(missing_ok=True)
    indices = range(n) if progress is None else progress(range(n))
    # metadata.csv is written row by row: an interrupted run still marks the folder as its own
    with open(out / METADATA, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(METADATA_COLUMNS)
        for i in indices:
            s = render(seed + i, size, mono_frac=mono_frac)
            stem = f"{i:05d}"
            Image.fromarray(s.image).save(out / f"{stem}.png")
            Image.fromarray(s.mask, "L").save(out / f"{stem}.mask.png")
            (out / f"{stem}.txt").write_text(", ".join(s.tags) + "\n", encoding="utf-8")
            w.writerow([f"{stem}.png", s.character, " ".join(s.tags), s.hair_color, s.eye_color,
                        int(s.monochrome)])


def main(argv: list[str] | None = None) -> int:
    ap = cli.parser("textcolor-synth", "Render the procedural tagged character data set to a folder.")
    ap.add_argument("--out", required=True, type=Path, help="output folder (new, empty, or an earlier synth output)")
    ap.add_argument("--n", type=int, default=1000, help="number of images")
    ap.add_argument("--seed", type=int, default=0, help="render seed of the first image")
    ap.add_argument("--size", type=int, default=256, help="image side in pixels")
    ap.add_argument("--mono-frac", type=float, default=0.1, help="fraction rendered monochrome")
    args = ap.parse_args(argv)
    if args.n < 0 or args.size < 16 or not 0.0 <= args.mono_frac <= 1.0:
        print("error: need --n ≥ 0, --size ≥ 16 and 0 ≤ --mono-frac ≤ 1", file=sys.stderr)
        return 2
    if args.out.exists() and not args.out.is_dir():
        print(f"error: {args.out} exists and is not a folder", file=sys.stderr)
        return 2
    if args.out.is_dir():
        foreign = _foreign_files(args.out)
        if foreign:
            print(f"error: {args.out} holds files this tool did not write (e.g. {foreign[0]}); "
                  "refusing to write there - choose a new or empty folder", file=sys.stderr)
            return 2
    def body() -> int:
        write_folder(args.out, args.n, args.seed, args.size, args.mono_frac,
                     lambda it: tqdm(it, desc="render", unit="img"))
        return 0
    # an OSError names its own file: the roster that could not be read, or the image not written
    return cli.run(body)


if __name__ == "__main__":
    sys.exit(main())
