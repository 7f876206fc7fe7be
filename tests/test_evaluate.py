"""The tag-steering evaluation: the measurement is sound (oracle) and the CLI's JSON is complete."""
import json
import math

import numpy as np
import pytest

from textcolor import evaluate, synth, vocab

ACCURACIES = [k for k in evaluate.KEYS if k.endswith("_accuracy")]


@pytest.mark.parametrize("size", [64, pytest.param(128, marks=pytest.mark.slow)])
def test_oracle_scores_perfectly(size):
    r = evaluate.oracle(n=12, size=size)
    assert r["size"] == size
    assert {"lone_attribute_accuracy", "eye_accuracy", "combo_accuracy"} <= set(ACCURACIES)
    for key in ACCURACIES:
        assert r[key] == 1.0, key
    assert r["cases"]["eye"] >= 6 and r["cases"]["combo"] >= 6  # most eyes show their colour at 64 px
    assert r["monochrome_chroma"] < 0.5 < r["color_chroma"]
    assert r["l1"] == 0 and r["ssim"] == 1
    # locality: changing the hair colour changes the hair, and nothing else on the figure
    assert r["outside_delta"] < 1 and r["hair_delta"] > 25
    assert r["background_chroma"] < 1 and r["background_lightness"] > 99
    assert r["hair_misses"] == {} and r["eye_misses"] == {}
    assert set(r["outside_delta_by_region"]) == {"skin", "eyes", "outfit", "accessory"}
    assert max(r["outside_delta_by_region"].values()) < 1
    assert r["accessory_delta_by_kind"] and max(r["accessory_delta_by_kind"].values()) < 1
    assert r["hair_delta_by_accessory"] and min(r["hair_delta_by_accessory"].values()) > 25
    assert set(r["l1_by_region"]) == set(vocab.MASK_LABELS) and max(r["l1_by_region"].values()) == 0


def test_accessory_kind_is_the_most_specific_tag():
    assert evaluate.accessory_kind(["1girl", "hat", "beret", "red_hair"]) == "beret"
    assert evaluate.accessory_kind(["1girl", "hairclip"]) == "hairclip"
    assert evaluate.accessory_kind(["1girl", "hat"]) is None and evaluate.accessory_kind([]) is None


def test_hair_misses_name_the_wanted_and_the_read_colour():
    cases, protos = evaluate.build_cases(12, 64)
    outputs = evaluate.oracle_outputs(cases, 64)
    lone = [i for i, c in enumerate(cases) if c.kind == "lone_attribute"]
    colors = evaluate.prototype_names("colors")
    wrong = next(i for i in lone if colors[cases[i].want] == "red_hair")
    s = cases[wrong].sample                  # the red-hair case's sketch painted with orange hair
    outputs[wrong] = synth.render(s.seed, 64, character="original", hair_color="orange_hair",
                                  eye_color=s.eye_color, monochrome=False).image
    r = evaluate.score(outputs, cases, protos)
    assert r["hair_misses"] == {"lone_attribute: red_hair -> orange_hair": 1}
    assert r["lone_attribute_accuracy"] == pytest.approx(11 / 12)


def test_l1_by_region_puts_the_error_where_it_is_and_adds_up_to_l1():
    cases, protos = evaluate.build_cases(12, 64)
    outputs = evaluate.oracle_outputs(cases, 64)
    i = next(i for i, c in enumerate(cases) if c.kind == "tag")
    hair = cases[i].sample.mask == vocab.HAIR
    outputs[i] = outputs[i].copy()
    outputs[i][hair] = 255 - outputs[i][hair]   # only the hair of one own-tag case is wrong
    r = evaluate.score(outputs, cases, protos)
    assert r["l1"] > 0
    assert r["l1_by_region"]["hair"] == pytest.approx(r["l1"])
    assert sum(r["l1_by_region"].values()) == pytest.approx(r["l1"])
    assert all(v == 0 for k, v in r["l1_by_region"].items() if k != "hair")


def test_cases_cover_every_colour_at_n12():
    colors = vocab.load_colors()
    cases, _ = evaluate.build_cases(12, 64)
    prompts = {kind: {c.prompt for c in cases if c.kind == kind} for kind in {c.kind for c in cases}}
    assert set(colors["hair"]) == prompts["lone_attribute"]
    assert set(colors["eyes"]) == prompts["eye"]
    assert set(colors["hair"]) == {evaluate.PHRASES[p] for p in prompts["phrase"]}
    combos = [p.split(", ") for p in prompts["combo"]]
    assert {h for h, _ in combos} == set(colors["hair"]) and {e for _, e in combos} == set(colors["eyes"])
    for c in cases:
        if c.kind == "locality":  # the own tags with only the hair colour tag swapped
            own = cases[c.partner]
            assert own.kind == "attribute" and own.sample is c.sample
            diff = set(own.prompt.split(", ")) ^ set(c.prompt.split(", "))
            assert len(diff) == 2 and all(t in colors["hair"] for t in diff)


def test_phrases_never_occur_in_training_tags():
    from textcolor import synth, vocab
    seen = {t for i in range(300) for t in synth.render(i, 32).tags}
    assert not seen & set(evaluate.PHRASES)
    assert set(evaluate.PHRASES.values()) <= set(vocab.load_colors()["hair"])


@pytest.mark.slow  # a full evaluation
def test_cli_json_has_every_key(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert evaluate.main(["--checkpoint", str(tiny_checkpoint), "--baseline", str(tiny_checkpoint),
                          "--n", "2", "--size", "128", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    for key in evaluate.KEYS:
        assert isinstance(res[key], float) and not math.isnan(res[key]), key
    assert set(evaluate.KEYS) <= set(res["baseline"])
    assert res["size"] == 128 and res["baseline"]["size"] == 128
    table = capsys.readouterr().out
    for key in evaluate.KEYS:
        assert f"| {key} |" in table, key


def test_cli_bad_checkpoint_is_one_line(tmp_path, capsys):
    (tmp_path / "x.pt").write_bytes(b"junk")
    assert evaluate.main(["--checkpoint", str(tmp_path / "x.pt"), "--n", "1"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_cli_size_too_small_is_one_line(capsys):
    assert evaluate.main(["--size", "8", "--n", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--size" in err


def test_table_prints_unscored_kinds_as_na():
    """A kind with no scorable case (nan) reads "n/a", not "nan%"."""
    table = evaluate.format_table({"a": {"combo_accuracy": float("nan"), "tag_accuracy": 0.5, "l1": 0.1}})
    assert "| combo_accuracy | n/a |" in table and "| tag_accuracy | 50.0% |" in table and "nan" not in table


def test_offset_draws_another_held_out_set_asking_the_same_colours():
    base, _ = evaluate.build_cases(12, 64)
    other, _ = evaluate.build_cases(12, 64, offset=evaluate.SELECT_OFFSET)
    assert {c.sample.seed for c in base}.isdisjoint({c.sample.seed for c in other})
    assert min(c.sample.seed for c in other) == evaluate.EVAL_SEED + evaluate.SELECT_OFFSET
    asked = lambda cases: [(c.kind, c.want, c.want_eye) for c in cases if c.sample.character == "original"]  # noqa: E731
    assert asked(base) == asked(other)
    assert any((a.sample.image != b.sample.image).any() for a, b in zip(base, other))


def test_negative_offset_is_refused_in_one_line(capsys):
    assert evaluate.main(["--offset", "-1", "--n", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --offset")


def test_combo_eyes_as_hair_counts_irises_that_follow_the_hair_tag():
    cases, protos = evaluate.build_cases(12, 128)
    eyes = evaluate.prototype_names("eyes")
    outputs = evaluate.oracle_outputs(cases, 128)
    assert math.isnan(evaluate.score(outputs, cases, protos)["combo_eyes_as_hair"])   # no eye wrong
    combos = [i for i, c in enumerate(cases) if c.kind == "combo"]
    follows = [i for i in combos if evaluate.nearest_hue(protos["colors"][cases[i].want], protos["eyes"])
               not in (-1, cases[i].want_eye)]
    i, j = follows[:2]
    for k, eye in ((i, evaluate.nearest_hue(protos["colors"][cases[i].want], protos["eyes"])),   # the hair's colour
                   (j, next(e for e in range(len(eyes)) if e != cases[j].want_eye and e !=
                            evaluate.nearest_hue(protos["colors"][cases[j].want], protos["eyes"])))):
        s = cases[k].sample
        outputs[k] = synth.render(s.seed, 128, character="original", hair_color=evaluate.prototype_names("colors")[cases[k].want],
                                  eye_color=eyes[eye], monochrome=False).image
    r = evaluate.score(outputs, cases, protos)
    assert r["combo_accuracy"] == pytest.approx(10 / 12)
    assert r["combo_eyes_as_hair"] == pytest.approx(0.5)


def test_table_joins_json_files_and_their_parts(tmp_path, capsys):
    run = {"l1": 0.07, "tag_accuracy": 1.0, "oracle": {"l1": 0.0, "tag_accuracy": 1.0}}
    old = {"l1": 0.3}   # measured before tag_accuracy existed
    (tmp_path / "a.json").write_text(json.dumps(run))
    (tmp_path / "b.json").write_text(json.dumps(old))
    assert evaluate.main(["--table", f"new={tmp_path / 'a.json'}", f"oracle={tmp_path / 'a.json'}#oracle",
                          f"old={tmp_path / 'b.json'}"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| metric | new | oracle | old |"
    assert "| l1 | 0.070 | 0.000 | 0.300 |" in lines
    assert "| tag_accuracy | 100.0% | 100.0% | n/a |" in lines


@pytest.mark.parametrize("spec, message", [("no-label", "expected LABEL=FILE"), ("x={d}/a.json#baseline", "no 'baseline'"),
                                           ("x={d}/missing.json", "missing.json"), ("x={d}/bad.json", "not JSON")])
def test_table_bad_column_is_one_line(tmp_path, capsys, spec, message):
    (tmp_path / "a.json").write_text(json.dumps({"l1": 0.1}))
    (tmp_path / "bad.json").write_text("{")
    assert evaluate.main(["--table", spec.format(d=tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_hairband_drop_draws_the_held_out_bands_lower_and_the_oracle_still_scores_perfectly():
    # held-out originals 0 and 19 wear a hairband (render seeds EVAL_SEED + i); at 64 px lines cover it
    plain, _ = evaluate.build_cases(20, 128)
    worn, _ = evaluate.build_cases(20, 128, hairband_drop=0.8)
    band_tops = [[np.argwhere(c.sample.mask == vocab.ACCESSORY)[:, 0].min() for c in cases
                  if c.kind == "locality" and c.sample.accessory == "hairband"] for cases in (plain, worn)]
    assert len(band_tops[0]) == 2 and all(w > p for p, w in zip(*band_tops))
    r = evaluate.oracle(n=20, size=64, hairband_drop=0.8)
    assert r["swap_accuracy"] == r["combo_accuracy"] == 1.0 and r["outside_delta"] < 1
    assert r["hair_delta_by_accessory"]["hairband"] > 25


def test_cli_hairband_drop_out_of_range_is_one_line(capsys):
    assert evaluate.main(["--hairband-drop", "0.9"]) == 2
    assert capsys.readouterr().err.strip() == "error: --hairband-drop must be in [0, 0.8]"
