"""The model shipped inside the package steers hair colour by tag (see README for its full scores)."""
import numpy as np
import pytest
from skimage.color import rgb2lab

from textcolor import synth, vocab
from textcolor.colorize import DEFAULT_MODEL, Colorizer
from textcolor.xdog import sketch_array

PAIR = ("hibiki_(kantai_collection)", "akatsuki_(kantai_collection)")


@pytest.fixture(scope="module")
def shipped():
    assert DEFAULT_MODEL.exists(), "the shipped model is missing from textcolor/assets"
    assert DEFAULT_MODEL.stat().st_size <= 25e6
    return Colorizer.from_checkpoint(device="cpu")


@pytest.mark.parametrize("seed", [3_000_000_000 + i for i in range(4)])
def test_hibiki_hair_is_lighter_than_akatsuki(shipped, seed):
    s = synth.render(seed, shipped.size, character=PAIR[0], monochrome=False)
    hair = s.mask == vocab.HAIR
    sketch = sketch_array(s.image)
    light, dark = (np.asarray(shipped(sketch, tag), np.float64)[hair].mean() for tag in PAIR)
    assert light > dark + 60


def chroma(image, region):
    lab = rgb2lab(np.asarray(image)[region][None] / 255.0)[0]
    return np.hypot(lab[:, 1], lab[:, 2]).mean()


def test_monochrome_suppresses_colour(shipped):
    # The target is mean chroma ≤ 3 over the evaluation set (the shipped model: 2.05, README
    # Results); on these four sketches `monochrome` must give near-grey figures, well below the
    # chroma the same sketches get with their own tags (as textcolor.evaluate measures it).
    mono, own = [], []
    for seed in range(3_000_000_100, 3_000_000_104):
        s = synth.render(seed, shipped.size, monochrome=False)
        sketch, figure = sketch_array(s.image), s.mask > 0
        mono.append(chroma(shipped(sketch, "monochrome"), figure))
        own.append(chroma(shipped(sketch, ", ".join(s.tags)), figure))
    assert np.mean(mono) <= 3.0
    assert np.mean(mono) < 0.3 * np.mean(own)


@pytest.mark.slow  # 512 px through the shipped model
def test_the_pair_is_told_apart_on_a_sketch_twice_the_working_size(shipped):
    # Sketches drawn larger than the model's working size are brought down by each block's darkest
    # pixel (xdog.downscale_lines), as the training sketches drawn at up to 3× were.
    diffs = []
    for seed in range(3_000_000_000, 3_000_000_004):
        s = synth.render(seed, 2 * shipped.size, character=PAIR[0], monochrome=False)
        hair = s.mask == vocab.HAIR
        sketch = sketch_array(s.image)
        light, dark = (np.asarray(shipped(sketch, tag), np.float64)[hair].mean() for tag in PAIR)
        diffs.append(light - dark)
    assert np.mean(diffs) > 20, diffs


def test_a_1024_px_sketch_keeps_crisp_lines_and_follows_the_tag(shipped):
    """What a user brings: a large drawing. The output has the input's size, its lines stay black
    at full resolution, and the hair follows the tag."""
    s = synth.render(3_000_000_010, 1024, character=PAIR[0], monochrome=False)
    sketch = sketch_array(s.image)
    light, dark = (np.asarray(shipped(sketch, tag), np.float64) for tag in PAIR)
    assert light.shape == (1024, 1024, 3)
    hair, ink = s.mask == vocab.HAIR, sketch < 128
    assert light[hair].mean() > dark[hair].mean() + 60
    assert light[ink].max() < 40 and dark[ink].max() < 40                  # lines stay black


def lab_of(image, region):
    return rgb2lab(np.asarray(image)[region][None] / 255.0)[0].mean(0)


def test_colour_words_steer_the_hair(shipped):
    """Colour tags alone, in a hair + eye mix, and reworded, on an original character whose sketch
    cannot tell: the hair lands on the hue asked for. (Not yet reliable, so not tested here: eye
    colour, combo_accuracy 15%, and phrases held out of training, phrase_accuracy 42%; README.)"""
    s = synth.render(3_000_000_020, 256, character="original", hair_color="white_hair", monochrome=False)
    sketch, hair = sketch_array(s.image), s.mask == vocab.HAIR
    red = lab_of(shipped(sketch, "red_hair"), hair)
    blue = lab_of(shipped(sketch, "blue_hair"), hair)
    assert red[1] > 20 and blue[2] < -15                                    # a* red, b* blue
    mix = shipped(sketch, "green_hair, red_eyes")
    assert lab_of(mix, hair)[1] < -15                                       # green hair
    assert lab_of(shipped(sketch, "ruby hair"), hair)[1] > 20               # a paraphrase from the table
