"""textcolor.realart: the head crop rule, region measurements, and the CLI on a generated sprite."""
import json
import math

import numpy as np
import pytest
from PIL import Image, ImageDraw

from cli_helpers import cli_runner, one_line_error
from textcolor import realart
from textcolor.realart import (box_mask, crop_on_white, head_box, load_regions, measure, region_chroma,
                               region_delta_e, region_mean_l)


def figure_alpha(w=120, h=200):
    """A 'character' on transparency: a head (disc) over a wider body, plus a faint halo."""
    img = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(img)
    d.rectangle([0, 0, w - 1, h - 1], outline=40)               # faint halo at the border: not figure
    d.ellipse([40, 20, 80, 60], fill=255)                        # head: x 40..80, y 20..60
    d.rectangle([10, 60, 110, 179], fill=255)                    # body: x 10..110, down to y 179
    return np.asarray(img)


def test_head_box_square_from_the_top_centred_on_the_top_rows():
    x0, y0, x1, y1 = head_box(figure_alpha())
    assert y0 == 20                                   # the halo (alpha < 128) is ignored
    side = round(0.4 * (180 - 20))                    # 64: 40% of the figure's height
    assert (x1 - x0, y1 - y0) == (side, side)
    # rows 20..84 hold the head and the top of the body (x 10..110): centred on those columns
    assert (x0 + x1) / 2 == pytest.approx((10 + 111) / 2, abs=1)


def test_head_box_only_head_rows_and_errors():
    alpha = np.zeros((100, 50), np.uint8)
    alpha[10:100, 5:15] = 255                        # a narrow figure at the left edge
    x0, y0, x1, y1 = head_box(alpha, fraction=0.5)
    assert (y0, y1 - y0) == (10, 45) and x0 < 0      # may extend past the edge; the crop pads it
    with pytest.raises(ValueError):
        head_box(np.full((10, 10), 100, np.uint8))   # nothing at least half opaque


def test_crop_on_white_pads_outside_the_image():
    rgb = Image.new("RGB", (10, 10), (0, 0, 255))
    crop = np.asarray(crop_on_white(rgb, (-5, 2, 5, 12)))
    assert crop.shape == (10, 10, 3)
    assert (crop[:8, :5] == 255).all() and (crop[:8, 5:] == (0, 0, 255)).all() and (crop[8:] == 255).all()


def test_box_mask_fractions_and_never_empty():
    m = box_mask((10, 20), [0.5, 0.0, 1.0, 0.5])
    assert m.sum() == 50 and m[:5, 10:].all()
    assert box_mask((10, 20), [0.99, 0.99, 1.0, 1.0]).sum() == 1


def test_region_means_on_known_colours():
    img = np.zeros((4, 4, 3), np.uint8)
    img[:, :2] = 255                                 # left half white, right half black
    left = np.zeros((4, 4), bool)
    left[:, :2] = True
    assert region_mean_l(img, left) == pytest.approx(100, abs=0.01)
    assert region_mean_l(img, ~left) == pytest.approx(0, abs=0.01)
    assert region_mean_l(img, np.zeros((4, 4), bool)) != region_mean_l(img, np.zeros((4, 4), bool))  # NaN
    assert region_chroma(img, np.ones((4, 4), bool)) == pytest.approx(0, abs=0.01)
    red = np.zeros((2, 2, 3), np.uint8)
    red[..., 0] = 255
    assert region_chroma(red, np.ones((2, 2), bool)) == pytest.approx(104.55, abs=0.05)  # sRGB red
    white, black = np.full((2, 2, 3), 255, np.uint8), np.zeros((2, 2, 3), np.uint8)
    assert region_delta_e(white, black, np.ones((2, 2), bool)) == pytest.approx(100, abs=0.01)
    assert region_delta_e(white, white, np.ones((2, 2), bool)) == 0


def test_measure_leaves_out_ink_and_reads_the_boxes():
    h = w = 10
    white = np.full((h, w, 3), 230, np.uint8)
    black = np.full((h, w, 3), 230, np.uint8)
    black[:5] = 20                                   # hair (top half) dark only in black_hair
    lines = np.ones((h, w), np.float32)
    lines[:5, 0] = 0                                 # an ink column inside the hair box: left out
    white[:5, 0] = black[:5, 0] = 0
    composited = np.full((h, w, 3), 255, np.uint8)
    composited[2:8, 2:8] = 100                       # figure: 36 grey pixels
    outs = {"white_hair": white, "black_hair": black, "monochrome": np.full((h, w, 3), 128, np.uint8)}
    r = measure(outs, composited, lines, {"hair": [0, 0, 1, 0.5], "face": [0, 0.5, 1, 1]})
    assert r["hair_dL"] == pytest.approx(region_mean_l(white[:1, 1:2], np.ones((1, 1), bool))
                                         - region_mean_l(black[:1, 1:2], np.ones((1, 1), bool)), abs=1e-6)
    assert r["face_dE"] == pytest.approx(0) and r["mono_chroma"] == pytest.approx(0, abs=0.01)
    assert math.isnan(measure(outs, composited, lines, None)["hair_dL"])


@pytest.mark.parametrize("text, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "keyed by sprite file name"),
    ('{"a.png": {"hair": [0, 0, 1, 1]}}', "needs both"),
    ('{"a.png": {"hair": [0, 0, 1, 1], "face": [0.5, 0, 0.4, 1]}}', "x0 < x1"),
    ('{"a.png": {"hair": [0, 0, 1, 1.5], "face": [0, 0, 1, 1]}}', "in 0..1"),
])
def test_load_regions_rejects_malformed_files(tmp_path, text, message):
    path = tmp_path / "r.json"
    path.write_text(text)
    with pytest.raises(realart.UsageError, match=message):
        load_regions(path)


# --- the CLI -----------------------------------------------------------------------------------

@pytest.fixture
def sprite(tmp_path):
    """A small RGBA character: dark 'hair' cap over a skin face over a blue body, transparent around."""
    img = Image.new("RGBA", (96, 160), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.rectangle([20, 60, 76, 159], fill=(60, 80, 200, 255), outline=(0, 0, 0, 255), width=2)
    d.ellipse([28, 8, 68, 62], fill=(250, 220, 200, 255), outline=(0, 0, 0, 255), width=2)
    d.chord([26, 4, 70, 50], 180, 360, fill=(40, 30, 30, 255), outline=(0, 0, 0, 255))
    path = tmp_path / "girl happy.png"
    img.save(path)
    return path


@pytest.fixture
def regions(tmp_path, sprite):
    path = tmp_path / "regions.json"
    path.write_text(json.dumps({sprite.name: {"hair": [0.35, 0.05, 0.65, 0.2], "face": [0.4, 0.5, 0.6, 0.7]}}))
    return path


run_cli = cli_runner(realart.main)


def test_cli_strip_table_json_and_no_overwrite(tmp_path, sprite, regions, capsys):
    strip, report = tmp_path / "strip.png", tmp_path / "r.json"
    args = [sprite, "--regions", regions, "--out", strip, "--json", report, "--device", "cpu"]
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    assert "| girl happy.png |" in out and "**mean**" in out and "hair ΔL*" in out
    img = Image.open(strip)
    cols = 1 + len(realart.PROMPTS)
    assert img.width == cols * (realart.PANEL + 2) + 2 and img.height > realart.PANEL
    data = json.loads(report.read_text())
    r = data["sprites"]["girl happy.png"]
    assert set(realart.METRICS) <= set(r) and all(isinstance(r[k], float) for k in realart.METRICS)
    assert r["crop"][1] == 4 and data["prompts"] == list(realart.PROMPTS)
    before = strip.read_bytes()
    code, _, err = run_cli(capsys, *args)            # a second run refuses to replace the strip
    assert code == 2 and one_line_error(err) and "already exists" in err
    assert strip.read_bytes() == before
    code, _, err = run_cli(capsys, *args, "--overwrite")
    assert code == 0, err


def test_cli_without_regions_measures_only_monochrome(tmp_path, sprite, capsys):
    code, out, err = run_cli(capsys, sprite, "--out", tmp_path / "s.png", "--json", tmp_path / "r.json",
                             "--device", "cpu")
    assert code == 0, err
    r = json.loads((tmp_path / "r.json").read_text())["sprites"]["girl happy.png"]
    assert r["hair_dL"] is None and r["face_dE"] is None and r["mono_chroma"] is not None


@pytest.mark.parametrize("bad", ["{oops", '{"girl happy.png": {"hair": [0, 0, 1]}}'])
def test_cli_bad_regions_is_one_line_exit_2(tmp_path, sprite, bad, capsys):
    path = tmp_path / "bad.json"
    path.write_text(bad)
    code, _, err = run_cli(capsys, sprite, "--regions", path, "--out", tmp_path / "s.png")
    assert code == 2 and one_line_error(err) and "bad.json" in err
    assert not (tmp_path / "s.png").exists()


def test_cli_missing_inputs_and_input_as_output(tmp_path, sprite, capsys):
    code, _, err = run_cli(capsys, tmp_path / "nope.png", "--out", tmp_path / "s.png")
    assert code == 2 and one_line_error(err) and "nope.png" in err
    code, _, err = run_cli(capsys, sprite, "--regions", tmp_path / "none.json", "--out", tmp_path / "s.png")
    assert code == 2 and one_line_error(err) and "none.json" in err
    code, _, err = run_cli(capsys, sprite, "--out", sprite, "--overwrite")
    assert code == 2 and one_line_error(err) and "input image" in err
    transparent = tmp_path / "empty.png"
    Image.new("RGBA", (8, 8), (0, 0, 0, 0)).save(transparent)
    code, _, err = run_cli(capsys, transparent, "--out", tmp_path / "s.png")
    assert code == 2 and one_line_error(err) and "transparent" in err
