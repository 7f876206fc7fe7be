"""The model shipped inside the package steers hair colour by tag (see README for its full scores)."""
import numpy as np
import pytest
from skimage.color import rgb2lab

from textcolor import synth
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
    hair = s.mask == synth.HAIR
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


def test_the_pair_is_told_apart_on_a_sketch_twice_the_working_size(shipped):
    # Sketches drawn larger than the model's working size are brought down by each block's darkest
    # pixel; averaged instead, the thin lines faded out (pair_2x_accuracy 74.5% instead of 93.5%).
    diffs = []
    for seed in range(3_000_000_000, 3_000_000_004):
        s = synth.render(seed, 2 * shipped.size, character=PAIR[0], monochrome=False)
        hair = s.mask == synth.HAIR
        sketch = sketch_array(s.image)
        light, dark = (np.asarray(shipped(sketch, tag), np.float64)[hair].mean() for tag in PAIR)
        diffs.append(light - dark)
    assert np.mean(diffs) > 20, diffs
