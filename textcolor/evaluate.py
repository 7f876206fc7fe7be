"""Does the tag steer the colour? Metrics on held-out synthetic renders (seeds never trained on).

    python -m textcolor.evaluate                                   # the shipped model
    python -m textcolor.evaluate --checkpoint runs/demo --baseline runs/sweep/no_tags --n 200 --json eval.json

Hair colour is read as the mean CIELAB colour inside the render's hair mask and classified as the
nearest of a set of prototype colours:
  tag_accuracy        own tags, roster characters        -> nearest roster hair colour is theirs
  swap_accuracy       same sketch, another character's tag -> takes that character's hair colour
  pair_accuracy       hibiki/akatsuki (identical sketches) -> the tag alone picks white vs dark navy
  pair_2x_accuracy    the same with sketches drawn at twice the working size
  attribute_accuracy  original characters, own colour tags -> nearest colour-tag hair colour
  phrase_accuracy     original characters, colour phrases never seen in training ("crimson hair")
  monochrome_chroma / color_chroma: mean CIELAB chroma of the character with `monochrome` / own tags
The same metrics on the ground-truth renders (`oracle`) check that the measurement itself is sound.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from skimage.color import rgb2lab
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from tqdm import tqdm

from textcolor import synth
from textcolor.xdog import sketch_array

EVAL_SEED = 2_000_000_000  # training renders seeds from 0, validation from 1e9: disjoint
PAIR = ("hibiki_(kantai_collection)", "akatsuki_(kantai_collection)")
# Colour phrases that never occur in training, each meaning one colour tag of tags/colors.csv.
PHRASES = {
    "crimson hair": "red_hair", "scarlet-haired girl": "red_hair",
    "silver-haired girl": "silver_hair", "snow white hair": "white_hair",
    "golden hair": "blonde_hair", "azure hair": "blue_hair", "emerald green hair": "green_hair",
    "teal hair": "aqua_hair", "rose pink hair": "pink_hair", "violet hair": "purple_hair",
    "chestnut hair": "brown_hair", "jet black hair": "black_hair", "tangerine hair": "orange_hair",
}
KEYS = ("l1", "psnr", "ssim", "tag_accuracy", "swap_accuracy", "pair_accuracy", "pair_2x_accuracy", "monochrome_chroma",
        "color_chroma", "attribute_accuracy", "phrase_accuracy")


HAIR = synth.HAIR


def mean_lab(image: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Mean CIELAB colour of uint8 RGB pixels where `region` is true."""
    return rgb2lab(image[region][None].astype(np.float64) / 255.0)[0].mean(0)


def prototype(size: int, seeds: int = 4, **identity) -> np.ndarray:
    """Mean hair colour of ground-truth renders of one identity: the canonical colour as drawn,
    with its cel shading and anti-aliased edges (the raw hex would make white hair read as silver)."""
    labs = [mean_lab(s.image, s.mask == HAIR) for s in
            (synth.render(EVAL_SEED - 1 - k, size, monochrome=False, **identity) for k in range(seeds))]
    return np.mean(labs, 0)


def nearest(lab: np.ndarray, prototypes: np.ndarray) -> int:
    return int(np.argmin(((prototypes - lab) ** 2).sum(1)))


def chroma(image: np.ndarray, region: np.ndarray) -> float:
    lab = rgb2lab(image[region][None].astype(np.float64) / 255.0)[0]
    return float(np.hypot(lab[:, 1], lab[:, 2]).mean())


@dataclass
class Case:
    """One coloured sketch and what its hair should be."""
    sample: synth.Sample
    prompt: str
    want: int                  # index into the prototype set
    kind: str                  # which metric it counts toward


def build_cases(n: int, size: int) -> tuple[list[Case], dict[str, np.ndarray]]:
    roster = synth.load_roster()
    names = [c.tag for c in roster]
    colors = synth.load_colors()["hair"]
    color_tags = list(colors)
    protos = {"roster": np.stack([prototype(size, character=t) for t in names]),
              "colors": np.stack([prototype(size, character="original", hair_color=t) for t in color_tags])}
    protos["pair"] = protos["roster"][[names.index(t) for t in PAIR]]
    protos["pair_2x"] = np.stack([prototype(2 * size, character=t) for t in PAIR])
    cases: list[Case] = []
    rng = np.random.default_rng(0)
    for i in range(n):
        seed = EVAL_SEED + i
        # roster character with own tags; the same sketch with another character's tag
        s = synth.render(seed, size, character=names[i % len(names)], monochrome=False)
        me = names.index(s.character)
        cases.append(Case(s, ", ".join(s.tags), me, "tag"))
        other = (me + 1 + int(rng.integers(len(names) - 1))) % len(names)
        cases.append(Case(s, names[other], other, "swap"))
        # identical hibiki/akatsuki sketches: the tag alone decides; also drawn at twice the
        # working size, since a user's sketch is rarely drawn at the model's size
        for kind, px in (("pair", size), ("pair_2x", 2 * size)):
            pair_sketch = synth.render(seed, px, character=PAIR[0], monochrome=False)
            cases += [Case(pair_sketch, tag, j, kind) for j, tag in enumerate(PAIR)]
        # originals: colour tags, and colour phrases never seen in training
        hair = color_tags[i % len(color_tags)]
        o = synth.render(seed, size, character="original", hair_color=hair, monochrome=False)
        cases.append(Case(o, ", ".join(o.tags), color_tags.index(hair), "attribute"))
        phrase = list(PHRASES)[i % len(PHRASES)]
        cases.append(Case(o, phrase, color_tags.index(PHRASES[phrase]), "phrase"))
        cases.append(Case(s, "monochrome", -1, "monochrome"))
    return cases, protos


PROTOTYPES = {"tag": "roster", "swap": "roster", "pair": "pair", "pair_2x": "pair_2x", "attribute": "colors",
              "phrase": "colors"}


def score(outputs: list[np.ndarray], cases: list[Case], protos: dict[str, np.ndarray]) -> dict:
    hits: dict[str, list[bool]] = {k: [] for k in PROTOTYPES}
    recon, mono, colour = [], [], []
    for out, case in zip(outputs, cases):
        mask = case.sample.mask
        figure = mask > 0  # everything but the background
        if case.kind == "monochrome":
            mono.append(chroma(out, figure))
            continue
        if case.kind == "tag":
            target = case.sample.image
            recon.append((np.abs(out.astype(np.float64) - target).mean() / 127.5,
                          peak_signal_noise_ratio(target, out, data_range=255),
                          structural_similarity(target, out, channel_axis=2, data_range=255)))
            colour.append(chroma(out, figure))
        lab = mean_lab(out, mask == HAIR)
        hits[case.kind].append(nearest(lab, protos[PROTOTYPES[case.kind]]) == case.want)
    r = np.array(recon) if recon else np.full((1, 3), np.nan)
    res = {"l1": float(r[:, 0].mean()), "psnr": float(r[:, 1].mean()), "ssim": float(r[:, 2].mean())}
    for kind, h in hits.items():
        res[f"{kind}_accuracy"] = float(np.mean(h)) if h else float("nan")
    res["monochrome_chroma"] = float(np.mean(mono)) if mono else float("nan")
    res["color_chroma"] = float(np.mean(colour)) if colour else float("nan")
    res["cases"] = {k: len(v) for k, v in hits.items()} | {"monochrome": len(mono)}
    return res


def colorize_cases(colorizer, cases: list[Case], batch: int = 32, desc: str = "evaluating") -> list[np.ndarray]:
    prepared = {}
    for case in cases:
        key = id(case.sample)
        if key not in prepared:
            sketch = sketch_array(case.sample.image, colorizer.cfg.xdog)
            prepared[key] = colorizer.prepare(sketch)
    outs = []
    for i in tqdm(range(0, len(cases), batch), desc=desc, unit="batch", leave=False):
        chunk = cases[i:i + batch]
        imgs = colorizer.colorize_prepared([prepared[id(c.sample)] for c in chunk], [c.prompt for c in chunk])
        outs += [np.asarray(img) for img in imgs]
    return outs


def evaluate(colorizer, n: int = 100) -> dict:
    cases, protos = build_cases(n, colorizer.size)
    return score(colorize_cases(colorizer, cases), cases, protos)


def oracle(n: int, size: int) -> dict:
    """The metrics on ground-truth renders: what a perfect colorizer scores (the swap, pair and
    phrase targets are the other character's / phrase's own render)."""
    cases, protos = build_cases(n, size)
    outs = []
    for c in cases:
        if c.kind == "monochrome":
            outs.append(synth.render(c.sample.seed, size, character=c.sample.character, monochrome=True).image)
        elif c.kind == "swap":  # the sketch's own character, in the other character's hair colour
            hair = synth.load_roster()[c.want].hair_color
            outs.append(synth.render(c.sample.seed, size, character=c.sample.character, hair_color=hair,
                                     monochrome=False).image)
        elif c.kind in ("pair", "pair_2x"):
            outs.append(synth.render(c.sample.seed, c.sample.image.shape[0], character=PAIR[c.want],
                                     monochrome=False).image)
        elif c.kind == "phrase":
            hair = list(synth.load_colors()["hair"])[c.want]
            outs.append(synth.render(c.sample.seed, size, character="original", hair_color=hair,
                                     monochrome=False).image)
        else:
            outs.append(c.sample.image)
    return score(outs, cases, protos)


def format_table(results: dict[str, dict]) -> str:
    names = list(results)
    rows = [f"| metric | {' | '.join(names)} |", "|---|" + "---|" * len(names)]
    for key in KEYS:
        vals = []
        for name in names:
            v = results[name].get(key, float("nan"))
            vals.append(f"{100 * v:.1f}%" if key.endswith("accuracy") else f"{v:.3f}" if key in ("l1", "ssim") else f"{v:.2f}")
        rows.append(f"| {key} | {' | '.join(vals)} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, help="model to evaluate (default: the shipped model)")
    p.add_argument("--baseline", type=Path, help="also evaluate this (e.g. untagged, layout none) checkpoint")
    p.add_argument("--n", type=int, default=100, help="held-out sketches (each gives 8 cases)")
    p.add_argument("--device")
    p.add_argument("--oracle", action="store_true", help="also score the ground-truth renders")
    p.add_argument("--json", type=Path, help="write the results here")
    args = p.parse_args(argv)
    from textcolor.checkpoint import CheckpointError
    from textcolor.colorize import Colorizer
    from textcolor.memory import keep_freed_memory
    keep_freed_memory()
    if args.n < 1:
        print("error: --n must be ≥ 1", file=sys.stderr)
        return 2
    try:
        model = Colorizer.from_checkpoint(args.checkpoint, device=args.device)
        results = {"model": evaluate(model, args.n)}
        if args.baseline:
            results["baseline"] = evaluate(Colorizer.from_checkpoint(args.baseline, device=args.device), args.n)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.oracle:
        results["oracle"] = oracle(args.n, model.size)
    print(format_table(results))
    if args.json:
        out = dict(results["model"])
        out.update({k: v for k, v in results.items() if k != "model"})
        out["checkpoint"] = str(args.checkpoint or "shipped")
        out["n"] = args.n
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
