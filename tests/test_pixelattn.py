"""textcolor.pixelattn: per-pixel tag attention by region and as maps, on a tiny trained model."""
import numpy as np
import pytest
from PIL import Image

from cli_helpers import cli_runner, one_line_error
from textcolor import pixelattn
from textcolor.colorize import Colorizer

run_cli = cli_runner(pixelattn.main)


@pytest.fixture(scope="module")
def attn_checkpoint(train_tiny):
    return train_tiny("attn_run", "gen.base=16", "gen.stem=unshuffle", "gen.stem_factor=2", "gen.head_ch=4",
                      "gen.tag_attn_levels=[0,1]", "gen.tag_attn_dim=4", "tags.pool=attention")


def test_heard_tags_are_grounded_unless_literal(attn_checkpoint):
    c = Colorizer.from_checkpoint(attn_checkpoint, device="cpu")
    assert pixelattn.heard_tags(c, "crimson hair, 1girl") == ["red_hair", "1girl", pixelattn.NONE]
    c.ground_words = False
    assert pixelattn.heard_tags(c, "crimson hair, 1girl") == ["crimson hair", "1girl", pixelattn.NONE]


def test_maps_and_region_table_sum_to_one(attn_checkpoint):
    c = Colorizer.from_checkpoint(attn_checkpoint, device="cpu")
    item = c.prepare(Image.new("RGB", (64, 48), "white"))
    maps = pixelattn.pixel_attention(c, item, "red_hair, blue_eyes")
    assert sorted(maps) == [0, 1]
    for a in maps.values():
        assert a.shape[0] == 3
        np.testing.assert_allclose(a.sum(0), 1.0, atol=1e-5)
    table = pixelattn.by_region(c, "red_hair, blue_eyes", n=2, size=32)
    assert set(table.region) <= set(pixelattn.REGIONS) and {"hair", "background"} <= set(table.region)
    np.testing.assert_allclose(table[["red_hair", "blue_eyes", pixelattn.NONE]].sum(1), 1.0, atol=1e-5)


def test_cli_table_maps_and_errors(attn_checkpoint, tiny_checkpoint, rendered_sketch, tmp_path, capsys):
    code, out, err = run_cli(capsys, "--checkpoint", attn_checkpoint, "--prompt", "red_hair", "--n", 1,
                             "--size", 32, "--device", "cpu")
    assert code == 0, err
    assert out.splitlines()[0] == "| level | region | red_hair | (none) |"
    maps = tmp_path / "maps.png"
    args = ["--checkpoint", attn_checkpoint, "--prompt", "red_hair, blue_eyes", "--sketch", rendered_sketch,
            "--out", maps, "--device", "cpu"]
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    assert Image.open(maps).width == 3 * (pixelattn.PANEL + 2) + 2 and "level 1" in out
    before = maps.read_bytes()
    code, _, err = run_cli(capsys, *args)                         # never replaced without --overwrite
    assert code == 2 and one_line_error(err) and "already exists" in err and maps.read_bytes() == before
    code, _, err = run_cli(capsys, "--checkpoint", attn_checkpoint, "--prompt", "x", "--out", tmp_path / "m.png")
    assert code == 2 and one_line_error(err) and "--sketch" in err
    code, _, err = run_cli(capsys, "--checkpoint", tiny_checkpoint, "--prompt", "red_hair", "--n", 1, "--size", 32,
                           "--device", "cpu")
    assert code == 2 and one_line_error(err) and "tag_attn_levels" in err
