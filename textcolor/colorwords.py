"""Colour words a user types, grounded in the names people give colours.

    ground("crimson hair")        -> "red_hair"
    ground("silver-haired girl")  -> "silver_hair"
    ground("eyes like the sea")   -> None        (no colour name before the kind word)
    ground_all("her hair is red and her eyes are green") -> ["red_hair", "green_eyes"]
    ground_prompt([("1girl", 1.0), ("navy blue hair", 1.2)]) -> [("1girl", 1.0), ("blue_hair", 1.2)]

The model knows twelve hair and six eye colours by their tags. A phrase such as "tangerine hair"
reaches it through the text encoder, whose space places many colour words nearer another colour's
tag than their own (README, "Results"). Grounding reads the colour name instead. For each kind
word in a phrase ("hair"/"haired", "eyes"/"eye"/"eyed"), looking no further than the neighbouring
kind words: the longest run of words ending at it that names a colour ("jet black hair"), else a
name after it through linking words ("hair is red", "eyes of gold", "hair: teal"), else the
nearest colour word before it ("red long hair"). A colour name is one of our own tags' colour
words ("blue" in "blue-eyed" is blue_eyes), a hair-colour word the surveys lack (HAIR_WORDS:
"raven", "ginger"), or a name in the xkcd colour survey (954 names people gave to colours, via
matplotlib) or CSS4, which maps to the colour tag of that kind nearest to the named colour
(`nearest_tag`). A compound name ending in one of our colour words is a kind of that colour
("navy blue hair" is blue_hair, "light brown hair" brown_hair, "emerald green" green), a
lightness word before a name that is not one drops out (MODIFIERS: "pale crimson" is crimson),
and a grey no tag of the kind has names nothing ("grey eyes" stays as written). A few nouns name a hair colour with no
kind word (HAIR_NOUNS: "redhead", "blonde"); hair-style nouns stand for the hair when a colour is
named right at them (STYLE_WORDS: "red twintails", "silver ponytail"). One phrase may name
several colours ("red hair and blue eyes"); `ground_prompt` gives each its own tag at the
phrase's weight. Phrases that name no colour, tags the model was trained on and everything that
is not a hair or eye phrase pass through unchanged. It is a front end of
inference (Colorizer, `infer.py --literal` turns it off); training sees the words as written.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

import numpy as np
from matplotlib.colors import CSS4_COLORS, XKCD_COLORS, to_hex, to_rgb
from skimage.color import deltaE_cie76, deltaE_ciede2000, deltaE_cmc, rgb2lab

from textcolor.tags import tag_text
from textcolor.vocab import default_colors, nearest_color_tag

KIND_WORDS = {"hair": {"hair", "haired"}, "eyes": {"eyes", "eye", "eyed"}}
# Hair-style nouns that stand for the hair ("red twintails", "silver ponytail"). They name a colour only
# through a name right before them or linked after them, never a colour word further back ("red
# ribbon, twintails" is not red hair).
STYLE_WORDS = {"twintails", "twintail", "pigtails", "ponytail", "ponytails", "braid", "braids", "locks",
               "tresses", "curls", "ringlets", "bob", "bun", "buns", "mane", "drills"}
MAX_NAME_WORDS = 3
LINKS = {"is", "are", "was", "of", "in", ":", "colour", "color", "coloured", "colored", "that", "the", "a", "dyed"}
# Words that change a colour's lightness or purity, not its name: "pale crimson" is a crimson, "hair
# of pure white" white (before one of our colour words any name counts: "navy blue" is blue).
MODIFIERS = {"light", "dark", "pale", "deep", "bright", "pastel", "dusty", "dull", "vivid", "soft", "muted",
             "rich", "faded", "medium", "pure", "very"}
# English hair-colour words no colour survey lists as a colour (with a kind word: "raven hair")
HAIR_WORDS = {"blond": "blonde_hair", "raven": "black_hair", "ebony": "black_hair", "flaxen": "blonde_hair",
              "honey": "blonde_hair", "ash": "silver_hair", "ginger": "orange_hair", "platinum": "blonde_hair",
              "silvery": "silver_hair", "snowy": "white_hair"}
# ... and nouns that name a hair colour on their own ("a redhead", "blonde girl")
HAIR_NOUNS = {"redhead": "red_hair", "brunette": "brown_hair", "blonde": "blonde_hair", "blond": "blonde_hair"}
NEUTRAL = 10.0  # CIELAB chroma below which a colour name is a grey


@lru_cache(maxsize=1)
def color_names() -> dict[str, str]:
    """Colour name ("dark blue", "crimson") -> hex. xkcd's survey names first, CSS4 fills in, and
    the first word of our own colour tags last ("blonde")."""
    names = {tag.split("_")[0]: hex_ for table in default_colors().values() for tag, hex_ in table.items()}
    names.update({name.lower(): to_hex(value) for name, value in CSS4_COLORS.items()})
    names.update({name.removeprefix("xkcd:").lower(): to_hex(value) for name, value in XKCD_COLORS.items()})
    return names


def _lab(hex_color: str) -> np.ndarray:
    return rgb2lab(np.array([[to_rgb(hex_color)]]))[0, 0]


def _is_neutral(hex_color: str) -> bool:
    return float(np.hypot(*_lab(hex_color)[1:])) < NEUTRAL


@lru_cache(maxsize=None)
def _has_neutral(kind: str) -> bool:
    """Whether `kind` has a grey tag (hair: white, silver, black; eyes: none)."""
    return any(_is_neutral(h) for h in default_colors()[kind].values())


def _cmc21(tag_lab: np.ndarray, target: np.ndarray) -> np.ndarray:
    return deltaE_cmc(tag_lab, target, kL=2, kC=1)


def _de2000_l2(tag_lab: np.ndarray, target: np.ndarray) -> np.ndarray:
    return deltaE_ciede2000(tag_lab, target, kL=2)


# name -> (colour difference over [N, 3] CIELAB rows, coloured names only among coloured tags)
RULES = {"cie76": (deltaE_cie76, False), "cmc21": (_cmc21, False), "de2000": (deltaE_ciede2000, True),
         "de2000_l2": (_de2000_l2, True)}
RULE = "de2000_l2"


@lru_cache(maxsize=None)
def _tag_labs(kind: str, chromatic_only: bool) -> tuple[list[str], np.ndarray]:
    table = {t: h for t, h in default_colors()[kind].items() if not (chromatic_only and _is_neutral(h))}
    return list(table), np.stack([_lab(h) for h in table.values()])


def nearest_tag(hex_color: str, kind: str, rule: str = RULE) -> str | None:
    """The colour tag of `kind` nearest to hex_color. A coloured name is matched among the coloured
    tags by CIEDE2000 with kL = 2 (lightness counts half: navy stays blue rather than black, pale
    pink pink rather than white; CIEDE2000's hue terms keep saturated blues such as "royal blue" or
    "sapphire" blue, where CIELAB's hue angle drifts to purple). Of the rules tried, it agrees most
    often with the xkcd survey's own names (`naming_agreement`; README, `infer.py` under Usage). A
    near-neutral name (chroma < NEUTRAL) is matched by plain CIELAB distance
    (vocab.nearest_color_tag): colour-difference formulas weigh chroma to nothing at the grey axis
    and would rank greys by tint rather than by lightness; None when `kind` has no grey tag ("grey
    eyes": brown_eyes would paint a colour the user did not ask for)."""
    if _is_neutral(hex_color):
        return nearest_color_tag(hex_color, kind) if _has_neutral(kind) else None
    difference, chromatic_only = RULES[rule]
    tags, labs = _tag_labs(kind, chromatic_only)
    return tags[int(np.argmin(difference(labs, _lab(hex_color)[None])))]


def naming_agreement(kind: str, rule: str = RULE) -> tuple[int, int]:
    """How often `nearest_tag` gives the tag a survey name itself ends in: of the xkcd names of two
    or more words whose last word is one of our colour words of `kind` ("navy blue", "muddy brown",
    "yellowish green"; for hair "yellow" and "grey" stand for blonde and silver), how many of their
    colours `rule` maps to that word's tag. (right, of how many)."""
    own = dict(_own_tags(kind))
    if kind == "hair":
        own |= {"yellow": own["blonde"], "grey": own["silver"], "gray": own["silver"]}
    right = total = 0
    for name, value in XKCD_COLORS.items():
        words = name.removeprefix("xkcd:").replace("/", " ").split()
        if len(words) > 1 and words[-1] in own:
            total += 1
            right += nearest_tag(to_hex(value), kind, rule) == own[words[-1]]
    return right, total


@lru_cache(maxsize=1)
def _trained_forms() -> frozenset[str]:
    """Every colour tag as tag_text writes it: phrases the model was trained on, never grounded."""
    return frozenset(tag_text(t) for table in default_colors().values() for t in table)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+|:", text.lower())


@lru_cache(maxsize=None)
def _own_tags(kind: str) -> dict[str, str]:
    """The colour word of each of our tags of `kind` ("blue" -> "blue_eyes"): a user's "blue-eyed"
    means that tag, whatever colour the survey's "blue" is nearest to."""
    return {tag.split("_")[0]: tag for tag in default_colors()[kind]}


def _tag_for(name: str, kind: str) -> str | None:
    """The colour tag of `kind` a colour name stands for, or None when it names no colour or a grey
    no tag of `kind` has (nearest_tag)."""
    own = _own_tags(kind)
    if name in own:
        return own[name]
    if kind == "hair" and name in HAIR_WORDS:
        return HAIR_WORDS[name]
    first, _, rest = name.partition(" ")
    head = name.rpartition(" ")[2]
    if rest and head in own:
        # an English compound colour name is a kind of its last word: "navy blue" and "light blue"
        # are blues, "emerald green" a green, whatever our palette's blue is nearest to
        return own[head]
    names = color_names()
    if name in names:
        return nearest_tag(names[name], kind)
    return _tag_for(rest, kind) if first in MODIFIERS and rest else None


def _first_tag(candidates: Iterable[str], kind: str) -> str | None:
    """The tag of the first candidate name that names a colour."""
    return next((tag for tag in (_tag_for(name, kind) for name in candidates) if tag), None)


def _ground_kind(words: list[str], i: int, lo: int, hi: int, kind: str, near_only: bool = False) -> str | None:
    """The colour named for the kind word words[i], looking no further back than lo and no
    further on than hi (the neighbouring kind words): the name ending at it ("jet black hair"), a
    name after it through linking words ("hair is red", "eyes of gold", "hair: teal"), else, unless
    near_only, the nearest colour word before it ("red long hair"). Longer names are tried first."""
    ending = (" ".join(words[i - n:i]) for n in range(min(MAX_NAME_WORDS, i - lo), 0, -1))
    tag = _first_tag(ending, kind)
    if tag:
        return tag
    j = i + 1
    while j < hi and words[j] in LINKS:
        j += 1
    if i + 1 < j < hi:
        tag = _first_tag((" ".join(words[j:j + n]) for n in range(min(MAX_NAME_WORDS, hi - j), 0, -1)), kind)
        if tag:
            return tag
    if near_only:
        return None
    return _first_tag((words[k] for k in range(i - 2, lo - 1, -1)), kind)   # words[i - 1] was tried above


def ground_all(phrase: str) -> list[str]:
    """Every colour tag a free phrase names, in order: "red hair and blue eyes" -> ["red_hair",
    "blue_eyes"], "redhead" -> ["red_hair"]; [] for tags the model was trained on and phrases
    naming no colour (see module)."""
    if tag_text(phrase) in _trained_forms():
        return []
    words = _words(phrase)
    kinds = sorted([(i, k, False) for i, w in enumerate(words) for k, ws in KIND_WORDS.items() if w in ws]
                   + [(i, "hair", True) for i, w in enumerate(words) if w in STYLE_WORDS])
    found = [(i, HAIR_NOUNS[w]) for i, w in enumerate(words) if w in HAIR_NOUNS]
    for n, (i, kind, near_only) in enumerate(kinds):
        lo = kinds[n - 1][0] + 1 if n else 0
        hi = kinds[n + 1][0] if n + 1 < len(kinds) else len(words)
        tag = _ground_kind(words, i, lo, hi, kind, near_only)
        if tag:
            found.append((i, tag))
    tags = [t for _, t in sorted(found)]
    return list(dict.fromkeys(tags))   # "blonde-haired blonde" names one colour once


def ground(tag: str) -> str | None:
    """The first colour tag a free hair or eye phrase names, or None when it names none (see module)."""
    found = ground_all(tag)
    return found[0] if found else None


def ground_prompt(items: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """A parsed prompt with each grounded phrase replaced by the colour tags it names, each with the
    phrase's weight ("red hair and blue eyes:1.2" -> red_hair and blue_eyes at 1.2)."""
    return [(tag, weight) for name, weight in items for tag in (ground_all(name) or [name])]


def main() -> None:
    """Print how often each matching rule agrees with the survey's own names (`naming_agreement`)."""
    print("| rule | hair | eyes |\n|---|---|---|")
    for rule in RULES:
        cells = [f"{r}/{n} = {100 * r / n:.1f}%" for r, n in (naming_agreement(k, rule) for k in ("hair", "eyes"))]
        print(f"| {rule}{' (used)' if rule == RULE else ''} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
