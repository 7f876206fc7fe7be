import pytest

from textcolor import promptstats, synth


@pytest.mark.parametrize("seed", [0, 7, 123, 4001])
def test_render_tags_are_the_renders_tags(seed):
    for kw in ({}, {"costume_frac": 0.5, "alt_style_frac": 0.5, "mono_frac": 0.3}, {"character": "original"}):
        ident, tags = synth.render_tags(seed, **kw)
        s = synth.render(seed, 32, **kw)
        assert tags == s.tags and ident.tag == s.character and ident.hair_color == s.hair_color


def test_keep_roster_leaves_no_nameless_roster_prompt(capsys, tmp_path):
    import json
    assert promptstats.main(["--config", "shipped_stage4", "--n", "400", "--json", str(tmp_path / "off.json")]) == 0
    assert promptstats.main(["--config", "shipped_stage4", "tags.keep_roster=true", "--n", "400",
                             "--json", str(tmp_path / "on.json")]) == 0
    off, on = (json.loads((tmp_path / f"{k}.json").read_text()) for k in ("off", "on"))
    assert off["from_roster"] > 0.3 * off["nameless_hair_prompts"] > 0
    assert on["from_roster"] == 0 and on["nameless_hair_prompts"] > 0
    assert "training prompts name a hair colour" in capsys.readouterr().out


def test_bad_input_is_one_line(capsys):
    assert promptstats.main(["--config", "shipped_stage4", "--n", "0"]) == 2
    assert promptstats.main(["--config", "no_such.yaml"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(err) == 2 and all(line.startswith("error:") for line in err)
