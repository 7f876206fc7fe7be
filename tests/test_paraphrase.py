"""Tests for tags/paraphrases.csv and textcolor.paraphrase.

The table must keep the evaluation honest: phrase_accuracy in textcolor.evaluate measures
generalisation to phrasings never seen in training, so none of its phrases, and none of their
distinctive colour words, may be in the training-time paraphrase table."""
from __future__ import annotations

import csv
import re

import pytest
import torch

from textcolor import TAGS_DIR
from textcolor.evaluate import PHRASES
from textcolor.paraphrase import load_paraphrases, paraphrase, paraphrase_prompt
from textcolor.tags import parse_prompt, tag_text

# Distinctive colour words of the evaluation phrases that are not the tag's own colour word
# ("silver" in "silver-haired girl" for silver_hair is fine). test_forbidden_words_cover_eval
# checks this list against PHRASES, so a new evaluation phrase cannot slip past it.
FORBIDDEN = ("crimson", "scarlet", "snow", "golden", "gold", "azure", "emerald", "teal", "rose",
             "violet", "chestnut", "jet", "tangerine")
GENERIC = {"hair", "haired", "girl", "eyes", "eyed"}


def _color_rows() -> list[dict[str, str]]:
    with open(TAGS_DIR / "colors.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", tag_text(text).lower())


TABLE = load_paraphrases()
COLORS = {row["tag"]: row["kind"] for row in _color_rows()}
ALL = [(tag, phrase) for tag, phrases in TABLE.items() for phrase in phrases]


# ---------------------------------------------------------------------------------------------
# The shipped table

def test_every_color_tag_has_paraphrases():
    assert set(TABLE) == set(COLORS)
    for tag in COLORS:
        assert len(TABLE[tag]) >= 8, (tag, len(TABLE[tag]))


def test_forbidden_words_cover_eval():
    """Every word of an evaluation phrase is generic, the tag's own colour word, or forbidden."""
    assert set(PHRASES.values()) <= set(COLORS)
    for phrase, tag in PHRASES.items():
        own = tag.split("_")[0]
        extra = set(_words(phrase)) - GENERIC - {own} - set(FORBIDDEN)
        assert not extra, (phrase, extra)


def test_no_eval_phrase_in_table():
    held_out = {tag_text(p).lower() for p in PHRASES}
    # also close variants that differ only in punctuation: "silver haired girl"
    held_out_words = {tuple(_words(p)) for p in PHRASES}
    for tag, phrase in ALL:
        assert tag_text(phrase).lower() not in held_out, (tag, phrase)
        assert tuple(_words(phrase)) not in held_out_words, (tag, phrase)


def test_no_forbidden_word_in_table():
    """Whole words, and also their inflections ("snowy", "roses"): a word may not start with one."""
    whole = re.compile(r"\b(?:%s)\b" % "|".join(FORBIDDEN))
    for tag, phrase in ALL:
        assert not whole.search(tag_text(phrase).lower()), (tag, phrase)
        for word in _words(phrase):
            assert not word.startswith(FORBIDDEN), (tag, phrase, word)


def test_no_phrase_under_two_tags():
    owner: dict[str, str] = {}
    for tag, phrase in ALL:
        key = " ".join(_words(phrase))       # "red-haired" and "red haired" count as one
        assert owner.setdefault(key, tag) == tag, (phrase, owner[key], tag)


def test_phrases_name_the_right_part():
    """Eye phrases talk about eyes; hair phrases never do."""
    for tag, phrase in ALL:
        eyes = bool(re.search(r"eye|iris|irises", phrase))
        assert eyes == (COLORS[tag] == "eyes"), (tag, phrase)


def test_phrases_are_single_prompt_tags():
    for tag, phrase in ALL:
        assert parse_prompt(phrase) == [(phrase, 1.0)], phrase
        assert tag_text(phrase) not in {tag_text(t) for t in COLORS}, phrase


# ---------------------------------------------------------------------------------------------
# load_paraphrases on broken files

@pytest.mark.parametrize("text, message", [
    ("", "header"),
    ("tag,text\nred_hair,ruby hair\n", "header"),
    ("tag,phrase\nred_hair\n", "2 fields"),
    ("tag,phrase\nred_hair,ruby hair,extra\n", "2 fields"),
    ("tag,phrase\nred_hair,\n", "empty"),
    ("tag,phrase\nmagenta_hair,magenta hair\n", "unknown tag"),
    ('tag,phrase\nred_hair,"ruby hair, long hair"\n', "single"),
    ("tag,phrase\nred_hair,Ruby Hair\n", "single"),
    ("tag,phrase\nred_hair,ruby hair:2\n", "single"),
    ("tag,phrase\nred_hair,blue_hair\n", "colour tag"),
    ("tag,phrase\nred_hair,red hair\n", "colour tag"),
    ("tag,phrase\nred_hair,ruby hair\nblue_hair,ruby_hair\n", "already listed"),
    ('tag,phrase\nred_hair,"ruby hair\n', "CSV"),
])
def test_malformed_table_raises(tmp_path, text, message):
    path = tmp_path / "p.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message) as info:
        load_paraphrases(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_bad_encoding_raises(tmp_path):
    path = tmp_path / "p.csv"
    path.write_bytes(b"tag,phrase\nred_hair,r\xff hair\n")
    with pytest.raises(ValueError, match="CSV"):
        load_paraphrases(path)


def test_small_table_loads(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("tag,phrase\nred_hair,ruby hair\n\nblue_eyes,sapphire eyes\nred_hair,redhead\n")
    assert load_paraphrases(path) == {"red_hair": ["ruby hair", "redhead"],
                                      "blue_eyes": ["sapphire eyes"]}


# ---------------------------------------------------------------------------------------------
# paraphrase / paraphrase_prompt

def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_paraphrase_draws_every_form():
    forms = {"red_hair", "red hair", *TABLE["red_hair"]}
    gen = _gen(0)
    drawn = {paraphrase("red_hair", gen, TABLE) for _ in range(2000)}
    assert drawn == forms


def test_paraphrase_deterministic():
    a = [paraphrase("blue_eyes", g, TABLE) for g in [_gen(7)] for _ in range(50)]
    b = [paraphrase("blue_eyes", g, TABLE) for g in [_gen(7)] for _ in range(50)]
    assert a == b and len(set(a)) > 5


def test_paraphrase_unknown_tag_unchanged():
    gen = _gen(3)
    state = gen.get_state()
    assert paraphrase("long_hair", gen, TABLE) == "long_hair"
    assert paraphrase("red_hair", gen, {}) == "red_hair"
    assert torch.equal(gen.get_state(), state)          # nothing drawn


PROMPT = parse_prompt("1girl, red_hair:1.5, long_hair, blue eyes, hatsune_miku, smile:0.5, "
                      "silver_hair")


def test_prompt_p0_unchanged():
    assert paraphrase_prompt(PROMPT, 0.0, _gen(0), TABLE) == PROMPT


def test_prompt_p1_replaces_every_color_tag_and_nothing_else():
    color = {i for i, (name, _) in enumerate(PROMPT) if tag_text(name) in
             {tag_text(t) for t in TABLE}}
    assert len(color) == 3
    changed: set[int] = set()
    for seed in range(40):
        out = paraphrase_prompt(PROMPT, 1.0, _gen(seed), TABLE)
        assert len(out) == len(PROMPT)
        for i, ((name, weight), (new, new_weight)) in enumerate(zip(PROMPT, out)):
            assert new_weight == weight
            if i in color:
                tag = next(t for t in TABLE if tag_text(t) == tag_text(name))
                assert new in {tag, tag_text(tag), *TABLE[tag]}
                if tag_text(new) != tag_text(name):
                    changed.add(i)
            else:
                assert new == name
    assert changed == color


def test_prompt_deterministic_and_p_between():
    a = [paraphrase_prompt(PROMPT, 0.5, g, TABLE) for g in [_gen(11)] for _ in range(30)]
    b = [paraphrase_prompt(PROMPT, 0.5, g, TABLE) for g in [_gen(11)] for _ in range(30)]
    assert a == b
    kept = sum(out[1][0] == "red_hair" for out in a)
    assert 0 < kept < 30


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan")])
def test_prompt_bad_p(p):
    with pytest.raises(ValueError):
        paraphrase_prompt(PROMPT, p, _gen(0), TABLE)
