"""Character names as users write them, grounded in the roster's tags.

    ground_name("Hatsune Miku")       -> "hatsune_miku"
    ground_name("Reimu Hakurei")      -> "hakurei_reimu"       (either order)
    ground_name("Hibiki (KanColle)")  -> "hibiki_(kantai_collection)"
    ground_name("marisa")             -> "kirisame_marisa"
    ground_name("long hair")          -> None

A roster tag is Danbooru's spelling of a name: family name first for Japanese names
(`hakurei_reimu`), a series qualifier in brackets where the name alone is ambiguous
(`hibiki_(kantai_collection)`). Users write "Reimu Hakurei", "Hibiki (KanColle)" or just "marisa",
and the text encoder places some of those far from the tag: "hibiki from kancolle" paints the hair
yellow where the tag paints it white (README, "Character names"). A phrase names a roster character
when every word of it that is a word of some character's name (the tag without its qualifier)
belongs to that one character's name. Words that are
colour names ("scarlet" in remilia_scarlet) identify no one on their own, since "scarlet hair" is a
colour, and any phrase that names a hair or eye colour is left to `colorwords`. Other words — series
names and abbreviations, "from", "the" — are ignored, so no table of aliases is needed. Tags the
model was trained on and phrases naming no one or several characters pass through unchanged. A
front end of inference, like colour-name grounding (`infer.py --literal` turns both off).
"""
from __future__ import annotations

import re
from functools import lru_cache

from textcolor.colorwords import color_names, ground_all
from textcolor.tags import tag_text
from textcolor.vocab import default_colors, load_roster

MIN_WORD = 3  # shorter name words ("ai", "yu") occur inside ordinary phrases too often to name anyone


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def name_words(tag: str) -> list[str]:
    """The words of a character tag's name, without its bracketed qualifier:
    `hibiki_(kantai_collection)` -> ["hibiki"], `souryuu_asuka_langley` -> ["souryuu", "asuka", "langley"]."""
    return _words(re.sub(r"\(.*?\)", " ", tag.replace("_", " ")))


@lru_cache(maxsize=1)
def _colour_words() -> frozenset[str]:
    own = {t.split("_")[0] for table in default_colors().values() for t in table}
    return frozenset(own | {n for n in color_names() if " " not in n})


@lru_cache(maxsize=1)
def _owners() -> dict[str, frozenset[str]]:
    """Each name word of the roster -> the character tags whose name has it."""
    owners: dict[str, set[str]] = {}
    for c in load_roster():
        for w in name_words(c.tag):
            owners.setdefault(w, set()).add(c.tag)
    return {w: frozenset(tags) for w, tags in owners.items()}


@lru_cache(maxsize=1)
def _trained_forms() -> frozenset[str]:
    return frozenset(tag_text(c.tag) for c in load_roster())


@lru_cache(maxsize=4096)
def ground_name(phrase: str) -> str | None:
    """The roster tag a free phrase names, or None (see module)."""
    if tag_text(phrase) in _trained_forms() or ground_all(phrase):
        return None
    owners = _owners()
    named = [w for w in _words(phrase) if w in owners]
    if not any(w not in _colour_words() and len(w) >= MIN_WORD for w in named):
        return None
    candidates = frozenset.intersection(*(owners[w] for w in named))   # whose name has every name word
    return next(iter(candidates)) if len(candidates) == 1 else None


def ground_names(items: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """A parsed prompt with each phrase that names a roster character replaced by its tag, at the
    phrase's weight."""
    return [(ground_name(name) or name, weight) for name, weight in items]
