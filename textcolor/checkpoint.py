"""Checkpoints: atomic writes, keep-last-N, safe loading (no pickle code execution).

A checkpoint is one dict saved with torch.save and loaded with `weights_only=True`, so it may hold
only tensors, numbers, strings, lists and dicts:
    format, version, step, samples_seen, train_seconds (wall time of every chunk that led here; absent
    in checkpoints older than it), config (dict), G, G_ema (or absent), D, opt_g, opt_d,
    rng {torch, cuda, tagdrop}, tags {model, names, vectors}
Files: checkpoints/step_000100.pt ... and last.pt, a hard link to the newest one.
"""
from __future__ import annotations

import errno
import json
import os
import pickle
import re
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from textcolor import __version__, cli
from textcolor.config import Config, ConfigError, from_dict, to_dict
from textcolor.deferredwarnings import shown_if_it_succeeds
from textcolor.models import Generator

FORMAT = "textcolor-checkpoint"
VERSION = 1
LAST = "last.pt"
_STEP_FILE = re.compile(r"step_(\d+)\.pt$")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the message is one line for the user."""


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class _WriteRecorder:
    """A file wrapper that remembers the OSError of a failed write. PyTorch's zip writer swallows
    it and raises its own RuntimeError ("unexpected pos ..."), so a full disk would otherwise be
    indistinguishable from a bug."""

    def __init__(self, f):
        self.f, self.error = f, None

    def write(self, data) -> int:
        try:
            return self.f.write(data)
        except OSError as e:
            self.error = e
            raise

    def flush(self) -> None:
        self.f.flush()


def atomic_torch_save(obj, path: Path) -> None:
    """Write to a temp file in the same directory, fsync, then rename over the target.

    A crash at any moment leaves either the old file or the complete new one, never a torn one.
    Any failure removes the temp file and raises OSError (PyTorch's writer errors on a full disk
    are turned back into the OSError that caused them)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            rec = _WriteRecorder(f)
            try:
                torch.save(obj, rec)
            except RuntimeError as e:
                if rec.error is not None:
                    raise rec.error from None
                raise OSError(f"PyTorch's writer failed ({str(e).splitlines()[0][:120]})") from None
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def save_checkpoint(state: dict, ckpt_dir: Path, keep_last: int = 3) -> Path:
    """Save `state` as step_XXXXXX.pt, point last.pt at it, and prune to the newest `keep_last`.

    Any write failure raises CheckpointError naming the step not written and the last good one,
    with no temp file left; the earlier checkpoints and last.pt are untouched."""
    ckpt_dir = Path(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    state = {"format": FORMAT, "version": VERSION, "textcolor_version": __version__, **state}
    path = ckpt_dir / f"step_{state['step']:07d}.pt"
    good = [p for p in list_checkpoints(ckpt_dir) if p != path]
    try:
        atomic_torch_save(state, path)
        # hard link + rename: last.pt switches atomically and costs no second write
        tmp = ckpt_dir / f".{LAST}.link"
        tmp.unlink(missing_ok=True)
        os.link(path, tmp)
        os.replace(tmp, ckpt_dir / LAST)
    except OSError as e:
        (ckpt_dir / f".{LAST}.link").unlink(missing_ok=True)
        kept = (f"last good checkpoint step {int(_STEP_FILE.search(good[-1].name).group(1))} kept"
                if good else "no earlier checkpoint")
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise CheckpointError(f"no space left on {ckpt_dir}: checkpoint step {state['step']} not written; "
                                  f"{kept}") from None
        raise CheckpointError(f"could not write checkpoint {path}: {e.strerror or e}; {kept}") from None
    for old in list_checkpoints(ckpt_dir)[:-keep_last]:
        old.unlink(missing_ok=True)
    for stale in ckpt_dir.glob(".step_*.pt.*.tmp"):  # left by writes a crash (SIGKILL) interrupted
        stale.unlink(missing_ok=True)
    return path


def list_checkpoints(ckpt_dir: Path) -> list[Path]:
    """Numbered checkpoints, oldest first."""
    found = [(int(m.group(1)), p) for p in Path(ckpt_dir).glob("step_*.pt") if (m := _STEP_FILE.search(p.name))]
    return [p for _, p in sorted(found)]


def resolve(path: str | Path) -> Path:
    """A checkpoint file, a checkpoints/ directory or a run directory -> the checkpoint file."""
    p = Path(path)
    if p.is_dir():
        if (p / "model.safetensors").is_file():  # a hub-layout export (textcolor.card)
            return p / "model.safetensors"
        for d in (p / "checkpoints", p):
            # the newest numbered file before last.pt: a crash between writing step_N.pt (atomically)
            # and re-pointing last.pt leaves last.pt one checkpoint behind
            if steps := list_checkpoints(d):
                return steps[-1]
            if (d / LAST).exists():
                return d / LAST
        raise CheckpointError(f"{p}: no checkpoint found (expected checkpoints/{LAST})")
    if not p.exists():
        raise CheckpointError(f"{p}: no such checkpoint")
    return p


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Load safely: `weights_only=True` refuses any pickle that would construct arbitrary objects."""
    p = resolve(path)
    if p.stat().st_size == 0:
        raise CheckpointError(f"{p}: empty file, not a checkpoint")
    if not p.is_file():
        raise CheckpointError(f"{p}: not a regular file, not a checkpoint")
    with open(p, "rb") as f:
        head = f.read(4)
    # torch.save writes a zip (PK..), older PyTorch a pickle (protocol 2+: 0x80); anything else,
    # a README or an image, would only get PyTorch's long unpickler message
    if head != b"PK\x03\x04" and head[:1] != b"\x80":
        raise CheckpointError(f"{p}: not a checkpoint (expected a .pt file written by train.py "
                              f"or a .safetensors export)")
    problem = _zip_problem(p)
    if problem:
        raise CheckpointError(f"{p}: refused to load ({problem})")
    try:
        with shown_if_it_succeeds():
            state = torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        # PyTorch's message is a paragraph about weights_only; keep only what it found
        found = re.search(r"(?:unsupported|Unsupported) (?:GLOBAL|global|operand) ([\w.]+)", str(e))
        what = (f"it would call {found.group(1)}" if found
                else "it holds Python objects, not only tensors and numbers")
        raise CheckpointError(f"{p}: refused to load (not a plain-weights checkpoint: {what})") from None
    except Exception as e:  # noqa: BLE001 — torch's readers raise many types on damaged bytes (struct.error, IndexError, ...)
        raise CheckpointError(f"{p}: truncated or corrupt checkpoint ({e.__class__.__name__})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{p}: not a textcolor checkpoint")
    if isinstance(state.get("version", 0), int) and state.get("version", 0) > VERSION:
        raise CheckpointError(f"{p}: checkpoint version {state['version']} is newer than this textcolor ({VERSION})")
    problem = _malformed(state)
    if problem:
        raise CheckpointError(f"{p}: malformed textcolor checkpoint ({problem})")
    return state


def _zip_problem(p: Path) -> str | None:
    """torch.save writes an uncompressed zip, so its tensors cannot hold more bytes than the file.
    A compressed entry (a zip bomb: 4 MB that inflate to gigabytes) is refused before reading it."""
    try:
        with zipfile.ZipFile(p) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return None  # not a zip: torch.load tells a legacy checkpoint from garbage
    if any(i.compress_type != zipfile.ZIP_STORED for i in infos):
        return "compressed entries; torch.save never writes them"
    if sum(i.file_size for i in infos) > p.stat().st_size:
        return "its entries claim more bytes than the file holds"
    return None


def _nonfinite(tensors: dict, what: str) -> str | None:
    """The first floating tensor holding NaN/Inf: such weights colour garbage without an error."""
    for name, t in tensors.items():
        if isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(torch.isfinite(t).all()):
            return f"non-finite values in {what}.{name}"
    return None


def _malformed(state: dict) -> str | None:
    """What would make code reading this checkpoint fail with something other than CheckpointError."""
    if not isinstance(state.get("version", 0), int) or not isinstance(state.get("step"), int):
        return "version or step is not an integer"
    if not isinstance(state.get("config"), dict):
        return "no config"
    if "G" not in state:
        return "no generator weights"
    for key in ("G", "G_ema", "D"):
        if key in state and not (isinstance(state[key], dict)
                                 and all(isinstance(v, torch.Tensor) for v in state[key].values())):
            return f"{key} is not a dict of tensors"
    for key in ("G", "G_ema", "D"):
        if problem := _nonfinite(state.get(key, {}), key):
            return problem
    return _tag_table_problem(state.get("tags", {}))


def _tag_table_problem(tags) -> str | None:
    if not isinstance(tags, dict):
        return "tags is not a dict"
    names, vectors = tags.get("names", []), tags.get("vectors", torch.zeros(0))
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return "tag names are not a list of strings"
    if not isinstance(vectors, torch.Tensor) or (names and (vectors.dim() != 2 or vectors.shape[0] != len(names))):
        return "tag vectors do not match the tag names"
    if vectors.is_floating_point() and not bool(torch.isfinite(vectors).all()):
        return "non-finite values in the tag vectors"
    return None


# --- generator-only files (the shipped model, exports) -----------------------------------------

GENERATOR_FORMAT = "textcolor-generator"


@dataclass
class LoadedGenerator:
    generator: "torch.nn.Module"
    cfg: "Config"
    tag_names: list[str]
    tag_vectors: torch.Tensor


def generator_parts(path: Path) -> tuple[dict, dict, list[str], torch.Tensor]:
    """(G weights, config dict, tag names, tag vectors) from a .pt checkpoint or a .safetensors export."""
    if path.suffix == ".safetensors":
        try:
            with safe_open(str(path), "pt") as f:
                meta = f.metadata() or {}
            tensors = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(f"{path}: truncated or corrupt safetensors file ({str(e)[:120]})") from None
        if meta.get("format") != GENERATOR_FORMAT:
            raise CheckpointError(f"{path}: not a textcolor generator file")
        weights = {k[2:]: v for k, v in tensors.items() if k.startswith("G.")}
        try:
            config, names = json.loads(meta["config"]), json.loads(meta["tag_names"])
            vectors = tensors["tags.vectors"]
        except (KeyError, ValueError) as e:
            raise CheckpointError(f"{path}: malformed textcolor generator file ({type(e).__name__}: "
                                  f"{str(e)[:80]})") from None
        problem = None if isinstance(config, dict) else "config is not a dict"
        problem = problem or _tag_table_problem({"names": names, "vectors": vectors}) or _nonfinite(weights, "G")
        if problem:
            raise CheckpointError(f"{path}: malformed textcolor generator file ({problem})")
        return weights, config, names, vectors
    state = load_checkpoint(path)
    tags = state.get("tags", {})
    return state.get("G_ema", state["G"]), state["config"], list(tags.get("names", [])), tags.get("vectors", torch.zeros(0))


# Config fields that name files, directories or other runs: a checkpoint is data from elsewhere,
# so these come from the user's environment, never from the file (a crafted one could make
# inference create directories at any path it names).
_LOCAL_FIELDS = {"data": ("path", "image_root"), "tags": ("cache_dir",), "train": ("init_from",)}


def checkpoint_config(config: dict, where: Path) -> "Config":
    """A checkpoint's config as data: interpolation never resolved, local paths dropped, validated."""
    config = {k: ({f: v for f, v in sec.items() if f not in _LOCAL_FIELDS.get(k, ())} if isinstance(sec, dict)
                  else sec) for k, sec in config.items()}
    try:
        return from_dict(config)
    except ConfigError as e:
        raise CheckpointError(f"{where}: its config is not valid for this textcolor ({e})") from None


def _architecture_problem(g_meta: torch.nn.Module, weights: dict) -> str | None:
    """Stored tensors vs the modules the config describes (built on the meta device: no memory)."""
    expected = g_meta.state_dict()
    missing = [k for k in expected if k not in weights]
    extra = [k for k in weights if k not in expected]
    if missing or extra:
        return f"{'missing' if missing else 'unexpected'} tensor {(missing or extra)[0]}"
    for k, t in expected.items():
        if tuple(weights[k].shape) != tuple(t.shape):
            return f"{k} is {tuple(weights[k].shape)} in the file, {tuple(t.shape)} in its config"
    return None


def load_generator(path: str | Path) -> LoadedGenerator:
    """Rebuild the generator (EMA weights when present) with its config and tag vocabulary. The
    config is checked against the tensors actually stored before any module is allocated."""
    p = resolve(path)
    weights, config, names, vectors = generator_parts(p)
    cfg = checkpoint_config(config, p)
    embed_dim = vectors.shape[1] if vectors.dim() == 2 and vectors.shape[0] else 1
    if cfg.tags.layout != "none" and "cond.proj.weight" in weights:
        embed_dim = weights["cond.proj.weight"].shape[1]
        if names and vectors.shape[1] != embed_dim:
            raise CheckpointError(f"{p}: its tag vectors are {vectors.shape[1]}-d but its generator takes "
                                  f"{embed_dim}-d tag embeddings")
    try:
        with torch.device("meta"):
            g_meta = Generator(cfg.gen, cfg.tags, embed_dim)
    except (RuntimeError, ValueError) as e:
        raise CheckpointError(f"{p}: its config does not describe a buildable generator "
                              f"({str(e).splitlines()[0][:160]})") from None
    problem = _architecture_problem(g_meta, weights)
    if problem:
        raise CheckpointError(f"{p}: weights do not fit the architecture in its config ({problem})")
    g = Generator(cfg.gen, cfg.tags, embed_dim)
    try:
        g.load_state_dict(weights)
    except RuntimeError as e:
        raise CheckpointError(f"{p}: weights do not fit the architecture in its config "
                              f"({str(e).splitlines()[0][:160]})") from None
    return LoadedGenerator(g, cfg, names, vectors.float())


def export_generator(src: str | Path, dst: str | Path) -> Path:
    """Write the generator (EMA when present), config and tag table as one .safetensors file."""
    g = load_generator(src)
    tensors = {f"G.{k}": v.contiguous() for k, v in g.generator.state_dict().items()}
    tensors["tags.vectors"] = g.tag_vectors.contiguous()
    meta = {"format": GENERATOR_FORMAT, "version": str(VERSION), "textcolor_version": __version__,
            "config": json.dumps(to_dict(g.cfg)),
            "tag_names": json.dumps(g.tag_names)}
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, dst)
    return dst


def main(argv: list[str] | None = None) -> int:
    """`python -m textcolor.checkpoint export SRC DST [--hub]`: ship a run's generator as one file,
    or as a hub-layout directory with a model card (textcolor.card)."""
    p = cli.parser("textcolor-checkpoint",
                   "Export a run's generator (EMA when present), config and tag "
                   "vocabulary as one .safetensors file, loadable by infer.py --checkpoint.")
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("export", help="checkpoint file, checkpoints/ or run directory -> .safetensors")
    e.add_argument("src")
    e.add_argument("dst", type=Path)
    e.add_argument("--overwrite", action="store_true", help="replace an existing DST")
    e.add_argument("--hub", action="store_true",
                   help="DST is a directory in model-hub layout: model.safetensors, config.json, README.md (card)")
    e.add_argument("--eval", nargs="+", type=Path, default=[], metavar="JSON",
                   help="--hub: `python -m textcolor.evaluate --json` results for the card's table (one per size)")
    e.add_argument("--recipe", nargs="+", default=[], metavar="YAML",
                   help="--hub: the configs trained in order (each later one resumes), for the card")
    e.add_argument("--name", help="--hub: the model's name on the card (default: the config's name)")
    args = p.parse_args(argv)
    if args.hub:
        from textcolor import card
        done = cli.run(lambda: card.export_hub(args.src, args.dst, args.eval, args.recipe, args.name,
                                               args.overwrite) and 0, extra=(card.CardError,))
        if done == 0:
            print(f"wrote {args.dst}/ ({', '.join(card.HUB_FILES)})")
        return done
    if args.eval or args.recipe or args.name:
        print("error: --eval, --recipe and --name describe a --hub export", file=sys.stderr)
        return 2
    if args.dst.suffix != ".safetensors":
        print(f"error: {args.dst}: the export must end in .safetensors", file=sys.stderr)
        return 2
    if args.dst.exists() and not args.overwrite:
        print(f"error: {args.dst} exists (use --overwrite to replace it)", file=sys.stderr)
        return 2
    code = cli.run(lambda: export_generator(args.src, args.dst) and 0)
    if code == 0:
        print(f"wrote {args.dst} ({args.dst.stat().st_size / 1e6:.1f} MB)")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
