"""The tag-steering evaluation: the measurement is sound (oracle) and the CLI's JSON is complete."""
import json
import math

from textcolor import evaluate


def test_oracle_scores_perfectly():
    r = evaluate.oracle(n=6, size=64)
    for key in ("tag_accuracy", "swap_accuracy", "pair_accuracy", "pair_2x_accuracy", "attribute_accuracy",
                "phrase_accuracy"):
        assert r[key] == 1.0, key
    assert r["monochrome_chroma"] < 0.5 < r["color_chroma"]
    assert r["l1"] == 0 and r["ssim"] == 1


def test_phrases_never_occur_in_training_tags():
    from textcolor import synth
    seen = {t for i in range(300) for t in synth.render(i, 32).tags}
    assert not seen & set(evaluate.PHRASES)
    assert set(evaluate.PHRASES.values()) <= set(synth.load_colors()["hair"])


def test_cli_json_has_every_key(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert evaluate.main(["--checkpoint", str(tiny_checkpoint), "--baseline", str(tiny_checkpoint),
                          "--n", "2", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    for key in evaluate.KEYS:
        assert isinstance(res[key], float) and not math.isnan(res[key]), key
    assert set(evaluate.KEYS) <= set(res["baseline"])
    assert "| swap_accuracy |" in capsys.readouterr().out


def test_cli_bad_checkpoint_is_one_line(tmp_path, capsys):
    (tmp_path / "x.pt").write_bytes(b"junk")
    assert evaluate.main(["--checkpoint", str(tmp_path / "x.pt"), "--n", "1"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
