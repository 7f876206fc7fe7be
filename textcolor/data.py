"""Training data from a folder, a metadata table or a prepared cache; all give the same samples.

Each sample is a dict:
    sketch  float32 [3, H, W] in [-1, 1]   XDoG of the cropped colour image, grey ×3
    image   float32 [3, H, W] in [-1, 1]
    tags    str                             the prompt: tags joined with ", "
    bad     str                             "" or the path of a file that failed to decode and was
                                            replaced by the next good one (for the training log)

Indexing with an int gives the validation view (centre crop, no flip); with (index, aug_seed) a
training view (random crop and flip drawn from numpy's generator seeded with aug_seed, so every
augmentation is reproducible). Constructors read only file headers, and pixels are decoded in
__getitem__, so memory stays flat in the number of images.
"""
from __future__ import annotations

import dataclasses
import json
import os
import stat
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset
from tqdm import tqdm

from textcolor.config import Config, XDoGConfig
from textcolor.sketchstyle import LINE_STYLES, area_resize, draw_size, make_sketch
from textcolor.synth import render, sample_rng
from textcolor.imageio import MAX_PIXELS, BadImageError, is_image_name, open_rgb, probe
from textcolor.tags import parse_tag_file, tag_text, tags_to_prompt
from textcolor.vocab import LINE
from textcolor.xdog import xdog_rgb

CACHE_INDEX = "index.csv"
CACHE_META = "cache.json"

Item = int | tuple[int, int]


class DatasetError(ValueError):
    """A dataset that cannot be built (missing table column, no usable images ...); one line."""


# ---------------------------------------------------------------- tags

def _tag_list(value: Any) -> list[str]:
    """A table cell → tags: a string, a list (Parquet list columns) or missing."""
    if isinstance(value, str):
        return parse_tag_file(value)
    if isinstance(value, (list, tuple, np.ndarray)):
        return parse_tag_file(", ".join(map(str, value)))
    return []


# A tag file is a few hundred bytes; a cap keeps a sidecar linked to /dev/zero or a huge file from
# being read without bound.
MAX_TAG_FILE_BYTES = 1 << 20


def read_tag_file(path: str | Path, limit: int = MAX_TAG_FILE_BYTES) -> str | None:
    """A tag file's text; None when there is none. A FIFO, device or directory (opened without
    blocking, so a FIFO with no writer cannot hang the loader) or a file over `limit` bytes raises
    BadImageError, so the sample is skipped and counted like an undecodable image."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise BadImageError(f"{path}: cannot read tag file ({e.strerror or e})", "unreadable tag file") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise BadImageError(f"{path}: tag file is not a regular file", "tag file not a regular file")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise BadImageError(f"{path}: tag file over {limit:,} bytes", "tag file too large")
    return data.decode("utf-8", errors="replace")


def sidecar_path(image_path: str | Path) -> Path:
    return Path(image_path).with_suffix(".txt")


def read_sidecar(image_path: str | Path) -> str:
    """The prompt from the image's `<stem>.txt` beside it; "" when there is none. BadImageError
    when the tag file is not a regular file or too large (read_tag_file)."""
    text = read_tag_file(sidecar_path(image_path))
    return tags_to_prompt(parse_tag_file(text)) if text else ""


def sidecar_problem(image_path: str | Path, limit: int = MAX_TAG_FILE_BYTES) -> str | None:
    """Header-only check of the image's tag file (stat, nothing read): None if absent or usable."""
    try:
        st = os.stat(sidecar_path(image_path))
    except FileNotFoundError:
        return None
    except OSError:
        return "unreadable tag file"
    if not stat.S_ISREG(st.st_mode):
        return "tag file not a regular file"
    return "tag file too large" if st.st_size > limit else None


def outside_root(path: str | Path, root: str | Path) -> bool:
    """Whether `path` (symlinks resolved) lies outside `root`: a table row `../x.png` or
    `/etc/shadow`, or a link out of the dataset folder."""
    try:
        return not Path(path).resolve().is_relative_to(Path(root).resolve())
    except (OSError, RuntimeError):  # a symlink loop
        return True


# ---------------------------------------------------------------- preprocessing

def resize_short(img: Image.Image, size: int) -> Image.Image:
    """Scale so the short side is `size` (Lanczos, antialiased when shrinking)."""
    w, h = img.size
    scale = size / min(w, h)
    new = (max(size, round(w * scale)), max(size, round(h * scale)))
    if new == (w, h):
        return img
    # reducing_gap=3: box-reduce first, then Lanczos; indistinguishable and much faster on big scans
    return img.resize(new, Image.Resampling.LANCZOS, reducing_gap=3.0)


def crop_box(width: int, height: int, size: int,
             rng: np.random.Generator | None = None) -> tuple[int, int, int, int]:
    """A size×size box: uniformly random when rng is given, centred otherwise."""
    if rng is None:
        left, top = (width - size) // 2, (height - size) // 2
    else:
        left, top = int(rng.integers(0, width - size + 1)), int(rng.integers(0, height - size + 1))
    return left, top, left + size, top + size


def crop(img: Image.Image, size: int, rng: np.random.Generator | None = None) -> Image.Image:
    return img.crop(crop_box(*img.size, size, rng))


def augment(images: Sequence[Image.Image], size: int, rng: np.random.Generator | None,
            flip: bool = True) -> list[Image.Image]:
    """Crop same-sized images with one box and mirror all or none (probability 1/2, when flip).
    rng None: centre crop, no flip."""
    box = crop_box(*images[0].size, size, rng)
    out = [im.crop(box) for im in images]
    if rng is not None and flip and rng.random() < 0.5:
        out = [im.transpose(Image.Transpose.FLIP_LEFT_RIGHT) for im in out]
    return out


def _to_unit(img: Image.Image) -> torch.Tensor:
    """uint8 PIL → float32 [C, H, W] in [0, 1]."""
    a = np.array(img, dtype=np.uint8)  # a copy: torch wants a writable array
    if a.ndim == 2:
        a = a[..., None]
    return torch.from_numpy(a).permute(2, 0, 1).float().div_(255.0)


def _sample(image01: torch.Tensor, sketch01: torch.Tensor, tags: str, bad: str) -> dict:
    return {"sketch": (sketch01 * 2 - 1).expand(3, -1, -1).contiguous(),
            "image": image01 * 2 - 1, "tags": tags, "bad": bad}


def sample_from_rgb(img: Image.Image, tags: str, xdog: XDoGConfig | None = None, bad: str = "") -> dict:
    """A cropped RGB image → the sample dict, its sketch computed with textcolor.xdog."""
    image01 = _to_unit(img)
    return _sample(image01, xdog_rgb(image01[None], xdog)[0], tags, bad)


# ---------------------------------------------------------------- sources

def find_images(root: str | Path) -> list[Path]:
    """Image files under root, recursively, in sorted order; hidden and derived files
    (`*.mask.png`, `*.sketch.png`) left out."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [Path(dirpath) / f for f in sorted(filenames) if is_image_name(f)]
    return found


_READERS = {
    ".csv": lambda p: pd.read_csv(p, dtype=str, keep_default_na=False),  # str: "00012" stays a name
    ".tsv": lambda p: pd.read_csv(p, sep="\t", dtype=str, keep_default_na=False),
    ".parquet": pd.read_parquet,
    ".jsonl": lambda p: pd.read_json(p, lines=True, dtype=False),
    ".json": lambda p: pd.read_json(p, lines=True, dtype=False),
}


def read_table(path: str | Path) -> pd.DataFrame:
    """CSV/TSV, Parquet or JSON Lines, chosen by extension; DatasetError with one line if unreadable."""
    path = Path(path)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise DatasetError(f"{path}: unknown table format (use {', '.join(sorted(_READERS))})")
    if not path.is_file():
        raise DatasetError(f"{path}: table not found")
    try:
        return reader(path)
    except Exception as e:  # pandas/pyarrow parse errors come in many classes
        first = str(e).splitlines()[0] if str(e) else ""
        raise DatasetError(f"{path}: cannot read table ({type(e).__name__}: {first})") from None


def table_samples(table: str | Path, file_column: str = "file", tags_column: str = "tags",
                  image_root: str | Path | None = None, require_tags: Sequence[str] = (),
                  skipped: list[tuple[str, str]] | None = None) -> tuple[list[Path], list[str]]:
    """(image paths, prompts) of the rows carrying every tag in require_tags. Rows whose file lies
    outside the image root (`../x.png`, `/etc/shadow`, a symlink out) are left out and appended to
    `skipped` as (path, "outside the dataset root")."""
    table = Path(table)
    df = read_table(table)
    missing = [c for c in (file_column, tags_column) if c not in df.columns]
    if missing:
        raise DatasetError(f"{table}: no column {', '.join(map(repr, missing))}; "
                           f"available columns: {', '.join(map(str, df.columns))}")
    root = Path(image_root) if image_root else table.parent
    # compared as tag_text, so `white_background` matches `White Background` as the encoder would
    required = {tag_text(t) for t in require_tags}
    paths, prompts = [], []
    for file, cell in zip(df[file_column], df[tags_column]):
        tags = _tag_list(cell)
        if required.issubset(map(tag_text, tags)) and isinstance(file, str) and file:
            if outside_root(root / file, root):
                if skipped is not None:
                    skipped.append((str(root / file), OUTSIDE))
                continue
            paths.append(root / file)
            prompts.append(tags_to_prompt(tags))
    return paths, prompts


OUTSIDE = "outside the dataset root"


def check_image(path: str | Path, size: int, min_size_frac: float,
                max_pixels: int = MAX_PIXELS) -> str | None:
    """Header-only check: None if usable, else a short reason."""
    try:
        w, h = probe(path, max_pixels)
    except BadImageError as e:
        return e.reason
    return "too small" if min(w, h) < size * min_size_frac else None


def summarize_skipped(skipped: Sequence[tuple[str, str]], total: int | None = None,
                      see: str | None = None) -> str:
    """One line for the log: "skipped 3 of 120 files: 1 empty, 1 not an image, 1 too small (see X)"."""
    if not skipped:
        return "skipped no files" if total is None else f"skipped 0 of {total} files"
    counts = Counter(reason for _, reason in skipped)
    of = f" of {total}" if total is not None else ""
    parts = ", ".join(f"{n} {reason}" for reason, n in counts.most_common())
    hint = f"see {see}" if see else f"e.g. {skipped[0][0]}: {skipped[0][1]}"
    return f"skipped {len(skipped)}{of} files: {parts} ({hint})"


def close_loader(batches: Any) -> None:
    """Stop a DataLoader iterator's worker processes now. On an error the iterator stays
    referenced by the traceback, and its workers (which ignore SIGINT/SIGTERM so a signal reaches
    the main process only) would keep the interpreter from exiting."""
    shutdown = getattr(batches, "_shutdown_workers", None)
    if shutdown is not None:
        shutdown()


# ---------------------------------------------------------------- datasets

def _unpack(item: Item, n: int, train: bool) -> tuple[int, int | None]:
    """(index in range, augmentation seed or None for the deterministic validation view)."""
    index, seed = item if isinstance(item, tuple) else (item, None)
    index = int(index)
    if not -n <= index < n:
        raise IndexError(f"index {index} out of range for a dataset of {n}")
    return index % n, int(seed) if train and seed is not None else None


class _LazyDataset(Dataset):
    """Shared indexing: decode on demand, and replace an undecodable file by the next good one."""

    def __init__(self, size: int, train: bool, flip: bool, xdog: XDoGConfig | None):
        self.size, self.train, self.flip, self.xdog = size, train, flip, xdog
        self.skipped: list[tuple[str, str]] = []

    def _path(self, j: int) -> str:
        raise NotImplementedError

    def _load(self, j: int, rng: np.random.Generator | None, bad: str) -> dict:
        """The sample for entry j; raises BadImageError when its files cannot be decoded."""
        raise NotImplementedError

    def __getitem__(self, item: Item) -> dict:
        n = len(self)
        index, seed = _unpack(item, n, self.train)
        for offset in range(n):
            # a fresh generator per attempt: a substitute's augmentation must not depend on how
            # far the failed attempt got
            rng = np.random.default_rng(seed) if seed is not None else None
            try:
                return self._load((index + offset) % n, rng, self._path(index) if offset else "")
            except BadImageError:
                continue
        raise DatasetError(f"none of the {n} images could be decoded")


class _FileDataset(_LazyDataset):
    """Colour images decoded from files; the sketch is computed after cropping."""

    def __init__(self, paths: Sequence[Path], size: int, train: bool, flip: bool,
                 xdog: XDoGConfig | None, min_size_frac: float, what: str,
                 skipped: Sequence[tuple[str, str]] = ()):
        super().__init__(size, train, flip, xdog)
        self.skipped = list(skipped)   # refused before the scan (a table's rows outside its root)
        self.total = len(paths) + len(self.skipped)
        self.min_size_frac = min_size_frac
        keep = []
        progress = tqdm(paths, desc=f"scanning {what}", unit="file", disable=None, leave=False)
        for i, path in enumerate(progress):
            reason = self._problem(path)
            if reason is None:
                keep.append(i)
            else:
                self.skipped.append((str(path), reason))
        if not keep:
            raise DatasetError(f"{what}: no usable images ({summarize_skipped(self.skipped, self.total)})")
        self.kept = np.array(keep, dtype=np.int64)
        # One numpy array instead of a list of str: DataLoader workers fork, and touching the
        # refcounts of millions of small objects would copy the pages into every worker.
        self.paths = np.array([str(paths[i]) for i in keep])

    def __len__(self) -> int:
        return len(self.paths)

    def _problem(self, path: Path) -> str | None:
        """Header-only check of one file: None if usable, else a short reason for the count."""
        return check_image(path, self.size, self.min_size_frac)

    def _path(self, j: int) -> str:
        return str(self.paths[j])

    def _tags(self, j: int) -> str:
        raise NotImplementedError

    def _load(self, j: int, rng: np.random.Generator | None, bad: str) -> dict:
        [img] = augment([resize_short(open_rgb(self._path(j)), self.size)], self.size, rng, self.flip)
        return sample_from_rgb(img, self._tags(j), self.xdog, bad)


class FolderDataset(_FileDataset):
    """Images found recursively under root; tags from `<stem>.txt` beside each image (optional)."""

    def __init__(self, root: str | Path, size: int, train: bool = True, flip: bool = True,
                 xdog: XDoGConfig | None = None, min_size_frac: float = 0.5):
        root = Path(root)
        if not root.is_dir():
            raise DatasetError(f"{root}: not a directory")
        self.root = root
        super().__init__(find_images(root), size, train, flip, xdog, min_size_frac, str(root))

    def _problem(self, path: Path) -> str | None:
        if outside_root(path, self.root):  # a symlink out of the folder
            return OUTSIDE
        return super()._problem(path) or sidecar_problem(path)

    def _tags(self, j: int) -> str:
        return read_sidecar(self._path(j))


class TableDataset(_FileDataset):
    """Rows of a metadata table (CSV/TSV, Parquet, JSON Lines): an image path column relative to
    image_root (default: the table's directory) and a column of space-separated tags."""

    def __init__(self, table: str | Path, size: int, train: bool = True, flip: bool = True,
                 xdog: XDoGConfig | None = None, min_size_frac: float = 0.5, *,
                 file_column: str = "file", tags_column: str = "tags",
                 image_root: str | Path | None = None, require_tags: Sequence[str] = ()):
        outside: list[tuple[str, str]] = []
        paths, prompts = table_samples(table, file_column, tags_column, image_root, require_tags, outside)
        if not paths:
            having = f" carrying all of {list(require_tags)}" if require_tags else ""
            raise DatasetError(f"{table}: no usable rows{having}"
                               + (f" ({summarize_skipped(outside, len(outside))})" if outside else ""))
        super().__init__(paths, size, train, flip, xdog, min_size_frac, str(table), outside)
        self.prompts = np.array(prompts)[self.kept]

    def _tags(self, j: int) -> str:
        return str(self.prompts[j])


class CacheDataset(_LazyDataset):
    """A cache written by `python -m textcolor.prepare`: short-side-resized images with their
    sketches, so training skips XDoG; both get the same random crop and flip."""

    def __init__(self, root: str | Path, size: int, train: bool = True, flip: bool = True,
                 xdog: XDoGConfig | None = None):
        super().__init__(size, train, flip, xdog)
        self.root = Path(root)
        meta = self._read_meta()
        if meta["size"] != size:
            raise DatasetError(f"{self.root}: cache prepared at size {meta['size']}, but size is {size}; "
                               f"re-run textcolor.prepare with --size {size}")
        if xdog is not None and meta["xdog"] != dataclasses.asdict(xdog):
            raise DatasetError(f"{self.root}: cache sketches were made with xdog {meta['xdog']}, not "
                               f"{dataclasses.asdict(xdog)}; re-run textcolor.prepare with those parameters")
        index = pd.read_csv(self.root / CACHE_INDEX, dtype=str, keep_default_na=False)
        if index.empty:
            raise DatasetError(f"{self.root}: empty cache (was textcolor.prepare interrupted?)")
        # an index row may name any path: keep only files inside the cache (no `../`, no links out)
        inside = [not (outside_root(self.root / i, self.root) or outside_root(self.root / k, self.root))
                  for i, k in zip(index["image"], index["sketch"])]
        self.skipped = [(str(self.root / i), OUTSIDE) for i, ok in zip(index["image"], inside) if not ok]
        self.total = len(index)
        index = index[inside]
        if index.empty:
            raise DatasetError(f"{self.root}: no usable cache entries ({summarize_skipped(self.skipped, self.total)})")
        self.images = index["image"].to_numpy(dtype=str)
        self.sketches = index["sketch"].to_numpy(dtype=str)
        self.prompts = index["tags"].to_numpy(dtype=str)

    def _read_meta(self) -> dict:
        try:
            return json.loads((self.root / CACHE_META).read_text())
        except (OSError, ValueError):
            raise DatasetError(f"{self.root}: not a textcolor cache (no readable {CACHE_META}; "
                               f"make one with python -m textcolor.prepare)") from None

    def __len__(self) -> int:
        return len(self.images)

    def _path(self, j: int) -> str:
        return str(self.root / self.images[j])

    def _load(self, j: int, rng: np.random.Generator | None, bad: str) -> dict:
        img = open_rgb(self._path(j))
        sketch = open_rgb(self.root / self.sketches[j]).getchannel(0)
        if sketch.size != img.size or min(img.size) < self.size:
            raise BadImageError(f"{self._path(j)}: sketch size does not match", "corrupt")
        img, sketch = augment([img, sketch], self.size, rng, self.flip)
        return _sample(_to_unit(img), _to_unit(sketch), str(self.prompts[j]), bad)


# ---------------------------------------------------------------- the bundled synthetic data

class SynthDataset(torch.utils.data.Dataset):
    """Sample i is render(seed + i) brought to `size`. An item is an index, or (index, aug_seed):
    aug_seed drives the random horizontal flip (when flip=True); a plain index is never flipped.

    With sketch_scale > 1 the character is drawn at a size between `size` and size·sketch_scale
    and its sketch made in one of `line_styles` there, then brought to `size` by the operator
    inference uses (textcolor.sketchstyle). Draw size and style are fixed per sample."""

    def __init__(self, n: int, size: int, seed: int = 0, mono_frac: float = 0.1,
                 xdog: XDoGConfig | None = None, flip: bool = False, alt_style_frac: float = 0.2,
                 costume_frac: float = 0.0, detail: float = 0.0, sketch_scale: float = 1.0,
                 line_styles: tuple[str, ...] = ("xdog",), line_jitter: float = 0.0, cache: bool = False,
                 accessory_weights: dict[str, float] | None = None, hairband_drop: float = 0.0):
        bad = [s for s in line_styles if s not in LINE_STYLES]
        if bad or not line_styles:
            raise ValueError(f"line styles {list(line_styles)}: valid are {', '.join(LINE_STYLES)}")
        self.n, self.size, self.seed, self.mono_frac = n, size, seed, mono_frac
        self.xdog, self.flip = xdog or XDoGConfig(), flip
        self.looks = {"alt_style_frac": alt_style_frac, "costume_frac": costume_frac, "detail": detail,
                      "accessory_weights": dict(accessory_weights or {}), "hairband_drop": hairband_drop}
        self.sketch_scale, self.line_styles, self.line_jitter = sketch_scale, tuple(line_styles), line_jitter
        # Drawing at up to 3× the working size costs ~50 ms a sample; later epochs reuse it
        # (uint8, ~260 kB a sample at 256 px, held by each loader worker)
        self.cache: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor, str]] | None = {} if cache else None

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, item: int | tuple[int, int]) -> dict:
        index, aug_seed = item if isinstance(item, tuple) else (item, None)
        if not -self.n <= index < self.n:
            raise IndexError(f"index {index} out of range for {self.n} samples")
        index %= self.n
        if self.cache is not None and index in self.cache:
            image8, sketch8, labels, tags = self.cache[index]
            image01, sketch01 = image8.float() / 255, sketch8.float()
        else:
            seed = self.seed + index
            rng = sample_rng(seed)  # draw size, line style, jitter: fixed per sample
            px = draw_size(self.size, self.sketch_scale, rng)
            style = self.line_styles[int(rng.integers(len(self.line_styles)))]
            s = render(seed, px, mono_frac=self.mono_frac, **self.looks)
            big = torch.from_numpy(s.image).permute(2, 0, 1)[None].float().div_(255.0)   # [1, 3, S, S]
            ink = torch.from_numpy(s.mask == LINE)[None, None].float()                  # [1, 1, S, S]
            sketch01 = make_sketch(big, ink, self.size, style, self.line_jitter, self.xdog, rng)[0]
            image01 = area_resize(big, self.size)[0]
            labels = working_labels(s.mask, self.size)
            tags = ", ".join(s.tags)
            if self.cache is not None:
                image8 = (image01 * 255).round().to(torch.uint8)
                self.cache[index] = (image8, sketch01.round().to(torch.uint8), labels, tags)
                image01, sketch01 = image8.float() / 255, sketch01.round()  # same values as a hit
        if self.flip and aug_seed is not None and np.random.default_rng(aug_seed).random() < 0.5:
            image01, sketch01, labels = image01.flip(-1), sketch01.flip(-1), labels.flip(-1)
        return {**_sample(image01, sketch01, tags, bad=""), "mask": labels}


def working_labels(mask: np.ndarray, size: int) -> torch.Tensor:
    """A render's label map [S, S] -> [size, size] uint8 by nearest sampling (torch's "nearest":
    the label at each working pixel's top-left source pixel). Region losses need labels, not
    mixtures; a label is at most one source pixel off, below a line's width."""
    labels = torch.from_numpy(np.ascontiguousarray(mask))
    if labels.shape[-1] == size and labels.shape[-2] == size:
        return labels.clone()
    return F.interpolate(labels[None, None].float(), size=(size, size), mode="nearest")[0, 0].to(torch.uint8)


def out_dir_problem(cfg: "Config", out_dir: str | Path) -> str | None:
    """Why a run must not write to out_dir, or None: no command writes inside a source folder
    (a folder or cache dataset, or a table's explicit image_root)."""
    d = cfg.data
    roots = {"folder": d.path, "cache": d.path, "table": d.image_root}.get(d.source, "")
    if not roots:
        return None
    source, out = Path(roots).resolve(), Path(out_dir).resolve()
    if out == source or source in out.parents:
        return f"--out {out_dir} is inside the data folder {roots}; choose a directory outside it"
    return None


def build_dataset(cfg: "Config", train: bool) -> Dataset:
    """The training (train=True) or validation dataset that cfg.data describes. Synth validation
    uses held-out render seeds; real sources validate on the same images with centre crops."""
    d = cfg.data
    if d.source == "synth":
        looks = dict(mono_frac=d.mono_frac, alt_style_frac=d.alt_style_frac, costume_frac=d.costume_frac,
                     xdog=cfg.xdog, detail=d.detail, sketch_scale=d.sketch_scale,
                     line_styles=tuple(d.line_styles), line_jitter=d.line_jitter,
                     accessory_weights=dict(d.accessory_weights), hairband_drop=d.hairband_drop)
        if train:
            return SynthDataset(n=d.synth_n, size=d.size, seed=d.synth_seed, flip=d.flip,
                                cache=d.synth_cache, **looks)
        return SynthDataset(n=d.val_n, size=d.size, seed=10**9 + d.synth_seed, flip=False, **looks)
    common = dict(size=d.size, train=train, flip=d.flip, xdog=cfg.xdog)
    if d.source == "folder":
        return FolderDataset(d.path, min_size_frac=d.min_size_frac, **common)
    if d.source == "table":
        return TableDataset(d.path, min_size_frac=d.min_size_frac, file_column=d.file_column,
                            tags_column=d.tags_column, image_root=d.image_root or None,
                            require_tags=d.require_tags, **common)
    if d.source == "cache":
        return CacheDataset(d.path, **common)
    raise DatasetError(f"unknown data.source {d.source!r} (synth, folder, table or cache)")
