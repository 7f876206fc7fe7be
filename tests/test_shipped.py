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


def test_monochrome_gives_near_grey(shipped):
    for seed in range(3_000_000_100, 3_000_000_104):
        s = synth.render(seed, shipped.size, monochrome=False)
        out = np.asarray(shipped(sketch_array(s.image), "monochrome"))
        lab = rgb2lab(out[s.mask > 0][None] / 255.0)[0]
        assert np.hypot(lab[:, 1], lab[:, 2]).mean() < 5
