"""Character names as users write them, grounded in the roster's tags (textcolor.charnames)."""
import pytest

from textcolor import evaluate
from textcolor.charnames import ground_name, ground_names, name_words
from textcolor.vocab import load_roster


@pytest.mark.parametrize("phrase, tag", [
    ("Hatsune Miku", "hatsune_miku"), ("miku", "hatsune_miku"), ("Miku Hatsune", "hatsune_miku"),
    ("Reimu Hakurei", "hakurei_reimu"), ("Hibiki (KanColle)", "hibiki_(kantai_collection)"),
    ("akatsuki from kancolle", "akatsuki_(kantai_collection)"), ("MARISA", "kirisame_marisa"),
    ("Remilia Scarlet", "remilia_scarlet"), ("Asuka Langley Soryu", "souryuu_asuka_langley"),
])
def test_names_as_written_ground_to_the_roster_tag(phrase, tag):
    assert ground_name(phrase) == tag


@pytest.mark.parametrize("phrase", [
    "hatsune_miku", "hibiki (kantai collection)",   # the tags themselves pass through
    "scarlet",                  # a colour word alone names no one: remilia_scarlet's "scarlet"
    "scarlet hair", "miku with red hair",   # hair and eye colour phrases are colorwords' to read
    "reimu and marisa",         # two characters: no single tag
    "kantai collection",        # a series is not a character (hibiki and akatsuki share it)
    "long hair", "1girl", "",
])
def test_phrases_that_name_no_single_character_pass_through(phrase):
    assert ground_name(phrase) is None


def test_name_words_drop_the_qualifier():
    assert name_words("hibiki_(kantai_collection)") == ["hibiki"]
    assert name_words("souryuu_asuka_langley") == ["souryuu", "asuka", "langley"]


def test_ground_names_keeps_weights_and_other_tags():
    assert ground_names([("1girl", 1.0), ("Miku Hatsune", 1.3)]) == [("1girl", 1.0), ("hatsune_miku", 1.3)]


def test_every_evaluation_form_names_its_character_and_is_not_the_tag():
    """The evaluation's written names (evaluate.name_forms) all reach their own tag, none is the tag."""
    for c in load_roster():
        for form in evaluate.name_forms(c.tag, c.series):
            assert form != c.tag and ground_name(form) == c.tag, form


def test_colorizer_hears_the_name_as_the_tag_unless_literal(tiny_checkpoint):
    import torch

    from textcolor.colorize import Colorizer
    c = Colorizer.from_checkpoint(tiny_checkpoint, device="cpu")
    assert c.heard("1girl, Reimu Hakurei") == [("1girl", 1.0), ("hakurei_reimu", 1.0)]
    assert torch.equal(c.embed(["Reimu Hakurei"]), c.embed(["hakurei_reimu"]))
    c.ground_words = False
    assert c.heard("Reimu Hakurei") == [("reimu hakurei", 1.0)]   # parse_prompt lowercases
