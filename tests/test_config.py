"""Config loading: YAML + inheritance + dotted overrides, refused keys/types/choices."""
from pathlib import Path

import pytest

from textcolor.config import ConfigError, from_dict, load_config, to_dict, to_yaml

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_are_the_seed_settings():
    cfg = load_config()
    assert (cfg.loss.lambda_adv, cfg.loss.lambda_l1, cfg.loss.lambda_gp) == (1.0, 10.0, 10.0)
    assert (cfg.optim.lr, cfg.optim.beta1, cfg.optim.beta2) == (1e-4, 0.5, 0.9)
    assert cfg.train.batch_size == 4 and cfg.loss.penalty == "zero_mixed" and cfg.loss.adv == "nonsat"
    assert (cfg.xdog.sigma, cfg.xdog.k, cfg.xdog.p, cfg.xdog.eps, cfg.xdog.phi) == (0.4, 4.5, 19.0, 0.01, 1e9)


def test_yaml_and_dotted_overrides():
    cfg = load_config(ROOT / "configs/demo.yaml", ["data.size=128", "train.steps=500", "loss.penalty=r1"])
    assert (cfg.data.size, cfg.train.steps, cfg.loss.penalty) == (128, 500, "r1")
    assert cfg.gen.base == 32  # from the file


def test_every_shipped_config_loads():
    paths = list((ROOT / "configs").rglob("*.yaml"))
    assert len(paths) >= 12
    for path in paths:
        load_config(path)


def test_inheritance_chain(tmp_path):
    (tmp_path / "a.yaml").write_text("data:\n  size: 96\ngen:\n  depth: 2\n")
    (tmp_path / "b.yaml").write_text("inherit: a.yaml\ngen:\n  base: 16\n")
    cfg = load_config(tmp_path / "b.yaml")
    assert (cfg.data.size, cfg.gen.depth, cfg.gen.base) == (96, 2, 16)
    (tmp_path / "c.yaml").write_text("inherit: c.yaml\n")
    with pytest.raises(ConfigError, match="circular"):
        load_config(tmp_path / "c.yaml")


@pytest.mark.parametrize("override,message", [
    (["train.stepz=3"], "unknown config key: train.stepz"),
    (["bogus.key=1"], "unknown config key"),
    (["train.steps=many"], "train.steps"),
    (["loss.penalty=zero"], "loss.penalty='zero' is not one of: zero_mixed"),
    (["data.size=100"], "divisible by 16 \\(2\\*\\*gen.depth"),
    (["train.steps"], "not of the form key=value"),
    (["tags.drop_prob=2"], "drop_prob"),
    (["gen.stem=patchify"], "gen.stem='patchify' is not one of: conv, unshuffle"),
    (["gen.stem=unshuffle", "data.size=200"], "divisible by 64"),
    (["gen.stem=unshuffle", "gen.stem_factor=1"], "stem_factor must be ≥ 2"),
    (["gen.stem=unshuffle", "gen.base=8"], "must be ≥ gen.stem_factor²=16"),
    (["tags.pool=avg"], "tags.pool='avg' is not one of: mean, sum, max, attention"),
    (["data.line_styles=[xdog,pencil]"], "line_styles"),
    (["data.sketch_scale=0.5"], "sketch_scale must be ≥ 1"),
    (["tags.short_prompt=0.6", "tags.color_prompt=0.6"], "at most 1"),
    (["tags.paraphrase=1.5"], "tags.paraphrase must be in"),
    (["loss.lambda_locality=-1"], "loss.lambda_locality must be ≥ 0"),
    (["loss.locality_average=mean"], "regions or pixels"),
    (["train.steps=10", "optim.decay_steps=11"], "optim.decay_steps must be in \\[0, train.steps=10\\]"),
    (["optim.decay_to=2"], "optim.decay_to must be in \\[0, 1\\]"),
    (["data.accessory_weights={top_hat: 1}"], "data.accessory_weights.top_hat: not an accessory"),
    (["data.accessory_weights={beret: -1}"], "data.accessory_weights.beret must be ≥ 0"),
    (["data.accessory_weights={flat_cap: 0, beret: 0, witch_hat: 0, mob_cap: 0, hair_bow: 0, hairclip: 0, "
      "hairband: 0, none: 0}"], "every accessory weighs 0"),
    (["data.hairband_drop=0.9"], "data.hairband_drop must be in \\[0, 0.8\\]"),
])
def test_bad_overrides_are_one_line_errors(override, message):
    with pytest.raises(ConfigError, match=message) as e:
        load_config(None, override)
    assert "\n" not in str(e.value)


def test_missing_and_invalid_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")
    (tmp_path / "unknown.yaml").write_text("data:\n  colour: red\n")
    with pytest.raises(ConfigError, match="unknown config key: data.colour"):
        load_config(tmp_path / "unknown.yaml")


def test_round_trip_through_dict_and_yaml(tmp_path):
    cfg = load_config(ROOT / "configs/demo.yaml", ["tags.k=5"])
    assert from_dict(to_dict(cfg)) == cfg
    (tmp_path / "saved.yaml").write_text(to_yaml(cfg))
    assert load_config(tmp_path / "saved.yaml") == cfg
