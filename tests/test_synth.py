"""The procedural data set: determinism, mask alignment, colour-blind sketches, dataset and CLI."""
import csv
import itertools
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from textcolor import vocab
from textcolor.data import SynthDataset, working_labels
from textcolor.synth import SHADE, pick_accessory, render, render_tags
from textcolor.synthfolder import main
from textcolor.vocab import (ACCESSORY_TAGS, BACKGROUND, EYES, HAIR, LINE, MASK_LABELS, _lab, hex_to_rgb, load_colors,
                             load_roster)
from textcolor.xdog import sketch_array

ROOT = Path(__file__).resolve().parent.parent
HIBIKI, AKATSUKI = "hibiki_(kantai_collection)", "akatsuki_(kantai_collection)"


def _colour_tags():
    colors = load_colors()
    roster = load_roster()
    return set(colors["hair"]) | set(colors["eyes"]) | {c.hair_tag for c in roster} | {c.eye_tag for c in roster}


def _luma(hex_color):
    return float(np.dot(hex_to_rgb(hex_color), (0.299, 0.587, 0.114)) / 255)


# ---------------------------------------------------------------- tables

def test_roster_and_colour_table():
    roster = {c.tag: c for c in load_roster()}
    assert len(roster) >= 12
    h, a = roster[HIBIKI], roster[AKATSUKI]
    # the pair differs in colours only, so their line art cannot tell them apart
    assert (h.hair_style, h.outfit_color, h.outfit_accent, h.accessory, h.accessory_color) == \
           (a.hair_style, a.outfit_color, a.outfit_accent, a.accessory, a.accessory_color)
    assert h.accessory in ("flat_cap", "beret", "witch_hat", "mob_cap")  # a hat
    assert _luma(h.hair_color) > 0.85 and 0.1 < _luma(a.hair_color) < 0.3
    assert roster["hatsune_miku"].hair_style == "twintails"
    # every roster hair colour is its own evaluation class: keep them apart in CIELAB
    labs = {t: _lab(hex_to_rgb(c.hair_color)) for t, c in roster.items()}
    closest = min(np.linalg.norm(labs[x] - labs[y]) for x, y in itertools.combinations(labs, 2))
    assert closest > 15
    colors = load_colors()
    assert {"red_hair", "blue_hair", "green_hair", "aqua_hair", "pink_hair", "purple_hair", "blonde_hair",
            "brown_hair", "black_hair", "white_hair", "silver_hair", "orange_hair"} <= set(colors["hair"])
    assert {"blue_eyes", "red_eyes", "green_eyes", "yellow_eyes", "purple_eyes", "brown_eyes"} <= set(colors["eyes"])


# ---------------------------------------------------------------- render

def test_deterministic():
    a, b = render(3, 64), render(3, 64)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    assert (a.tags, a.character, a.hair_color, a.monochrome) == (b.tags, b.character, b.hair_color, b.monochrome)
    assert a.image.shape == (64, 64, 3) and a.image.dtype == np.uint8
    assert a.mask.shape == (64, 64) and a.mask.dtype == np.uint8
    assert not np.array_equal(a.image, render(4, 64).image)


@pytest.mark.parametrize("seed", [0, 1, 2, 5])
def test_mask_aligned_with_image(seed):
    s = render(seed, 96, monochrome=False)
    assert set(np.unique(s.mask)) <= set(range(len(MASK_LABELS)))
    assert (s.image[s.mask == BACKGROUND] == 255).all()
    hair = np.array(hex_to_rgb(s.hair_color), dtype=np.float64)
    px = s.image[s.mask == HAIR].astype(np.float64)
    assert len(px) > 0.05 * s.mask.size
    # hair pixels lie on the segment from the shade (hair × SHADE) to the hair colour
    t = np.clip(px @ hair / (hair @ hair), SHADE, 1.0)
    assert np.abs(px - t[:, None] * hair).max() <= 2.0
    assert (s.mask == EYES).any()


def test_hibiki_and_akatsuki_share_a_sketch():
    for seed in (0, 1):
        h = render(seed, 128, character=HIBIKI, monochrome=False)
        a = render(seed, 128, character=AKATSUKI, monochrome=False)
        assert np.array_equal(h.mask, a.mask)
        assert (sketch_array(h.image) != sketch_array(a.image)).mean() < 0.02
        diff = np.abs(h.image.astype(int) - a.image.astype(int)).sum(axis=2)
        assert diff[h.mask == HAIR].mean() / 3 > 100
        assert (diff[~np.isin(h.mask, (HAIR, EYES, LINE))] == 0).all()
        assert h.tags != a.tags and HIBIKI in h.tags and AKATSUKI in a.tags


def test_colour_overrides_do_not_move_geometry():
    for seed in (7, 8):
        red = render(seed, 64, hair_color="#ff2020", monochrome=False)
        green = render(seed, 64, hair_color="green_hair", eye_color="#ffcc00", monochrome=False, attr_drop=0.0)
        assert red.character == green.character
        assert np.array_equal(red.mask, green.mask)
        changed = (red.image != green.image).any(axis=2)
        assert changed.any() and np.isin(red.mask[changed], (HAIR, EYES, LINE)).all()
        assert {"green_hair", "yellow_eyes"} <= set(green.tags)  # tags name the colours drawn
        assert green.hair_color == load_colors()["hair"]["green_hair"]


def test_eyes_do_not_move_with_hair_style():
    base = load_roster()[0]
    styled = [replace(base, tag=f"girl_{s}", hair_style=s, accessory="none") for s in ("long", "short", "twintails")]
    eyes = [render(11, 96, character=c.tag, roster=styled, alt_style_frac=0.0).mask == EYES for c in styled]
    assert eyes[0].any() and all(np.array_equal(eyes[0], e) for e in eyes[1:])


def test_originals_carry_colour_tags():
    hair_tags = set(load_colors()["hair"])
    for seed in range(6):
        s = render(seed, 32, character="original", monochrome=False)
        assert s.character == "original" and hair_tags & set(s.tags)
    assert render(0, 32, character="original", hair_color="red_hair", monochrome=False).hair_color == \
        load_colors()["hair"]["red_hair"]
    chars = {render(seed, 16).character for seed in range(40)}
    assert "original" in chars and len(chars) > 5
    with pytest.raises(ValueError):
        render(0, 32, character="nobody")
    with pytest.raises(ValueError):
        render(0, 32, hair_color="plaid")


def test_monochrome_is_grey_with_the_same_sketch():
    for seed in (2, 3):
        mono = render(seed, 64, monochrome=True)
        colour = render(seed, 64, monochrome=False)
        assert mono.monochrome and (mono.image[..., 0] == mono.image[..., 1]).all() \
            and (mono.image[..., 1] == mono.image[..., 2]).all()
        assert {"monochrome", "greyscale"} & set(mono.tags)
        assert not set(mono.tags) & _colour_tags()
        assert (sketch_array(mono.image) != sketch_array(colour.image)).mean() < 0.01
    assert all(render(seed, 16, mono_frac=1.0).monochrome for seed in range(3))
    assert not any(render(seed, 16, mono_frac=0.0).monochrome for seed in range(3))


def test_accessory_tags_match_roster():
    marisa = render(0, 32, character="kirisame_marisa", attr_drop=0.0, alt_style_frac=0.0, monochrome=False)
    assert set(ACCESSORY_TAGS["witch_hat"]) <= set(marisa.tags)
    assert {"blonde_hair", "long_hair", "touhou", "1girl", "white_background"} <= set(marisa.tags)


def test_accessory_weights_default_is_the_uniform_draw_and_weights_are_respected():
    draws = np.random.default_rng(0).integers(0, 1 << 30, 8000)
    assert [pick_accessory(int(d)) for d in draws[:50]] == [vocab.ACCESSORIES[d % 8] for d in draws[:50]]
    assert [pick_accessory(int(d), {}) for d in draws[:50]] == [pick_accessory(int(d)) for d in draws[:50]]
    weights = {"none": 4.0, "beret": 0.0, "flat_cap": 0.5}   # the other five weigh 1: total 9.5
    picked = [pick_accessory(int(d), weights) for d in draws]
    share = {k: picked.count(k) / len(picked) for k in vocab.ACCESSORIES}
    assert share["beret"] == 0.0
    assert abs(share["none"] - 4 / 9.5) < 0.02 and abs(share["flat_cap"] - 0.5 / 9.5) < 0.01
    assert abs(share["hairband"] - 1 / 9.5) < 0.015
    assert pick_accessory((1 << 30) - 1, weights) == "none" and pick_accessory(0, weights) == "flat_cap"


def test_accessory_weights_reach_originals_and_costumes_only():
    only_bows = {k: 0.0 for k in vocab.ACCESSORIES if k != "hair_bow"}
    for seed in range(6):
        ident, _ = render_tags(seed, character="original", accessory_weights=only_bows)
        assert ident.accessory == "hair_bow"
        costume, _ = render_tags(seed, character="kirisame_marisa", costume_frac=1.0, accessory_weights=only_bows)
        assert costume.accessory == "hair_bow"
        own, _ = render_tags(seed, character="kirisame_marisa", accessory_weights=only_bows)
        assert own.accessory == "witch_hat"
    plain = render(3, 32, character="original", accessory_weights={"none": 1e6})
    assert "hat" not in plain.tags and (plain.mask == vocab.ACCESSORY).sum() == 0
    ds = SynthDataset(n=2, size=32, seed=3, accessory_weights={"none": 1e6}, mono_frac=0.0)
    assert ds[0]["tags"] == ", ".join(render(3, 32, accessory_weights={"none": 1e6}, mono_frac=0.0).tags)


# ---------------------------------------------------------------- dataset

def test_dataset_items():
    ds = SynthDataset(n=4, size=32, seed=5, flip=True)
    assert len(ds) == 4
    item = ds[1]
    assert set(item) == {"sketch", "image", "tags", "bad", "mask"} and item["bad"] == ""  # the one sample layout of data.py
    assert item["mask"].dtype == torch.uint8 and torch.equal(item["mask"], torch.from_numpy(render(6, 32).mask))
    for key in ("sketch", "image"):
        x = item[key]
        assert x.shape == (3, 32, 32) and x.dtype == torch.float32
        assert x.min() >= -1 and x.max() <= 1
    assert torch.equal(item["sketch"][0], item["sketch"][2])
    assert isinstance(item["tags"], str) and item["tags"] == ", ".join(render(6, 32).tags)
    assert torch.equal(item["image"], torch.from_numpy(render(6, 32).image).permute(2, 0, 1).float() / 127.5 - 1)
    with pytest.raises(IndexError):
        ds[4]


def test_dataset_flip_is_seeded():
    ds = SynthDataset(n=2, size=32, seed=0, flip=True)
    plain = ds[0]
    outcomes = set()
    for aug in range(8):
        a, b = ds[(0, aug)], ds[(0, aug)]
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["sketch"], b["sketch"])
        flipped = torch.equal(a["image"], plain["image"].flip(-1))
        assert flipped or torch.equal(a["image"], plain["image"])
        if flipped:  # the sketch is taken from the flipped image, not flipped afterwards
            assert torch.equal(a["sketch"], plain["sketch"].flip(-1))
            assert torch.equal(a["mask"], plain["mask"].flip(-1))
        outcomes.add(flipped)
    assert outcomes == {True, False}
    no_flip = SynthDataset(n=2, size=32, seed=0, flip=False)
    assert all(torch.equal(no_flip[(0, aug)]["image"], plain["image"]) for aug in range(4))


# ---------------------------------------------------------------- CLI

def test_cli_writes_the_documented_files(tmp_path):
    out = tmp_path / "synth"
    assert main(["--out", str(out), "--n", "3", "--seed", "5", "--size", "32"]) == 0
    for i in range(3):
        stem = f"{i:05d}"
        s = render(5 + i, 32)
        assert np.array_equal(np.asarray(Image.open(out / f"{stem}.png").convert("RGB")), s.image)
        mask = Image.open(out / f"{stem}.mask.png")
        assert mask.mode == "L" and np.array_equal(np.asarray(mask), s.mask)
        assert (out / f"{stem}.txt").read_text().strip() == ", ".join(s.tags)
    with open(out / "metadata.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["file"] for r in rows] == ["00000.png", "00001.png", "00002.png"]
    assert set(rows[0]) == {"file", "character", "tags", "hair_color", "eye_color", "monochrome"}
    assert rows[1]["tags"] == " ".join(render(6, 32).tags)
    # a rerun into its own folder is fine, and leaves no files of the longer earlier run
    assert main(["--out", str(out), "--n", "1", "--seed", "5", "--size", "32"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["00000.mask.png", "00000.png", "00000.txt", "metadata.csv"]


def test_cli_refuses_a_foreign_folder(tmp_path, capsys):
    (tmp_path / "holiday.jpg").write_bytes(b"not ours")
    assert main(["--out", str(tmp_path), "--n", "2", "--size", "32"]) == 2
    err = capsys.readouterr().err
    assert "holiday.jpg" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["holiday.jpg"]
    own_looking = tmp_path / "b"
    own_looking.mkdir()
    (own_looking / "00000.png").write_bytes(b"a user's file with a synth-like name")
    assert main(["--out", str(own_looking), "--n", "1", "--size", "32"]) == 2
    (own_looking / "metadata.csv").write_text("file,caption\n00000.png,a cat\n")  # someone else's table
    assert main(["--out", str(own_looking), "--n", "1", "--size", "32"]) == 2
    assert (own_looking / "00000.png").read_bytes() == b"a user's file with a synth-like name"


@pytest.mark.slow
def test_cli_module_entry_point_refuses_without_traceback(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    r = subprocess.run([sys.executable, "-m", "textcolor.synth", "--out", str(tmp_path), "--n", "1"],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "keep.txt" in r.stderr


# ---------------------------------------------------------------- sketches as users draw them

def test_dataset_default_sketch_is_xdog_of_the_render():
    """sketch_scale 1, style xdog, no jitter: the sketch is XDoG of the render at the working size."""
    from textcolor.xdog import xdog_rgb
    item = SynthDataset(n=2, size=32, seed=5)[0]
    image01 = torch.from_numpy(render(5, 32).image).permute(2, 0, 1)[None].float() / 255
    torch.testing.assert_close(item["sketch"][:1], xdog_rgb(image01)[0].round() * 2 - 1)


@pytest.mark.parametrize("style", ["xdog", "xdog_small", "ink"])
def test_dataset_line_styles_and_draw_sizes_are_binary_and_deterministic(style):
    ds = SynthDataset(n=6, size=32, seed=3, sketch_scale=3.0, line_styles=(style,), line_jitter=0.5,
                      detail=0.5, flip=True)
    for i in range(6):
        a, b = ds[(i, 11)], ds[(i, 11)]
        assert torch.equal(a["sketch"], b["sketch"]) and torch.equal(a["image"], b["image"])
        assert a["sketch"].shape == a["image"].shape == (3, 32, 32)
        assert set(a["sketch"].unique().tolist()) <= {-1.0, 1.0}
        assert (a["sketch"] < 0).float().mean() > 0.02        # there are lines


def test_dataset_cache_returns_what_it_drew():
    kw = dict(n=3, size=32, seed=1, sketch_scale=2.0, line_styles=("xdog", "ink"), line_jitter=1.0)
    plain, cached = SynthDataset(**kw), SynthDataset(cache=True, **kw)
    for i in (0, 1, 0, 2, 1):
        a, b = plain[(i, 4)], cached[(i, 4)]
        assert torch.equal(a["sketch"], b["sketch"]) and a["tags"] == b["tags"]
        assert torch.equal(a["mask"], b["mask"])
        assert (a["image"] - b["image"]).abs().max() <= 1 / 255 + 1e-6   # held as uint8
    assert len(cached.cache) == 3


def test_large_drawings_are_brought_down_by_the_inference_operator():
    """A character drawn at 3× the working size: its ink lines, brought down by downscale_lines,
    land where the working-size render has its ink."""
    from textcolor.sketchstyle import make_sketch
    from textcolor.config import XDoGConfig
    big, small = render(9, 96), render(9, 32)
    img = torch.from_numpy(big.image).permute(2, 0, 1)[None].float() / 255
    ink = torch.from_numpy(big.mask == vocab.LINE)[None, None].float()
    sketch = make_sketch(img, ink, 32, "ink", 0.0, XDoGConfig(), np.random.default_rng(0))[0, 0]
    lines = sketch == 0
    near_ink = torch.from_numpy(small.mask == vocab.LINE)
    near_ink = torch.nn.functional.max_pool2d(near_ink[None, None].float(), 3, 1, 1)[0, 0] > 0
    assert lines.any() and (lines & near_ink).sum() / lines.sum() > 0.95


def test_detail_adds_sheen_and_strands_from_its_own_stream():
    plain, rich = render(4, 128, detail=0.0), render(4, 128, detail=1.0)
    assert plain.tags == rich.tags and plain.character == rich.character
    differs = (plain.image != rich.image).any(-1)
    assert 0 < differs.mean() < 0.1                                # a few strands and a band
    assert set(np.unique(plain.mask[differs])) <= {vocab.HAIR, vocab.LINE}   # all inside the hair
    geometry = lambda s: (s.mask == vocab.BACKGROUND)                # noqa: E731
    assert (geometry(plain) == geometry(rich)).all()


def test_working_labels_sample_the_render_at_the_working_size():
    big = render(3, 96)
    small = working_labels(big.mask, 32)
    assert small.shape == (32, 32) and small.dtype == torch.uint8
    assert torch.equal(small, torch.from_numpy(big.mask[::3, ::3].copy()))  # each 3×3 block's first pixel
    assert torch.equal(working_labels(big.mask, 96), torch.from_numpy(big.mask))
    assert {HAIR, EYES} <= set(working_labels(render(3, 256).mask, 128).unique().tolist())


def _hairband_originals(count: int) -> list[int]:
    return [s for s in range(400) if render_tags(s, character="original")[0].accessory == "hairband"][:count]


def test_hairband_drop_lowers_the_band_with_the_crowns_hair_above_it():
    top = lambda s: np.argwhere(s.mask == vocab.ACCESSORY)[:, 0].min()   # noqa: E731
    hair_above = lambda s: (s.mask[:top(s)] == HAIR).sum()               # noqa: E731
    gained = []
    for seed in _hairband_originals(6):
        on = render(seed, 128, character="original")
        worn = render(seed, 128, character="original", hairband_drop=0.8)
        assert on.tags == worn.tags and (on.mask == BACKGROUND).sum() == (worn.mask == BACKGROUND).sum()
        assert top(worn) > top(on) and hair_above(worn) > hair_above(on)   # each band drawn somewhere lower
        gained.append(hair_above(worn) - hair_above(on))
        again = render(seed, 128, character="original", hairband_drop=0.8)
        assert (again.image == worn.image).all() and (again.mask == worn.mask).all()
    assert np.median(gained) > 200   # a crown of hair above most bands (128 px: the head is ~60 px wide)


def test_hairband_drop_draws_nothing_else_differently():
    others = [s for s in range(8) if render_tags(s)[0].accessory != "hairband"]
    assert len(others) >= 6
    for seed in others:
        a, b = render(seed, 64), render(seed, 64, hairband_drop=0.8)
        assert (a.image == b.image).all() and (a.mask == b.mask).all()
    with pytest.raises(ValueError, match="hairband_drop"):
        render(0, 64, hairband_drop=0.9)


def test_config_hairband_drop_reaches_the_training_renders():
    from textcolor.config import load_config
    from textcolor.data import build_dataset
    seed = next(s for s in range(200) if render_tags(s)[0].accessory == "hairband")
    cfg = load_config(None, ["data.source=synth", f"data.synth_n={seed + 1}", "data.size=64", "data.hairband_drop=0.8"])
    item = build_dataset(cfg, train=True)[seed]
    assert torch.equal(item["mask"], torch.from_numpy(render(seed, 64, hairband_drop=0.8).mask))
    assert not torch.equal(item["mask"], torch.from_numpy(render(seed, 64).mask))
