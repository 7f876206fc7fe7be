"""Colour phrases grounded by their colour name (textcolor.colorwords)."""
import pytest

from textcolor import colorwords, evaluate
from textcolor.tags import parse_prompt, tag_text
from textcolor.vocab import default_colors


@pytest.mark.parametrize("phrase, tag", [("scarlet hair", "red_hair"), ("navy blue hair", "blue_hair"),
                                         ("Girl with SKY-BLUE eyes", "blue_eyes"), ("pale pink hair", "pink_hair"),
                                         ("dark brown hair", "brown_hair"), ("red long hair", "red_hair"),
                                         ("amber eyes", "yellow_eyes"), ("platinum blonde hair", "blonde_hair")])
def test_colour_names_ground_to_the_nearest_tag_of_their_kind(phrase, tag):
    assert colorwords.ground(phrase) == tag


@pytest.mark.parametrize("phrase", ["long_hair", "hair_bow", "very_long_hair", "hatsune_miku", "monochrome",
                                    "eyes like the sea", "red_hair", "red hair", "blue_eyes", "1girl", ""])
def test_everything_else_passes_through(phrase):
    """Tags the model was trained on, style tags and phrases naming no colour are left as written."""
    assert colorwords.ground(phrase) is None


@pytest.mark.parametrize("phrase, tags", [
    ("red hair and blue eyes", ["red_hair", "blue_eyes"]),
    ("a girl with long silver hair and red eyes", ["silver_hair", "red_eyes"]),
    ("her hair is scarlet and her eyes are emerald", ["red_hair", "green_eyes"]),
    ("hair: teal", ["aqua_hair"]), ("eyes of gold", ["yellow_eyes"]),
    ("green eyes, long hair", ["green_eyes"]),        # "long" names no colour: the hair is left alone
    ("redhead", ["red_hair"]), ("blonde girl with blue eyes", ["blonde_hair", "blue_eyes"]),
    ("raven-haired girl", ["black_hair"]), ("long blonde hair", ["blonde_hair"]),
    ("red_hair", []), ("long hair with a ribbon", [])])
def test_ground_all_reads_every_colour_a_phrase_names(phrase, tags):
    assert colorwords.ground_all(phrase) == tags


@pytest.mark.parametrize("phrase, tag", [("blue-eyed girl", "blue_eyes"), ("blue eyed", "blue_eyes"),
                                         ("purple-haired", "purple_hair"), ("green-eyed", "green_eyes")])
def test_our_own_colour_words_mean_our_own_tags(phrase, tag):
    """The survey's "blue" (#0343df) is nearer purple_eyes than blue_eyes by CMC; "blue-eyed" still
    means blue_eyes, the tag the same word names."""
    assert colorwords.ground(phrase) == tag


def test_ground_prompt_splits_a_phrase_into_its_colours_with_its_weight():
    out = colorwords.ground_prompt(parse_prompt("1girl, red hair and blue eyes:1.2, smile"))
    assert out == [("1girl", 1.0), ("red_hair", 1.2), ("blue_eyes", 1.2), ("smile", 1.0)]


def test_ground_prompt_keeps_order_and_weights():
    items = parse_prompt("1girl, (crimson hair:1.3), emerald eyes, smile")
    out = colorwords.ground_prompt(items)
    assert [w for _, w in out] == [w for _, w in items]
    assert [n for n, _ in out] == ["1girl", "red_hair", "green_eyes", "smile"]


def test_every_colour_tag_is_its_own_nearest():
    """The tag colours themselves ground to their own tag: the nearest-colour rule is consistent
    with the table the renderer paints from."""
    for kind, table in default_colors().items():
        for tag, hex_ in table.items():
            assert colorwords.nearest_tag(hex_, kind) == tag


def test_training_paraphrases_are_not_grounded_from_the_evaluation_list():
    """The colour-name table is external (xkcd, CSS4, our own tag words): it does not contain the
    evaluation's phrases as entries, and grounding is not applied in training."""
    names = colorwords.color_names()
    for phrase in evaluate.PHRASES:
        assert tag_text(phrase) not in names


def test_colorizer_reads_colour_names_unless_literal(tiny_checkpoint):
    """infer.py's path: "crimson hair" is embedded as red_hair; with grounding off (--literal) as written."""
    import torch

    from textcolor.colorize import Colorizer
    c = Colorizer.from_checkpoint(tiny_checkpoint, device="cpu")
    grounded, tag = c.embed(["1girl, crimson hair"]), c.embed(["1girl, red_hair"])
    assert torch.equal(grounded, tag)
    c.ground_words = False
    assert not torch.equal(c.embed(["1girl, crimson hair"]), tag)


@pytest.mark.parametrize("phrase, tag", [("grey-haired girl", "silver_hair"), ("ash grey hair", "silver_hair"),
                                         ("charcoal hair", "black_hair"), ("pure white hair", "white_hair")])
def test_grey_names_are_matched_by_lightness(phrase, tag):
    """Near the grey axis CMC ranks by tint; greys are matched by plain CIELAB distance instead."""
    assert colorwords.ground(phrase) == tag


@pytest.mark.parametrize("phrase, tags", [
    ("light brown hair", ["brown_hair"]), ("dark-blue hair", ["blue_hair"]), ("dark red eyes", ["red_eyes"]),
    ("hair of pure white", ["white_hair"]), ("hair dyed blue", ["blue_hair"])])
def test_a_lightness_word_keeps_the_colour_word_it_modifies(phrase, tags):
    """The survey's "light brown" is nearer our orange and CIELAB puts its "dark blue" nearer our
    purple; a user typing them means brown and blue."""
    assert colorwords.ground_all(phrase) == tags


@pytest.mark.parametrize("phrase, tags", [
    ("red twintails", ["red_hair"]), ("silver ponytail", ["silver_hair"]), ("lavender locks", ["purple_hair"]),
    ("blonde twintails with red eyes", ["blonde_hair", "red_eyes"]),
    ("twintails", []), ("red ribbon twintails", []), ("long hair, twintails, blue eyes", ["blue_eyes"])])
def test_hair_style_nouns_stand_for_the_hair_only_when_a_colour_is_named_at_them(phrase, tags):
    assert colorwords.ground_all(phrase) == tags


@pytest.mark.parametrize("phrase", ["grey eyes", "grey-eyed girl", "silver eyes"])
def test_a_grey_no_eye_tag_has_is_left_as_written(phrase):
    """No eye tag is grey: grounding "grey eyes" to the nearest (brown_eyes) would paint a colour the
    user did not ask for."""
    assert colorwords.ground(phrase) is None


@pytest.mark.parametrize("template", ["{c} hair", "{c}-haired girl", "girl with long {c} hair", "hair: {c}",
                                      "her hair is {c}", "{c} twintails", "light {c} hair", "dark {c} hair",
                                      "{C} HAIR", "{c}_hair, smile"])
def test_every_hair_colour_word_reads_as_its_tag_in_the_ways_people_phrase_it(template):
    for tag in default_colors()["hair"]:
        c = tag.split("_")[0]
        phrase = template.format(c=c, C=c.upper())
        if tag_text(phrase) == tag_text(tag):
            continue   # the tag itself, spelled with a space: passes through as trained
        items = colorwords.ground_prompt(parse_prompt(phrase))
        assert tag_text(tag) in [tag_text(name) for name, _ in items], (phrase, items)


@pytest.mark.parametrize("template", ["{c} eyes", "{c}-eyed girl", "eyes of {c}", "girl with bright {c} eyes"])
def test_every_eye_colour_word_reads_as_its_tag_in_the_ways_people_phrase_it(template):
    for tag in default_colors()["eyes"]:
        phrase = template.format(c=tag.split("_")[0])
        if tag_text(phrase) == tag_text(tag):
            continue
        assert colorwords.ground(phrase) == tag, phrase


@pytest.mark.parametrize("phrase, tag", [("royal blue hair", "blue_hair"), ("sapphire eyes", "blue_eyes"),
                                         ("electric blue eyes", "blue_eyes"), ("cobalt eyes", "blue_eyes")])
def test_saturated_blues_stay_blue(phrase, tag):
    """CIELAB's hue angle drifts to purple for saturated blues; CIEDE2000's hue terms do not."""
    assert colorwords.ground(phrase) == tag


@pytest.mark.parametrize("phrase, tag", [("navy blue hair", "blue_hair"), ("midnight blue hair", "blue_hair"),
                                         ("yellowish green eyes", "green_eyes"), ("wine red hair", "red_hair"),
                                         ("teal blue eyes", "blue_eyes"), ("golden brown hair", "brown_hair")])
def test_a_compound_colour_name_is_a_kind_of_its_last_word(phrase, tag):
    assert colorwords.ground(phrase) == tag


def test_the_matching_rule_agrees_with_the_survey_names_more_than_cmc():
    for kind in ("hair", "eyes"):
        used, n = colorwords.naming_agreement(kind)
        cmc, n_cmc = colorwords.naming_agreement(kind, "cmc21")
        assert n == n_cmc > 400 and used > cmc, kind
    # a coloured name never lands on a grey tag: navy is dark, but it is blue
    assert colorwords.nearest_tag("#01153e", "hair") == "blue_hair"
