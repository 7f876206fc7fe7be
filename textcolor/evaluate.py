"""Does the tag steer the colour? Metrics on held-out synthetic renders (seeds never trained on).

    python -m textcolor.evaluate                                   # the shipped model, 256 px renders
    python -m textcolor.evaluate --checkpoint runs/demo --baseline runs/sweep/no_tags --n 200 --json eval.json
    python -m textcolor.evaluate --size 512                        # the same held-out set drawn at 512 px
    python -m textcolor.evaluate --checkpoint runs/x/checkpoints/step_0000250.pt --offset 500000000 --n 24
                                                                   # another held-out set, to pick a checkpoint on
    python -m textcolor.evaluate --table "256 px=eval_256.json" "oracle=eval_256.json#oracle" "512 px=eval_512.json"
                                                                   # one table from earlier --json files

The held-out characters are rendered at --size px and coloured through the infer.py path: the
XDoG sketch of the render, `Colorizer.prepare` (which applies the resolution policy), then
`colorize_prepared`. Hair colour is read as the mean CIELAB colour inside the render's hair mask
and classified as the nearest of a set of prototype colours: the same mean on ground-truth
renders, at the same size, of each character / colour tag. Eye colour is the mean inside the eyes
mask less its white catch-lights, classified by the nearest prototype hue angle (an iris is a few
pixels, blended with white and ink); eye and combo cases whose render shows no eye colour (40% of
them at 64 px, where outlines cover the eye; none from 128 px) are left out, and `cases` in the
results counts what was scored.
  l1 / psnr / ssim    own tags, roster characters: reconstruction of the render
  tag_accuracy        own tags, roster characters        -> nearest roster hair colour is theirs
  swap_accuracy       same sketch, another character's tag -> takes that character's hair colour
  pair_accuracy       hibiki/akatsuki (identical sketches) -> the tag alone picks white vs dark navy
  pair_2x_accuracy    the same with sketches drawn at twice --size
  monochrome_chroma / color_chroma: mean CIELAB chroma of the character with `monochrome` / own tags
  attribute_accuracy  original characters, own tags incl. colour tags -> nearest colour-tag hair colour
  lone_attribute_accuracy  original characters, the hair colour tag alone ("red_hair") as the prompt
  phrase_accuracy     original characters, colour phrases never seen in training ("crimson hair"),
                      read as infer.py reads them (colour names grounded: textcolor.colorwords)
  phrase_literal_accuracy  the same phrases given to the text encoder as written (`--literal`):
                      what the model itself makes of words it never saw
  name_accuracy       roster characters, the name as a user writes it (not the tag: name_forms, e.g.
                      "Miku Hatsune", "Hibiki (Kantai Collection)", "kirisame from Touhou"), read as
                      infer.py reads it (names grounded: textcolor.charnames)
  name_literal_accuracy  the same names given to the text encoder as written (`--literal`)
  eye_accuracy        original characters, the eye colour tag alone ("green_eyes") -> nearest eye colour
  combo_accuracy      original characters, "X_hair, Y_eyes" -> hit only if hair and eyes both right
  hair_delta          originals, own tags vs the same tags with the hair tag swapped for the hair
                      colour tag farthest (CIELAB, as drawn) from theirs: mean CIE76 ΔE in the hair
  outside_delta       the same pair of outputs: mean ΔE on the figure outside hair and lines
                      (skin, eyes, outfit, accessory): what the hair tag changes where it should not
  background_chroma / background_lightness: mean CIELAB chroma / L* of the background, own-tag cases
  hair_misses         for each wrong hair colour: "kind: wanted -> read as" and how often (which class fails)
  eye_misses          the same for each wrong eye colour (eye and combo cases)
  combo_eyes_as_hair  of the combo cases whose eyes are wrong, the share whose eyes read as the eye
                      colour nearest in hue to the hair colour asked for: the irises following the hair tag
  outside_delta_by_region: outside_delta per region (skin, eyes, outfit, accessory)
  l1_by_region        l1 split by where the error lies (background, skin, hair, ...): each region's
                      summed error over all pixels, so the parts add up to l1
  accessory_delta_by_kind: the accessory's ΔE by kind (hairclip, hairband, beret, ...)
  hair_delta_by_accessory: hair_delta by the accessory the original wears, tagged or not: whether
                      a band or hat keeps the tag from part of the hair (e.g. the crown above a band)
--hairband-drop D draws the held-out set with hairbands worn up to D of their height below the
skull's outline (synth.render's hairband_drop), the crown's hair above them; 0 (default) as trained.
Colours cycle with the sample index, so n ≥ 12 covers every hair, eye and phrase colour.
The same metrics on the ground-truth renders (`oracle`) check that the measurement itself is sound:
100% from 64 px (--size must be ≥ 32, but at 32 px the outlines cover some characters' hair).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from skimage.color import rgb2lab
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from tqdm import tqdm

from textcolor import cli, synth, vocab
from textcolor.charnames import name_words
from textcolor.colorize import DEFAULT_MODEL, Colorizer
from textcolor.memory import keep_freed_memory
from textcolor.xdog import sketch_array

EVAL_SEED = 2_000_000_000  # training renders seeds from 0, validation from 1e9: disjoint
SELECT_OFFSET = 500_000_000  # --offset for a second held-out set to choose checkpoints on
MIN_SIZE = 32
PAIR = ("hibiki_(kantai_collection)", "akatsuki_(kantai_collection)")
# Colour phrases that never occur in training, each meaning one colour tag of tags/colors.csv.
# The second red is last, so that the first 12 phrases cover all 12 hair colours.
PHRASES = {
    "crimson hair": "red_hair",
    "silver-haired girl": "silver_hair", "snow white hair": "white_hair",
    "golden hair": "blonde_hair", "azure hair": "blue_hair", "emerald green hair": "green_hair",
    "teal hair": "aqua_hair", "rose pink hair": "pink_hair", "violet hair": "purple_hair",
    "chestnut hair": "brown_hair", "jet black hair": "black_hair", "tangerine hair": "orange_hair",
    "scarlet-haired girl": "red_hair",
}
KEYS = ("l1", "psnr", "ssim",
        "tag_accuracy", "swap_accuracy", "pair_accuracy", "pair_2x_accuracy", "name_accuracy", "name_literal_accuracy",
        "monochrome_chroma", "color_chroma",
        "attribute_accuracy", "lone_attribute_accuracy", "phrase_accuracy", "phrase_literal_accuracy",
        "eye_accuracy", "combo_accuracy",
        "hair_delta", "outside_delta", "background_chroma", "background_lightness")


HAIR, EYES, BACKGROUND, LINE = vocab.HAIR, vocab.EYES, vocab.BACKGROUND, vocab.LINE
WHITE = 245  # a pixel with every channel at least this is white (an eye's catch-light)
EYE_MIN_CHROMA = 4.0  # greyer eyes have no eye colour (the palest ground-truth iris at 64 px: 8)


def mean_lab(image: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Mean CIELAB colour of uint8 RGB pixels where `region` is true (NaN where it is empty)."""
    if not region.any():
        return np.full(3, np.nan)
    return rgb2lab(image[region][None].astype(np.float64) / 255.0)[0].mean(0)


def hair_region(s: synth.Sample) -> np.ndarray:
    return s.mask == HAIR


def iris_region(s: synth.Sample) -> np.ndarray:
    """The eyes mask less the white catch-lights: the pixels that show the eye colour. At 64 px the
    outlines leave 0-3 of them per character (eye/combo cases whose render shows none are left
    out); from 96 px nearly every character shows several, from 128 px a dozen or more."""
    return (s.mask == EYES) & (s.image.min(-1) < WHITE)


def prototype(size: int, seeds: int = 4, region=hair_region, **identity) -> np.ndarray:
    """Mean colour inside `region` (the hair by default) of ground-truth renders of one identity:
    the canonical colour as drawn, with its cel shading and anti-aliased edges (the raw hex would
    make white hair read as silver)."""
    labs = [mean_lab(s.image, region(s)) for s in
            (synth.render(EVAL_SEED - 1 - k, size, monochrome=False, **identity) for k in range(seeds))]
    labs = [lab for lab in labs if not np.isnan(lab).any()]  # eyes drawn too small to show a colour
    return np.mean(labs, 0) if labs else np.full(3, np.nan)


def nearest(lab: np.ndarray, prototypes: np.ndarray) -> int:
    """Index of the nearest prototype; -1 (never a hit) for a NaN colour (an empty region)."""
    if np.isnan(lab).any():
        return -1
    return int(np.argmin(((prototypes - lab) ** 2).sum(1)))


def nearest_hue(lab: np.ndarray, prototypes: np.ndarray) -> int:
    """Index of the prototype nearest in CIELAB hue angle; -1 (never a hit) for a NaN colour or
    one too grey to have a hue. Eye colours are told apart by hue: an iris is a few pixels blended
    with catch-light white and ink black, which move L* and chroma much more than hue (the
    ground-truth renders at 64 px: 100% by hue, 93% by nearest CIELAB colour)."""
    if np.isnan(lab).any() or np.hypot(lab[1], lab[2]) < EYE_MIN_CHROMA:
        return -1
    d = np.arctan2(prototypes[:, 2], prototypes[:, 1]) - np.arctan2(lab[2], lab[1])
    return int(np.argmin(np.abs(np.angle(np.exp(1j * d)))))


def chroma(image: np.ndarray, region: np.ndarray) -> float:
    lab = rgb2lab(image[region][None].astype(np.float64) / 255.0)[0]
    return float(np.hypot(lab[:, 1], lab[:, 2]).mean())


def delta_e(a: np.ndarray, b: np.ndarray, region: np.ndarray) -> float:
    """Mean CIE76 ΔE (Euclidean CIELAB distance) between two uint8 RGB images where `region` is true."""
    la, lb = (rgb2lab(x[region][None].astype(np.float64) / 255.0)[0] for x in (a, b))
    return float(np.linalg.norm(la - lb, axis=1).mean())


@dataclass
class Case:
    """One coloured sketch and what its hair (and eyes) should be."""
    sample: synth.Sample
    prompt: str
    want: int                  # index into the kind's hair prototype set; -1: hair not checked
    kind: str                  # which metric it counts toward
    want_eye: int = -1         # index into the eye prototypes; -1: eyes not checked
    partner: int = -1          # "locality": index of the own-tag case whose output it is compared with


def farthest(protos: np.ndarray) -> list[int]:
    """For each prototype, the index of the one farthest from it in CIELAB."""
    d = ((protos[:, None] - protos[None]) ** 2).sum(-1)
    return [int(j) for j in d.argmax(1)]


def prototype_names(kind: str) -> list[str]:
    """What each prototype of a kind stands for, in build_cases' order: "roster", "colors" (hair
    colour tags), "eyes" (eye colour tags), "pair" / "pair_2x"."""
    if kind == "roster":
        return [c.tag for c in vocab.load_roster()]
    if kind in ("colors", "eyes"):
        return list(vocab.load_colors()["hair" if kind == "colors" else "eyes"])
    return list(PAIR)


def name_forms(tag: str, series: str) -> list[str]:
    """Ways a user writes a roster character's name, none of them the tag itself: title case, the
    name's words reversed, the series in brackets, "<the name's longest word> from <series>"."""
    def title(words):
        return " ".join(w.capitalize() for w in words)
    name, show = name_words(tag), title(name_words(series))
    return [title(name), title(name[::-1]), f"{title(name)} ({show})", f"{max(name, key=len)} from {show}"]


def build_cases(n: int, size: int, offset: int = 0,
                hairband_drop: float = 0.0) -> tuple[list[Case], dict[str, np.ndarray]]:
    """The cases of n held-out characters, render seeds EVAL_SEED + offset + i (the colours asked
    for cycle with i, whatever the offset). hairband_drop: synth.render's, for the held-out renders
    (the prototypes are colours, drawn as trained)."""
    names = prototype_names("roster")
    color_tags, eye_tags = prototype_names("colors"), prototype_names("eyes")
    protos = {"roster": np.stack([prototype(size, character=t) for t in names]),
              "colors": np.stack([prototype(size, character="original", hair_color=t) for t in color_tags]),
              "eyes": np.stack([prototype(size, region=iris_region, character="original", eye_color=t)
                                for t in eye_tags])}
    protos["pair"] = protos["roster"][[names.index(t) for t in PAIR]]
    protos["pair_2x"] = np.stack([prototype(2 * size, character=t) for t in PAIR])
    series = [c.series for c in vocab.load_roster()]   # in names' order, for name_forms
    away = farthest(protos["colors"])  # the hair colour tag the locality prompt swaps in
    cases: list[Case] = []
    rng = np.random.default_rng(0)
    for i in range(n):
        seed = EVAL_SEED + offset + i
        # roster character with own tags; the same sketch with another character's tag
        s = synth.render(seed, size, character=names[i % len(names)], monochrome=False, hairband_drop=hairband_drop)
        me = names.index(s.character)
        cases.append(Case(s, ", ".join(s.tags), me, "tag"))
        other = (me + 1 + int(rng.integers(len(names) - 1))) % len(names)
        cases.append(Case(s, names[other], other, "swap"))
        # the same sketch and character, named as a user writes it (each form in turn, by i)
        forms = name_forms(s.character, series[me])
        written = forms[(i // len(names)) % len(forms)]
        cases += [Case(s, written, me, "name"), Case(s, written, me, "name_literal")]
        # identical hibiki/akatsuki sketches: the tag alone decides; also drawn at twice --size,
        # since a user's sketch is rarely drawn at the model's size
        for kind, px in (("pair", size), ("pair_2x", 2 * size)):
            pair_sketch = synth.render(seed, px, character=PAIR[0], monochrome=False, hairband_drop=hairband_drop)
            cases += [Case(pair_sketch, tag, j, kind) for j, tag in enumerate(PAIR)]
        # originals, one sketch: own tags; the hair tag alone; colour phrases never seen in
        # training; the eye tag alone; a hair + eye pair (the eye colour advancing one more every
        # 12 samples, so that every pair of colours comes up by n = 72)
        hair, eye = i % len(color_tags), i % len(eye_tags)
        o = synth.render(seed, size, character="original", hair_color=color_tags[hair],
                         eye_color=eye_tags[eye], monochrome=False, hairband_drop=hairband_drop)
        own = len(cases)
        cases.append(Case(o, ", ".join(o.tags), hair, "attribute"))
        cases.append(Case(o, color_tags[hair], hair, "lone_attribute"))
        phrase = list(PHRASES)[i % len(PHRASES)]
        cases.append(Case(o, phrase, color_tags.index(PHRASES[phrase]), "phrase"))
        cases.append(Case(o, phrase, color_tags.index(PHRASES[phrase]), "phrase_literal"))
        cases.append(Case(o, eye_tags[eye], -1, "eye", want_eye=eye))
        combo_eye = (i + i // len(color_tags)) % len(eye_tags)
        cases.append(Case(o, f"{color_tags[hair]}, {eye_tags[combo_eye]}", hair, "combo", want_eye=combo_eye))
        # locality: the own tags with only the hair colour tag swapped
        swapped = [color_tags[away[hair]] if t == color_tags[hair] else t for t in o.tags]
        cases.append(Case(o, ", ".join(swapped), away[hair], "locality", partner=own))
        cases.append(Case(s, "monochrome", -1, "monochrome"))
    return cases, protos


OUTSIDE_LABELS = (vocab.SKIN, vocab.EYES, vocab.OUTFIT, vocab.ACCESSORY)  # outside_delta's regions
ACCURACIES = ("tag", "swap", "pair", "pair_2x", "name", "name_literal", "attribute", "lone_attribute", "phrase",
              "phrase_literal", "eye", "combo")
LITERAL = ("phrase_literal", "name_literal")  # cases coloured with name grounding off
# the hair prototype set of each kind (eyes are always classified against protos["eyes"])
PROTOTYPES = {"tag": "roster", "swap": "roster", "name": "roster", "name_literal": "roster", "pair": "pair",
              "pair_2x": "pair_2x", "attribute": "colors", "lone_attribute": "colors", "phrase": "colors",
              "phrase_literal": "colors", "combo": "colors"}
OWN_TAGS = ("tag", "attribute")  # the cases coloured with a character's own full tag list


def accessory_kind(tags: list[str]) -> str | None:
    """The accessory a render's tags name (its most specific tag: "beret", not "hat"), or None."""
    return next((kind for kind, kind_tags in vocab.ACCESSORY_TAGS.items()
                 if kind_tags and kind_tags[-1] in tags), None)


def score(outputs: list[np.ndarray], cases: list[Case], protos: dict[str, np.ndarray]) -> dict:
    hits: dict[str, list[bool]] = {k: [] for k in ACCURACIES}
    misses: Counter[str] = Counter()  # "kind: wanted -> read as" for each wrong hair colour
    eye_misses: Counter[str] = Counter()  # the same for each wrong eye colour
    combo_eye_wrong = combo_eye_as_hair = 0
    by_region: dict[str, list[float]] = {}  # locality: ΔE in each region outside the hair
    by_accessory: dict[str, list[float]] = {}  # locality: the accessory's ΔE by kind (hairclip, beret, ...)
    hair_by_accessory: dict[str, list[float]] = {}  # locality: the hair's ΔE by the accessory worn
    l1_parts = np.zeros(len(vocab.MASK_LABELS))  # summed |error| of the own-tag cases by region (l1_by_region)
    l1_pixels = 0
    names = {kind: prototype_names(kind) for kind in {*PROTOTYPES.values(), "eyes"}}
    recon, mono, colour, hair_d, outside_d, bg_c, bg_l = [], [], [], [], [], [], []
    for out, case in zip(outputs, cases):
        mask = case.sample.mask
        figure = mask > 0  # everything but the background
        if case.kind == "monochrome":
            mono.append(chroma(out, figure))
            continue
        if case.kind == "locality":
            ref = outputs[case.partner]
            hair, outside = mask == HAIR, ~np.isin(mask, (BACKGROUND, HAIR, LINE))
            if hair.any():  # at 32 px the outlines can cover all of the hair
                hair_d.append(delta_e(out, ref, hair))
                hair_by_accessory.setdefault(case.sample.accessory, []).append(hair_d[-1])
            if outside.any():
                outside_d.append(delta_e(out, ref, outside))
            for label in OUTSIDE_LABELS:
                region = mask == label
                if region.any():
                    d = delta_e(out, ref, region)
                    by_region.setdefault(vocab.MASK_LABELS[label], []).append(d)
                    kind = accessory_kind(case.sample.tags) if label == vocab.ACCESSORY else None
                    if kind:
                        by_accessory.setdefault(kind, []).append(d)
            continue
        if case.kind == "tag":
            target = case.sample.image
            error = np.abs(out.astype(np.float64) - target).mean(-1) / 127.5
            l1_parts += np.bincount(mask.ravel(), weights=error.ravel(), minlength=len(l1_parts))
            l1_pixels += error.size
            recon.append((error.mean(),
                          peak_signal_noise_ratio(target, out, data_range=255),
                          structural_similarity(target, out, channel_axis=2, data_range=255)))
            colour.append(chroma(out, figure))
        if case.kind in OWN_TAGS:
            bg = mask == BACKGROUND
            bg_c.append(chroma(out, bg))
            bg_l.append(float(mean_lab(out, bg)[0]))
        hit = True
        if case.want_eye >= 0:
            iris = iris_region(case.sample)
            if not iris.any():
                continue  # the render shows no eye colour (small sizes): not measurable
            got_eye = nearest_hue(mean_lab(out, iris), protos["eyes"])
            if got_eye != case.want_eye:
                eye_misses[f"{case.kind}: {names['eyes'][case.want_eye]} -> {names['eyes'][got_eye]}"] += 1
                if case.kind == "combo":
                    combo_eye_wrong += 1
                    combo_eye_as_hair += got_eye == nearest_hue(protos["colors"][case.want], protos["eyes"])
            hit &= got_eye == case.want_eye
        if case.want >= 0:
            got = nearest(mean_lab(out, mask == HAIR), protos[PROTOTYPES[case.kind]])
            if got != case.want:
                kind_names = names[PROTOTYPES[case.kind]]
                misses[f"{case.kind}: {kind_names[case.want]} -> {kind_names[got]}"] += 1
            hit &= got == case.want
        hits[case.kind].append(bool(hit))
    r = np.array(recon) if recon else np.full((1, 3), np.nan)
    res = {"l1": float(r[:, 0].mean()), "psnr": float(r[:, 1].mean()), "ssim": float(r[:, 2].mean())}
    for kind, h in hits.items():
        res[f"{kind}_accuracy"] = float(np.mean(h)) if h else float("nan")
    mean = lambda v: float(np.mean(v)) if v else float("nan")  # noqa: E731
    res["monochrome_chroma"], res["color_chroma"] = mean(mono), mean(colour)
    res["hair_delta"], res["outside_delta"] = mean(hair_d), mean(outside_d)
    res["background_chroma"], res["background_lightness"] = mean(bg_c), mean(bg_l)
    res["hair_misses"] = dict(misses.most_common())
    res["eye_misses"] = dict(eye_misses.most_common())
    res["combo_eyes_as_hair"] = combo_eye_as_hair / combo_eye_wrong if combo_eye_wrong else float("nan")
    res["outside_delta_by_region"] = {k: mean(v) for k, v in by_region.items()}
    res["l1_by_region"] = {name: float(part / l1_pixels) for name, part in zip(vocab.MASK_LABELS, l1_parts)
                           if l1_pixels}
    res["accessory_delta_by_kind"] = {k: mean(v) for k, v in sorted(by_accessory.items())}
    res["hair_delta_by_accessory"] = {k: mean(v) for k, v in sorted(hair_by_accessory.items())}
    res["cases"] = {k: len(v) for k, v in hits.items()} | {"monochrome": len(mono), "locality": len(hair_d)}
    return res


def colorize_cases(colorizer, cases: list[Case], batch: int = 32, desc: str = "evaluating") -> list[np.ndarray]:
    """Each case through the infer.py path; one sketch and `prepare` per sample, shared by its cases.
    LITERAL cases are coloured with name grounding off (`infer.py --literal`)."""
    prepared = {}
    for case in cases:
        key = id(case.sample)
        if key not in prepared:
            sketch = sketch_array(case.sample.image, colorizer.cfg.xdog)
            prepared[key] = colorizer.prepare(sketch)
    outs: list[np.ndarray | None] = [None] * len(cases)
    grounding = getattr(colorizer, "ground_words", True)
    try:
        for literal in (False, True):
            todo = [i for i, c in enumerate(cases) if (c.kind in LITERAL) == literal]
            colorizer.ground_words = grounding and not literal
            for j in tqdm(range(0, len(todo), batch), desc=desc, unit="batch", leave=False):
                chunk = todo[j:j + batch]
                imgs = colorizer.colorize_prepared([prepared[id(cases[i].sample)] for i in chunk],
                                                   [cases[i].prompt for i in chunk])
                for i, img in zip(chunk, imgs):
                    outs[i] = np.asarray(img)
    finally:
        colorizer.ground_words = grounding
    return outs


def evaluate(colorizer, n: int = 100, size: int = 256, offset: int = 0, hairband_drop: float = 0.0) -> dict:
    """The metrics of `colorizer` on n held-out samples rendered at `size` px."""
    cases, protos = build_cases(n, size, offset, hairband_drop)
    return score(colorize_cases(colorizer, cases), cases, protos) | {"size": size}


def oracle(n: int, size: int, offset: int = 0, hairband_drop: float = 0.0) -> dict:
    """The metrics on ground-truth renders: what a perfect colorizer scores (the swap, pair, phrase,
    combo and locality targets are the sketch re-rendered in the colours the prompt asks for)."""
    cases, protos = build_cases(n, size, offset, hairband_drop)
    return score(oracle_outputs(cases, size, hairband_drop), cases, protos) | {"size": size}


def oracle_outputs(cases: list[Case], size: int, hairband_drop: float = 0.0) -> list[np.ndarray]:
    """The ground-truth render each case asks for (oracle's outputs)."""
    hair_tags, eye_tags = prototype_names("colors"), prototype_names("eyes")
    drawn = dict(monochrome=False, hairband_drop=hairband_drop)
    outs = []
    for c in cases:
        s = c.sample
        if c.kind == "monochrome":
            outs.append(synth.render(s.seed, size, character=s.character, monochrome=True,
                                     hairband_drop=hairband_drop).image)
        elif c.kind == "swap":  # the sketch's own character, in the other character's hair colour
            hair = vocab.load_roster()[c.want].hair_color
            outs.append(synth.render(s.seed, size, character=s.character, hair_color=hair, **drawn).image)
        elif c.kind in ("pair", "pair_2x"):
            outs.append(synth.render(s.seed, s.image.shape[0], character=PAIR[c.want], **drawn).image)
        elif c.kind in ("phrase", "phrase_literal", "combo", "locality"):  # the original, in the hair (and eye) colour asked for
            eye = eye_tags[c.want_eye] if c.want_eye >= 0 else s.eye_color
            outs.append(synth.render(s.seed, size, character="original", hair_color=hair_tags[c.want],
                                     eye_color=eye, **drawn).image)
        else:
            outs.append(s.image)
    return outs


def format_table(results: dict[str, dict]) -> str:
    names = list(results)
    rows = [f"| metric | {' | '.join(names)} |", "|---|" + "---|" * len(names)]
    for key in KEYS:
        vals = []
        for name in names:
            v = results[name].get(key, float("nan"))
            if v != v:  # no case of this kind could be scored (e.g. no iris visible at 64 px with --n 1)
                vals.append("n/a")
            else:
                vals.append(f"{100 * v:.1f}%" if key.endswith("accuracy") else f"{v:.3f}" if key in ("l1", "ssim") else f"{v:.2f}")
        rows.append(f"| {key} | {' | '.join(vals)} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = cli.parser("textcolor-evaluate", __doc__)
    p.add_argument("--checkpoint", type=Path, help="model to evaluate (default: the shipped model)")
    p.add_argument("--baseline", type=Path, help="also evaluate this (e.g. untagged, layout none) checkpoint")
    p.add_argument("--n", type=int, default=100, help="held-out samples (each gives 16 cases)")
    p.add_argument("--size", type=int, default=256,
                   help="px the held-out set is rendered (drawn) at; the model colours it at its working "
                        "resolution, as infer.py does (default 256)")
    p.add_argument("--offset", type=int, default=0,
                   help="held-out render seeds start at EVAL_SEED + OFFSET: another held-out set, e.g. to "
                        f"choose a checkpoint on (--offset {SELECT_OFFSET}) while the default set stays unseen")
    p.add_argument("--hairband-drop", type=float, default=0.0, metavar="D",
                   help="draw the held-out set with hairbands worn up to D (0-0.8) of their height below the "
                        "skull's outline, the crown's hair above them (default 0: as trained)")
    p.add_argument("--device")
    p.add_argument("--oracle", action="store_true", help="also score the ground-truth renders")
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--table", nargs="+", metavar="LABEL=FILE",
                   help="print one table from earlier --json files, a column each (FILE#oracle or FILE#baseline: "
                        "that part of the file), and evaluate nothing")
    args = p.parse_args(argv)
    if args.table:
        return cli.run(lambda: _print_table(args.table))
    if args.n < 1:
        print("error: --n must be ≥ 1", file=sys.stderr)
        return 2
    if args.offset < 0:
        print("error: --offset must be ≥ 0 (held-out seeds below EVAL_SEED could be validation seeds)", file=sys.stderr)
        return 2
    if args.size < MIN_SIZE:
        print(f"error: --size must be ≥ {MIN_SIZE}", file=sys.stderr)
        return 2
    if not 0.0 <= args.hairband_drop <= vocab.MAX_HAIRBAND_DROP:
        print(f"error: --hairband-drop must be in [0, {vocab.MAX_HAIRBAND_DROP}]", file=sys.stderr)
        return 2
    keep_freed_memory()
    return cli.run(lambda: _run(args))


def read_column(spec: str) -> tuple[str, dict]:
    """"LABEL=FILE" or "LABEL=FILE#part" -> (LABEL, the metrics in that --json file or its part)."""
    label, eq, where = spec.partition("=")
    if not eq or not label or not where:
        raise cli.UsageError(f"--table {spec!r}: expected LABEL=FILE or LABEL=FILE#oracle")
    path, _, part = where.partition("#")
    try:
        data = json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise cli.UsageError(f"{path}: not JSON ({e.msg})") from None
    if part:
        if not isinstance(data, dict) or not isinstance(data.get(part), dict):
            raise cli.UsageError(f"{path}: no {part!r} results in it")
        data = data[part]
    if not isinstance(data, dict) or "l1" not in data:
        raise cli.UsageError(f"{path}: not a textcolor.evaluate --json result")
    return label, data


def _print_table(specs: list[str]) -> int:
    print(format_table(dict(read_column(spec) for spec in specs)))
    return 0


def _run(args: argparse.Namespace) -> int:
    scored = str(args.checkpoint or DEFAULT_MODEL)
    print(f"model: {scored}" + ("" if args.checkpoint else " (shipped)"), flush=True)
    model = Colorizer.from_checkpoint(args.checkpoint, device=args.device)
    results = {"model": evaluate(model, args.n, args.size, args.offset, args.hairband_drop)}
    if args.baseline:
        print(f"baseline: {args.baseline}", flush=True)
        results["baseline"] = evaluate(Colorizer.from_checkpoint(args.baseline, device=args.device),
                                       args.n, args.size, args.offset, args.hairband_drop)
    if args.oracle:
        results["oracle"] = oracle(args.n, args.size, args.offset, args.hairband_drop)
    print(format_table(results))
    if args.json:
        out = dict(results["model"])
        out.update({k: v for k, v in results.items() if k != "model"})
        out["checkpoint"] = str(args.checkpoint or "shipped")
        out["checkpoint_path"] = scored
        out["textcolor_version"] = cli.__version__
        out["n"] = args.n
        out["size"] = args.size
        out["offset"] = args.offset
        out["hairband_drop"] = args.hairband_drop
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
