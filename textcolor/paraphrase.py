"""Paraphrases of the colour tags, so training prompts also say what a user would type.

tags/paraphrases.csv maps each colour tag of tags/colors.csv to phrases meaning that colour
("redhead", "ruby hair", "girl with red hair" for red_hair). During training a colour tag in a
prompt can be swapped for one of them:

    table = load_paraphrases()                          # {"red_hair": ["red-haired", ...], ...}
    gen = torch.Generator().manual_seed(0)
    paraphrase("red_hair", gen, table)                  # "red_hair", "red hair" or a phrase
    paraphrase_prompt(parse_prompt("1girl, red_hair:1.2, blue_eyes"), 0.5, gen, table)
    -> [("1girl", 1.0), ("cherry red hair", 1.2), ("blue_eyes", 1.0)]    # for some seed

The evaluation's held-out phrases (textcolor.evaluate.PHRASES, "crimson hair" ...) and their
colour words are deliberately absent from the table; tests/test_paraphrase.py enforces that.

Decisions:
  * a phrase must be one prompt tag as parse_prompt would read it back (lowercase, no comma or
    line break, no trailing `:number`), so swapping it in never changes the prompt's structure;
  * a phrase may not be a written form of any colour tag ("red hair"): those are implicit;
  * a phrase (compared by `tag_text`) appears at most once in the whole table;
  * randomness comes only from the torch.Generator passed in: the same seed gives the same
    prompts, on any machine.

Pure: reads two small CSV files, imports nothing heavy.
"""
from __future__ import annotations

import csv
from pathlib import Path

import torch

from textcolor import TAGS_DIR
from textcolor.tags import parse_prompt, tag_text

HEADER = ["tag", "phrase"]


def _color_tags(path: str | Path | None) -> list[str]:
    """Tag column of tags/colors.csv (or another file with the same columns)."""
    path = Path(path) if path is not None else TAGS_DIR / "colors.csv"
    with open(path, newline="", encoding="utf-8") as f:
        return [row["tag"].strip() for row in csv.DictReader(f) if row.get("tag")]


def load_paraphrases(path: str | Path | None = None,
                     colors: str | Path | None = None) -> dict[str, list[str]]:
    """tags/paraphrases.csv (columns `tag,phrase`) → {tag: [phrase, ...]}, in file order.

    Raises ValueError, one line naming file and line, on a malformed file: wrong header or field
    count, an empty field, a tag not in colors.csv, a phrase that is not a single prompt tag,
    a phrase that is itself a colour tag, or a phrase listed twice."""
    path = Path(path) if path is not None else TAGS_DIR / "paraphrases.csv"
    known = _color_tags(colors)
    known_texts = {tag_text(t) for t in known}
    table: dict[str, list[str]] = {}
    seen: dict[str, str] = {}                  # tag_text(phrase) → its tag
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = csv.reader(f, strict=True)
            header = next(rows, None)
            if header is None or [h.strip() for h in header] != HEADER:
                raise ValueError(f"{path}:1: header must be {','.join(HEADER)}, got {header!r}")
            for row in rows:
                line = rows.line_num
                if not row or not any(cell.strip() for cell in row):
                    continue                   # blank line
                if len(row) != 2:
                    raise ValueError(f"{path}:{line}: expected 2 fields (tag,phrase), got {len(row)}")
                tag, phrase = (cell.strip() for cell in row)
                if not tag or not phrase:
                    raise ValueError(f"{path}:{line}: empty tag or phrase")
                if tag not in known:
                    raise ValueError(f"{path}:{line}: unknown tag {tag!r} (not in colors.csv)")
                if parse_prompt(phrase) != [(phrase, 1.0)]:
                    raise ValueError(f"{path}:{line}: phrase {phrase!r} is not a single lowercase "
                                     "prompt tag (no comma, line break or :weight)")
                key = tag_text(phrase)
                if key in known_texts:
                    raise ValueError(f"{path}:{line}: phrase {phrase!r} is a colour tag itself")
                if key in seen:
                    raise ValueError(f"{path}:{line}: phrase {phrase!r} already listed "
                                     f"for {seen[key]}")
                seen[key] = tag
                table.setdefault(tag, []).append(phrase)
    except (csv.Error, UnicodeDecodeError) as err:
        reason = " ".join(str(err).split())
        raise ValueError(f"{path}: not a readable CSV file ({reason})") from None
    return table


def paraphrase(tag: str, gen: torch.Generator, table: dict[str, list[str]]) -> str:
    """One written form of `tag` drawn uniformly with `gen`: the tag as is (`red_hair`), spaced
    (`red hair`), or one of its paraphrases. A tag with no paraphrases comes back unchanged and
    draws nothing from `gen`."""
    phrases = table.get(tag)
    if not phrases:
        return tag
    choices = list(dict.fromkeys([tag, tag.replace("_", " "), *phrases]))
    return choices[int(torch.randint(len(choices), (1,), generator=gen))]


def paraphrase_prompt(items: list[tuple[str, float]], p: float, gen: torch.Generator,
                      table: dict[str, list[str]]) -> list[tuple[str, float]]:
    """Parsed prompt (parse_prompt's [(tag, weight)]) with each colour tag of `table` replaced,
    with probability p, by paraphrase(tag); weights, order and all other tags are kept.

    A colour tag is recognised by its `tag_text`, so `red hair` counts as `red_hair`. Each colour
    tag draws one uniform number from `gen` (whatever p is), and one more when it is replaced."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"paraphrase probability must be in [0, 1], got {p!r}")
    by_text = {tag_text(tag): tag for tag in table}
    out = []
    for name, weight in items:
        tag = by_text.get(tag_text(name))
        if tag is not None and float(torch.rand((), generator=gen)) < p:
            name = paraphrase(tag, gen, table)
        out.append((name, weight))
    return out
