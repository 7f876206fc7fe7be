"""Colour words a user types, grounded in the names people give colours.

    ground("crimson hair")        -> "red_hair"
    ground("silver-haired girl")  -> "silver_hair"
    ground("eyes like the sea")   -> None        (no colour name before the kind word)
    ground_prompt([("1girl", 1.0), ("navy blue hair", 1.2)]) -> [("1girl", 1.0), ("blue_hair", 1.2)]

The model knows twelve hair and six eye colours by their tags. A phrase such as "tangerine hair"
reaches it through the text encoder, whose space places many colour words nearer another colour's
tag than their own (README, "Results"). Grounding reads the colour name instead: the longest run
of words before "hair"/"haired"/"eyes"/"eyed" that names a colour in the xkcd colour survey
(954 names people gave to colours, via matplotlib) or in CSS4, and takes the colour tag of that
kind nearest to the named colour (`nearest_tag`). Phrases that name
no colour, tags the model was trained on and everything that is not a hair or eye phrase pass
through unchanged. It is a front end of inference (Colorizer, `infer.py --literal` turns it
off); training sees the words as written.
"""
from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
from matplotlib.colors import CSS4_COLORS, XKCD_COLORS, to_hex, to_rgb
from skimage.color import deltaE_cmc, rgb2lab

from textcolor.tags import tag_text
from textcolor.vocab import default_colors, nearest_color_tag

KIND_WORDS = {"hair": {"hair", "haired"}, "eyes": {"eyes", "eye", "eyed"}}
MAX_NAME_WORDS = 3
NEUTRAL = 10.0  # CIELAB chroma below which a colour name is a grey


@lru_cache(maxsize=1)
def color_names() -> dict[str, str]:
    """Colour name ("dark blue", "crimson") -> hex. xkcd's survey names first, CSS4 fills in, and
    the first word of our own colour tags last ("blonde")."""
    names = {tag.split("_")[0]: hex_ for table in default_colors().values() for tag, hex_ in table.items()}
    names.update({name.lower(): to_hex(value) for name, value in CSS4_COLORS.items()})
    names.update({name.removeprefix("xkcd:").lower(): to_hex(value) for name, value in XKCD_COLORS.items()})
    return names


def nearest_tag(hex_color: str, kind: str) -> str:
    """The colour tag of `kind` nearest to hex_color. A coloured name is matched by CMC l:c = 2:1,
    the colour-difference formula for "would pass as the same colour": lightness counts half, so
    navy stays blue rather than black and pale pink stays pink rather than white. A near-neutral
    name (chroma < NEUTRAL) is matched by plain CIELAB distance (vocab.nearest_color_tag): CMC's
    chroma weight shrinks to nothing at the grey axis and would rank greys by tint rather than by
    lightness."""
    lab = lambda h: rgb2lab(np.array([[to_rgb(h)]]))[0, 0]  # noqa: E731
    target = lab(hex_color)
    if np.hypot(target[1], target[2]) < NEUTRAL:
        return nearest_color_tag(hex_color, kind)
    table = default_colors()[kind]
    return min(table, key=lambda t: float(deltaE_cmc(lab(table[t]), target, kL=2, kC=1)))


@lru_cache(maxsize=1)
def _trained_forms() -> frozenset[str]:
    """Every colour tag as tag_text writes it: phrases the model was trained on, never grounded."""
    return frozenset(tag_text(t) for table in default_colors().values() for t in table)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def ground(tag: str) -> str | None:
    """The colour tag a free hair or eye phrase names, or None when it names none (see module)."""
    if tag_text(tag) in _trained_forms():
        return None
    words = _words(tag)
    names = color_names()
    for i, word in enumerate(words):
        kind = next((k for k, ws in KIND_WORDS.items() if word in ws), None)
        if kind is None:
            continue
        # the longest name ending at the kind word ("jet black hair"), else the nearest single
        # colour word before it ("red long hair")
        spans = [words[i - n:i] for n in range(min(MAX_NAME_WORDS, i), 0, -1)] + [[w] for w in reversed(words[:i - 1])]
        for span in spans:
            name = " ".join(span)
            if name in names:
                return nearest_tag(names[name], kind)
    return None


def ground_prompt(items: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """A parsed prompt with each grounded phrase replaced by its colour tag, weights kept."""
    return [(ground(name) or name, weight) for name, weight in items]
