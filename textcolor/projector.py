"""Tag vectors for TensorBoard's Embedding Projector: the raw sentence embeddings (384-d) and the
model's learned conditioning (k-d), side by side, with `tag` and `category` metadata columns.

    python -m textcolor.projector --out runs/projector                 # the shipped model
    python -m textcolor.projector --checkpoint runs/demo --out runs/demo_projector
    tensorboard --logdir runs/projector                                 # -> PROJECTOR tab

From Python: `export_projector(colorizer_or_checkpoint, out_dir)`; at the end of a training run,
`export_for_run(G, encoder, tags, writer, step)` writes the same two embeddings into the run's own
TensorBoard directory.

Layout written by SummaryWriter.add_embedding (what the projector plugin reads):
    out_dir/projector_config.pbtxt
    out_dir/<step:05d>/raw_tag_embedding/{tensors.tsv, metadata.tsv}
    out_dir/<step:05d>/learned_tag_conditioning/{tensors.tsv, metadata.tsv}
The learned vectors are G.cond.vector(e): exactly the k values tiled over the sketch (bias
included; the empty prompt maps to the bias).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

import torch
from torch.utils.tensorboard import SummaryWriter

from textcolor import cli
from textcolor.checkpoint import CheckpointError
from textcolor.colorize import Colorizer
from textcolor.explore import categories_of, vocabulary

RAW_TAG = "raw_tag_embedding"
LEARNED_TAG = "learned_tag_conditioning"
METADATA_HEADER = ["tag", "category"]
_EMBEDDING_FILES = ("tensors.tsv", "metadata.tsv", "sprite.png")


def _metadata(tags: Sequence[str]) -> list[list[str]]:
    clean = lambda s: " ".join(s.replace("\t", " ").split()) or "(empty)"  # noqa: E731  TSV-safe
    return [[clean(t), c] for t, c in zip(tags, categories_of(tags))]


def _clear_stale(logdir: Path, step: int) -> None:
    """Remove our own files from an earlier export at the same step, so re-exporting into the
    same directory overwrites quietly instead of add_embedding's 'dir exists' warning."""
    for tag in (RAW_TAG, LEARNED_TAG):
        d = logdir / f"{step:05d}" / tag
        if d.is_dir():
            for name in _EMBEDDING_FILES:
                (d / name).unlink(missing_ok=True)
            try:
                d.rmdir()
            except OSError:
                pass        # someone else's files in there: leave them


def _run_tags(encoder) -> list[str]:
    """A run's own vocabulary (every tag its encoder holds) or, if it holds none, the built-in one."""
    names, _ = encoder.table()
    if names:
        return list(dict.fromkeys(names))
    return vocabulary()["tag"].tolist()


@torch.no_grad()
def export_for_run(G, encoder, tags: Sequence[str] | None, writer, step: int = 0) -> list[str] | None:
    """Add the raw and learned tag embeddings to a SummaryWriter's log directory.

    G: a Generator (G.cond.vector is the learned projection); encoder: its TagEncoder, or None for
    an untagged model (then nothing is written and None is returned); tags: None for the run's own
    vocabulary (the tags its encoder holds: no text-model load), else the tags to show.
    Returns the two projector tensor names."""
    if encoder is None or getattr(G.cond, "proj", None) is None:
        return None
    tags = list(dict.fromkeys(str(t) for t in tags)) if tags is not None else _run_tags(encoder)
    if not tags:
        raise ValueError("no tags to export")
    raw = encoder.encode(tags).float()                                          # [N, E]
    device = next(G.parameters()).device
    learned = G.cond.vector(raw.to(device)).float().cpu()                      # [N, k]
    meta = _metadata(tags)
    _clear_stale(Path(writer.get_logdir()), step)
    writer.add_embedding(raw, metadata=meta, metadata_header=METADATA_HEADER, global_step=step, tag=RAW_TAG)
    writer.add_embedding(learned, metadata=meta, metadata_header=METADATA_HEADER, global_step=step,
                         tag=LEARNED_TAG)
    writer.flush()
    return [f"{RAW_TAG}:{step:05d}", f"{LEARNED_TAG}:{step:05d}"]


def export_run(G, encoder, run_dir: str | Path, step: int) -> list[str] | None:
    """A finished run's vocabulary in its own TensorBoard directory (train.py calls this after
    train()); None for an untagged model."""
    if encoder is None:
        return None
    with SummaryWriter(str(run_dir)) as writer:
        return export_for_run(G, encoder, None, writer, step)


def export_projector(colorizer_or_checkpoint=None, out_dir: str | Path = "projector",
                     tags: Sequence[str] | None = None) -> Path:
    """Write both embeddings of `tags` (default: explore.vocabulary()) into out_dir; returns out_dir.

    colorizer_or_checkpoint: a Colorizer, a checkpoint / run dir / exported .safetensors path, or
    None for the shipped model. Raises CheckpointError for an unusable checkpoint and ValueError
    for an untagged model."""
    colorizer = colorizer_or_checkpoint
    if not isinstance(colorizer, Colorizer):
        colorizer = Colorizer.from_checkpoint(colorizer_or_checkpoint, device="cpu")
    if colorizer.encoder is None:
        raise ValueError("this model takes no tags (tags.layout none): nothing to project")
    if tags is None:
        tags = vocabulary()["tag"].tolist()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    writer = SummaryWriter(str(out))
    try:
        export_for_run(colorizer.G, colorizer.encoder, tags, writer)
    finally:
        writer.close()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = cli.parser("textcolor-projector", __doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default=None,
                    help="train.py checkpoint, run dir or exported .safetensors (default: the shipped model)")
    ap.add_argument("--out", required=True, help="TensorBoard log directory to write")
    ap.add_argument("--all-tags", action="store_true",
                    help="also export every tag in the checkpoint's own vocabulary table")
    args = ap.parse_args(argv)

    try:
        colorizer = Colorizer.from_checkpoint(args.checkpoint, device="cpu")
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # anything else a broken file raises: one line, not a traceback
        first = (str(e).strip().splitlines() or [""])[0][:200]
        print(f"error: {args.checkpoint}: cannot load the model ({type(e).__name__}: {first})", file=sys.stderr)
        return 2
    if colorizer.encoder is None:
        print(f"error: {args.checkpoint}: this model takes no tags (tags.layout none): nothing to project",
              file=sys.stderr)
        return 2
    tags = vocabulary()["tag"].tolist()
    if args.all_tags:
        tags = list(dict.fromkeys(tags + colorizer.encoder.table()[0]))
    code = cli.run(lambda: export_projector(colorizer, args.out, tags) and 0)
    if code == 0:
        print(f"wrote {len(tags)} tags (raw {colorizer.encoder.dim}-d, learned {colorizer.G.cond.k}-d) to "
              f"{args.out}; view with: tensorboard --logdir {args.out}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
