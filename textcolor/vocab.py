"""The vocabulary of the bundled synthetic data: the roster of named characters, the colour tags,
the tag names of hair styles and accessories, and the region labels of a render's mask.

    roster = load_roster()                 # tags/characters.csv -> [Character, ...]
    colors = load_colors()                 # tags/colors.csv -> {"hair": {tag: hex}, "eyes": {...}}
    nearest_color_tag("#e03030", "hair")   # -> "red_hair"

Read by the renderer (textcolor.synth), the training's colour-swap term, the evaluation and the
notebook's helpers; nothing here draws.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path

import numpy as np

from textcolor import TAGS_DIR

HAIR_STYLES = ("long", "twintails", "short", "ponytail", "bob")
STYLE_TAGS = {"long": "long_hair", "twintails": "twintails", "short": "short_hair",
              "ponytail": "ponytail", "bob": "bob_cut"}
MAX_HAIRBAND_DROP = 0.8  # synth: lower, a hairband's inner edge would cross its outer one
ACCESSORIES = ("flat_cap", "beret", "witch_hat", "mob_cap", "hair_bow", "hairclip", "hairband", "none")
ACCESSORY_TAGS = {"flat_cap": ["hat", "flat_cap"], "beret": ["hat", "beret"],
                  "witch_hat": ["hat", "witch_hat"], "mob_cap": ["hat", "mob_cap"],
                  "hair_bow": ["hair_bow"], "hairclip": ["hairclip"], "hairband": ["hairband"],
                  "none": []}
MONO_TAGS = ("monochrome", "greyscale")

# Mask labels. LINE marks pixels touched by black ink (outlines, pupils, lashes): without it,
# the mean colour inside the hair label would be dragged towards black by the outlines.
BACKGROUND, SKIN, HAIR, EYES, OUTFIT, ACCESSORY, LINE = range(7)
MASK_LABELS = ("background", "skin", "hair", "eyes", "outfit", "accessory", "line")

_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


@dataclass(frozen=True)
class Character:
    """A look: a roster row of tags/characters.csv, or an "original" the renderer makes up (tag
    "original", series "")."""
    tag: str
    series: str
    hair_color: str
    hair_tag: str
    hair_style: str
    eye_color: str
    eye_tag: str
    outfit_color: str
    outfit_accent: str
    accessory: str
    accessory_color: str


def load_roster(path: str | Path | None = None) -> list[Character]:
    """The named characters of tags/characters.csv (or another CSV with the same columns)."""
    path = Path(path) if path is not None else TAGS_DIR / "characters.csv"
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    names = [f.name for f in fields(Character)]
    out = []
    for i, row in enumerate(rows, start=2):
        missing = [n for n in names if not row.get(n)]
        if missing:
            raise ValueError(f"{path}:{i}: missing {', '.join(missing)}")
        c = Character(**{n: row[n].strip() for n in names})
        bad = [v for v in (c.hair_color, c.eye_color, c.outfit_color, c.outfit_accent,
                           c.accessory_color) if not _HEX.match(v)]
        if bad or c.hair_style not in HAIR_STYLES or c.accessory not in ACCESSORIES:
            raise ValueError(f"{path}:{i}: bad colour, hair_style or accessory in {c.tag}")
        out.append(c)
    return out


def load_colors(path: str | Path | None = None) -> dict[str, dict[str, str]]:
    """Colour tags for original characters: {"hair": {tag: hex}, "eyes": {tag: hex}}."""
    path = Path(path) if path is not None else TAGS_DIR / "colors.csv"
    table: dict[str, dict[str, str]] = {"hair": {}, "eyes": {}}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            table[row["kind"]][row["tag"]] = row["hex"]
    return table


@lru_cache(maxsize=None)
def default_roster() -> tuple[Character, ...]:
    return tuple(load_roster())


@lru_cache(maxsize=None)
def default_colors() -> dict[str, dict[str, str]]:
    return load_colors()


def hex_to_rgb(h: str) -> tuple[int, int, int]:
    return int(h[1:3], 16), int(h[3:5], 16), int(h[5:7], 16)


def rgb_to_hex(rgb) -> str:
    return "#" + "".join(f"{int(v):02x}" for v in rgb)


def _lab(rgb) -> np.ndarray:
    """sRGB 0..255 → CIELAB (D65), for naming an arbitrary colour by its nearest colour tag."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    c = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = m @ c / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def nearest_color_tag(hex_color: str, kind: str) -> str:
    """The colour tag ("red_hair", "blue_eyes" ...) closest in CIELAB to hex_color."""
    table = default_colors()[kind]
    lab = _lab(hex_to_rgb(hex_color))
    return min(table, key=lambda t: float(np.linalg.norm(_lab(hex_to_rgb(table[t])) - lab)))


def resolve_color(value: str, kind: str) -> tuple[str, str]:
    """A hex colour or a colour tag → (hex, colour tag)."""
    table = default_colors()[kind]
    if value in table:
        return table[value], value
    if _HEX.match(value):
        return value.lower(), nearest_color_tag(value, kind)
    raise ValueError(f"{kind} colour {value!r} is neither #rrggbb nor one of: {', '.join(table)}")
