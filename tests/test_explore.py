"""textcolor.explore, textcolor.projector and notebooks/tag_vectors.ipynb.

Everything but the notebook runs on a toy encoder (build_encoder with a table of hand-made vectors)
and a tiny randomly initialised generator, so no text model is loaded."""
import json
import math
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from textcolor import explore
from textcolor.colorize import DEFAULT_MODEL, Colorizer
from textcolor.models import Generator
from textcolor.config import TagConfig
from textcolor.tags import build_encoder

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "tag_vectors.ipynb"

# Hand-made 3-d "embeddings" under real vocabulary names, so categories are meaningful.
A, B, C, D = "hibiki_(kantai_collection)", "white_hair", "blue_eyes", "monochrome"
TOY = {A: [1.0, 0.0, 0.0], B: [0.8, 0.6, 0.0], C: [0.0, 1.0, 0.0], D: [-1.0, 0.0, 0.0]}


@pytest.fixture
def toy_encoder(tmp_path):
    return build_encoder(TagConfig(), (list(TOY), torch.tensor(list(TOY.values()))), cache_dir=tmp_path / "cache")


@pytest.fixture
def toy_colorizer(tiny_cfg, toy_encoder):
    torch.manual_seed(0)
    g = Generator(tiny_cfg.gen, tiny_cfg.tags, embed_dim=3)
    with torch.no_grad():   # a clearly tag-dependent toy: strong conditioning weights
        g.cond.proj.weight.mul_(20)
    return Colorizer(g, tiny_cfg, toy_encoder, torch.device("cpu"))


@pytest.fixture
def sketch():
    from textcolor.synth import render
    from textcolor.xdog import sketch_array
    return Image.fromarray(sketch_array(render(1, 64, character=A).image))


# --- vocabulary ----------------------------------------------------------------------------------

def test_vocabulary_categories():
    from textcolor.vocab import load_colors, load_roster
    vocab = explore.vocabulary()
    assert list(vocab.columns) == ["tag", "category"]
    assert vocab["tag"].is_unique
    assert set(vocab["category"]) == set(explore.CATEGORIES)
    cat = dict(zip(vocab["tag"], vocab["category"]))
    assert all(cat[c.tag] == "character" for c in load_roster())
    colors = load_colors()
    assert all(cat[t] == "hair_color" for t in colors["hair"])
    assert all(cat[t] == "eye_color" for t in colors["eyes"])
    for tag in ("1girl", "solo", "white_background", "monochrome", "greyscale", "hat", "long_hair", "twintails",
                "kantai_collection"):
        assert cat[tag] == "general", tag
    assert cat["akatsuki_(kantai_collection)"] == "character" and cat["aqua_eyes"] == "eye_color"
    assert explore.categories_of(["white_hair", "not_a_tag"]) == ["hair_color", "other"]


# --- geometry ------------------------------------------------------------------------------------

def test_cosine_matrix_known_values():
    X = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 0.0], [-3.0, 0.0]])
    Cm = explore.cosine_matrix(X)
    assert Cm.shape == (5, 5)
    np.testing.assert_allclose(Cm, Cm.T)
    np.testing.assert_allclose(np.diag(Cm), [1, 1, 1, 0, 1])       # a zero row: 0, not NaN
    assert Cm[0, 1] == pytest.approx(0.0)
    assert Cm[0, 2] == pytest.approx(1 / math.sqrt(2))
    assert Cm[0, 4] == pytest.approx(-1.0)
    assert not np.isnan(Cm).any()
    with pytest.raises(ValueError):
        explore.cosine_matrix(np.zeros(3))


def test_pca_2d_shapes_and_known_values():
    # points on a line in 3-d: one component explains everything, the second is zero
    direction = np.array([1.0, 2.0, 2.0]) / 3
    t = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    P, ratio = explore.pca_2d(t[:, None] * direction + 5.0, return_ratio=True)
    assert P.shape == (5, 2)
    np.testing.assert_allclose(P[:, 0], t, atol=1e-9)                # sign fixed: largest loading > 0
    np.testing.assert_allclose(P[:, 1], 0, atol=1e-9)
    np.testing.assert_allclose(ratio, [1.0, 0.0], atol=1e-12)
    # 2-d data: PCA is a rotation of the centred points, so distances are kept
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 2)) * [3.0, 0.5]
    P, ratio = explore.pca_2d(X, return_ratio=True)
    dist = lambda Z: np.linalg.norm(Z[:, None] - Z[None], axis=-1)  # noqa: E731
    np.testing.assert_allclose(dist(P), dist(X), atol=1e-9)
    np.testing.assert_allclose(P.mean(0), 0, atol=1e-9)
    assert ratio[0] >= ratio[1] and ratio.sum() == pytest.approx(1.0)
    assert P[:, 0].var() >= P[:, 1].var()
    assert explore.pca_2d(rng.normal(size=(7, 30))).shape == (7, 2)
    assert explore.pca_2d(np.ones((1, 4))).shape == (1, 2)          # degenerate input: zeros, no error


# --- toy encoder: vectors, nearest tags, arithmetic ----------------------------------------------

def test_raw_and_nearest_tags_on_toy_encoder(toy_encoder):
    tags = list(TOY)
    np.testing.assert_allclose(explore.raw_vectors(toy_encoder, tags), np.array(list(TOY.values())))
    near = explore.nearest_tags(toy_encoder, A, tags, k=3)
    assert [t for t, _ in near] == [A, B, C]
    np.testing.assert_allclose([c for _, c in near], [1.0, 0.8, 0.0], atol=1e-6)
    assert explore.nearest_tags(toy_encoder, A.upper(), tags, k=1)[0][0] == A   # parsed like a prompt
    # a vector query, and a two-tag prompt (mean of A and C, closest to B)
    assert explore.nearest_tags(toy_encoder, np.array([0.0, 1.0, 0.0]), tags, k=1)[0][0] == C
    assert explore.nearest_tags(toy_encoder, f"{A}, {C}", tags, k=1)[0][0] == B
    assert [t for t, _ in explore.nearest_tags(toy_encoder, A, tags, k=10)][-1] == D
    assert explore.nearest_tags(toy_encoder, A, tags, k=0) == []
    assert not toy_encoder.loaded and toy_encoder.load_count == 0


def test_parse_expression():
    assert explore.parse_expression("hatsune_miku - aqua_hair + red_hair") == (
        ["hatsune_miku", "red_hair"], ["aqua_hair"])
    assert explore.parse_expression("hatsune_miku \u2212 aqua_hair +red_hair") == (
        ["hatsune_miku", "red_hair"], ["aqua_hair"])
    assert explore.parse_expression("- aqua_hair") == ([], ["aqua_hair"])
    assert explore.parse_expression("silver-haired girl + t-shirt") == (["silver-haired girl", "t-shirt"], [])
    for bad in ("a + ", "a - - b", ""):
        with pytest.raises(ValueError):
            explore.parse_expression(bad)


def test_arithmetic_on_toy_encoder(toy_encoder):
    v = {k: torch.tensor(x) for k, x in TOY.items()}
    out = explore.arithmetic(toy_encoder, f"{A} - {C} + {B}")
    assert out.shape == (3,)
    torch.testing.assert_close(out, v[A] - v[C] + v[B])
    torch.testing.assert_close(explore.arithmetic(toy_encoder, [A, B], [C]), out)
    torch.testing.assert_close(explore.arithmetic(toy_encoder, f"{A} + {B}:2"), v[A] + 2 * v[B])
    with pytest.raises(ValueError):
        explore.arithmetic(toy_encoder, [], [])
    with pytest.raises(ValueError):
        explore.raw_vectors(None, [A])


# --- toy colorizer: learned vectors, interpolation, strips ---------------------------------------

def test_learned_vectors(toy_colorizer):
    tags = list(TOY)
    emb = torch.tensor(list(TOY.values()))
    cond = toy_colorizer.G.cond
    proj, scale = cond.proj, cond.scale  # the projection sees the embedding scaled by √E
    got = explore.learned_vectors(toy_colorizer, tags)
    assert got.shape == (4, toy_colorizer.cfg.tags.k) and got.dtype == np.float32
    np.testing.assert_allclose(got, proj(emb * scale).detach().numpy(), atol=1e-5)
    rel = explore.learned_vectors(toy_colorizer, tags, relative_to_null=True)
    np.testing.assert_allclose(rel, (scale * emb @ proj.weight.T).detach().numpy(), atol=1e-5)


def test_interpolation_endpoints_equal_prompt_colourings(toy_colorizer, sketch):
    imgs = explore.interpolate(toy_colorizer, sketch, A, D, steps=5)
    assert len(imgs) == 5 and all(im.size == sketch.size for im in imgs)
    arr = [np.asarray(im, dtype=int) for im in imgs]
    first, last = (np.asarray(toy_colorizer(sketch, p), dtype=int) for p in (A, D))
    assert np.abs(arr[0] - first).max() <= 1
    assert np.abs(arr[-1] - last).max() <= 1
    assert np.abs(first - last).max() > 10           # the two prompts do colour differently
    assert np.abs(arr[2] - first).max() > 0 and np.abs(arr[2] - last).max() > 0
    # "" is the null prompt; a prepared item works as well as an image
    item = toy_colorizer.prepare(sketch)
    null = explore.interpolate(toy_colorizer, item, "", D, steps=2)
    assert np.abs(np.asarray(null[0], dtype=int) - np.asarray(toy_colorizer(sketch, ""), dtype=int)).max() <= 1
    with pytest.raises(ValueError):
        explore.interpolate(toy_colorizer, sketch, A, D, steps=1)


@pytest.fixture
def toy_attention_colorizer(tiny_cfg, toy_encoder):
    from dataclasses import replace
    cfg = replace(tiny_cfg, tags=replace(tiny_cfg.tags, pool="attention", attn_hidden=4))
    torch.manual_seed(0)
    g = Generator(cfg.gen, cfg.tags, embed_dim=3)
    with torch.no_grad():
        g.cond.proj.weight.mul_(20)
        g.cond.score[2].weight.normal_(std=2.0)                # a learned-looking preference
    return Colorizer(g, cfg, toy_encoder, torch.device("cpu"))


def test_interpolation_with_attention_pooling_ends_on_both_prompts(toy_attention_colorizer, sketch):
    c = toy_attention_colorizer
    imgs = explore.interpolate(c, sketch, f"{A}, {C}", D, steps=4)
    first, last = (np.asarray(c(sketch, p), dtype=int) for p in (f"{A}, {C}", D))
    assert np.abs(np.asarray(imgs[0], dtype=int) - first).max() <= 1
    assert np.abs(np.asarray(imgs[-1], dtype=int) - last).max() <= 1


def test_tag_attention_shares(toy_colorizer, toy_attention_colorizer):
    mean = explore.tag_attention(toy_colorizer, f"{A}, {B}:3")
    assert [t for t, _ in mean] == [A, B] and np.allclose([a for _, a in mean], [0.25, 0.75])
    learned = explore.tag_attention(toy_attention_colorizer, f"{A}, {B}, {C}")
    assert np.isclose(sum(a for _, a in learned), 1.0) and len({round(a, 4) for _, a in learned}) == 3
    assert explore.tag_attention(toy_colorizer, "") == []


def test_head_shares_one_column_per_head(toy_colorizer, toy_attention_colorizer):
    table = explore.head_shares(toy_attention_colorizer, f"{A}, {B}, {C}")
    assert list(table.columns) == ["tag", "head_0"] and list(table.tag) == [A, B, C]
    np.testing.assert_allclose(table.head_0, [a for _, a in explore.tag_attention(toy_attention_colorizer,
                                                                                   f"{A}, {B}, {C}")], rtol=1e-5)
    c = toy_attention_colorizer
    cfg = replace(c.cfg, tags=replace(c.cfg.tags, heads=3))
    g = Generator(cfg.gen, cfg.tags, embed_dim=3)
    table = explore.head_shares(Colorizer(g, cfg, c.encoder, torch.device("cpu")), f"{A}, {B}:3")
    assert list(table.columns) == ["tag", "head_0", "head_1", "head_2"]
    np.testing.assert_allclose(table.iloc[:, 1:].abs().sum(axis=0), 1.0, rtol=1e-5)
    assert len(explore.head_shares(c, "")) == 0


def test_phrase_similarity_ranks_tags_in_both_spaces(toy_colorizer):
    table = explore.phrase_similarity(toy_colorizer, {B: B, A: B}, [A, B, C])
    assert list(table.phrase) == [B, A]
    assert table.raw_rank[0] == 1 and table.learned_rank[0] == 1 and table.raw_nearest[0] == B
    assert table.raw_nearest[1] == A and table.raw_rank[1] == 2
    assert np.isclose(table.raw_cos[0], 1.0) and np.isclose(table.raw_cos[1], 0.8)


def test_colorize_vector_and_strip(toy_colorizer, toy_encoder, sketch):
    vec = explore.arithmetic(toy_encoder, f"{A} + {C} - {C}")
    by_vec = np.asarray(explore.colorize_vector(toy_colorizer, sketch, vec), dtype=int)
    by_prompt = np.asarray(toy_colorizer(sketch, A), dtype=int)
    assert np.abs(by_vec - by_prompt).max() <= 1
    s = explore.strip([sketch, sketch.convert("RGB"), sketch], ["a", "b", "c"])
    assert s.mode == "RGB" and s.width > 3 * sketch.width and s.height > sketch.height


# --- projector -----------------------------------------------------------------------------------

def _read_projector(out: Path):
    from google.protobuf import text_format
    from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig
    config = text_format.Parse((out / "projector_config.pbtxt").read_text(), ProjectorConfig())
    found = {}
    for emb in config.embeddings:
        tensors = np.loadtxt(out / emb.tensor_path, delimiter="\t", ndmin=2)
        lines = (out / emb.metadata_path).read_text().splitlines()
        found[emb.tensor_name.split(":")[0]] = (tensors, [line.split("\t") for line in lines])
    return config, found


def test_projector_export_is_readable_by_tensorboard(toy_colorizer, tmp_path):
    from textcolor.projector import LEARNED_TAG, RAW_TAG, export_projector
    tags = list(TOY)
    out = export_projector(toy_colorizer, tmp_path / "proj", tags=tags)
    assert out == tmp_path / "proj"
    config, found = _read_projector(out)
    assert len(config.embeddings) == 2 and set(found) == {RAW_TAG, LEARNED_TAG}
    k = toy_colorizer.cfg.tags.k
    raw, raw_meta = found[RAW_TAG]
    learned, learned_meta = found[LEARNED_TAG]
    assert raw.shape == (4, 3) and learned.shape == (4, k)
    np.testing.assert_allclose(raw, np.array(list(TOY.values())), atol=1e-6)
    np.testing.assert_allclose(learned, explore.learned_vectors(toy_colorizer, tags), atol=1e-5)
    expected = [["tag", "category"], [A, "character"], [B, "hair_color"], [C, "eye_color"], [D, "general"]]
    assert raw_meta == expected and learned_meta == expected
    assert list(out.glob("events.out.tfevents.*"))

    # TensorBoard's own projector plugin serves both (what the PROJECTOR tab asks for)
    from tensorboard.plugins.base_plugin import TBContext
    from tensorboard.plugins.projector.projector_plugin import ProjectorPlugin
    from werkzeug.test import Client

    class NoRuns:
        def list_runs(self, ctx, experiment_id):
            return []

    apps = ProjectorPlugin(TBContext(logdir=str(out), data_provider=NoRuns())).get_plugin_apps()
    get = lambda route, **q: Client(apps[route]).get(route, query_string=q)  # noqa: E731
    assert json.loads(get("/runs").get_data()) == ["."]
    info = json.loads(get("/info", run=".").get_data())
    shapes = {e["tensorName"]: [int(n) for n in e["tensorShape"]] for e in info["embeddings"]}
    assert shapes == {f"{RAW_TAG}:00000": [4, 3], f"{LEARNED_TAG}:00000": [4, k]}
    body = get("/tensor", run=".", name=f"{LEARNED_TAG}:00000").get_data()
    np.testing.assert_allclose(np.frombuffer(body, np.float32).reshape(4, k), learned, atol=1e-6)
    meta = get("/metadata", run=".", name=f"{RAW_TAG}:00000").get_data(as_text=True)
    assert meta.splitlines()[0] == "tag\tcategory" and len(meta.splitlines()) == 5

    # exporting again into the same directory replaces, it does not append
    export_projector(toy_colorizer, out, tags=tags[:2])
    config, found = _read_projector(out)
    assert len(config.embeddings) == 2 and found[RAW_TAG][0].shape == (2, 3)


def test_export_for_run_uses_the_runs_vocabulary(toy_colorizer, tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    from textcolor.projector import LEARNED_TAG, RAW_TAG, export_for_run
    writer = SummaryWriter(str(tmp_path / "run"))
    names = export_for_run(toy_colorizer.G, toy_colorizer.encoder, None, writer, step=40)
    writer.close()
    assert names == [f"{RAW_TAG}:00040", f"{LEARNED_TAG}:00040"]
    _, found = _read_projector(tmp_path / "run")
    assert found[RAW_TAG][0].shape == (4, 3)                         # the encoder's own 4 tags
    assert [row[0] for row in found[RAW_TAG][1][1:]] == list(TOY)
    assert export_for_run(toy_colorizer.G, None, None, writer) is None  # untagged model: nothing


def test_projector_cli(tiny_cfg, tmp_path, capsys):
    """CLI on a checkpoint whose table holds the whole vocabulary (so no text model loads)."""
    from textcolor.config import to_dict
    from textcolor.projector import LEARNED_TAG, RAW_TAG, main
    names = explore.vocabulary()["tag"].tolist()
    vectors = torch.randn(len(names), 384, generator=torch.Generator().manual_seed(0))
    vectors = vectors / vectors.norm(dim=1, keepdim=True)
    g = Generator(tiny_cfg.gen, tiny_cfg.tags, embed_dim=384)   # the bundled encoder's width: a checkpoint must match it
    ckpt = tmp_path / "tiny.pt"
    torch.save({"format": "textcolor-checkpoint", "version": 1, "step": 0, "config": to_dict(tiny_cfg),
                "G": g.state_dict(), "tags": {"names": names, "vectors": vectors}}, ckpt)
    assert main(["--checkpoint", str(ckpt), "--out", str(tmp_path / "out")]) == 0
    assert "tensorboard --logdir" in capsys.readouterr().out
    _, found = _read_projector(tmp_path / "out")
    assert found[RAW_TAG][0].shape == (len(names), 384)
    assert found[LEARNED_TAG][0].shape == (len(names), tiny_cfg.tags.k)

    for bad in (tmp_path / "missing.pt", tmp_path / "garbage.safetensors"):
        if bad.suffix == ".safetensors":
            bad.write_bytes(b"not a safetensors file")
        assert main(["--checkpoint", str(bad), "--out", str(tmp_path / "bad")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_projector_untagged_model(tmp_path):
    from textcolor.config import load_config
    from textcolor.projector import export_projector
    cfg = load_config(None, ["tags.layout=none", "data.size=32", "gen.base=8", "gen.depth=2", "gen.max_ch=16"])
    colorizer = Colorizer(Generator(cfg.gen, cfg.tags, embed_dim=1), cfg, None, torch.device("cpu"))
    with pytest.raises(ValueError, match="no tags"):
        export_projector(colorizer, tmp_path / "out")
    with pytest.raises(ValueError, match="no tags"):
        explore.learned_vectors(colorizer, [A])


def test_projector_cli_on_the_shipped_model(tmp_path, capsys):
    from textcolor.projector import LEARNED_TAG, RAW_TAG, main
    assert DEFAULT_MODEL.exists(), f"the shipped model {DEFAULT_MODEL} is missing"
    assert main(["--out", str(tmp_path / "out")]) == 0
    capsys.readouterr()
    _, found = _read_projector(tmp_path / "out")
    n = len(explore.vocabulary())
    assert found[RAW_TAG][0].shape[0] == n == found[LEARNED_TAG][0].shape[0]


# --- the notebook --------------------------------------------------------------------------------

def test_notebook_is_stored_without_outputs():
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code, "the notebook has no code cells"
    for i, cell in enumerate(code):
        assert cell.get("outputs") == [], f"code cell {i} has stored outputs"
        assert cell.get("execution_count") is None, f"code cell {i} has an execution_count"
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


@pytest.mark.slow
def test_notebook_executes_end_to_end(monkeypatch):
    """Runs every cell with nbclient on the shipped model (part of the default suite)."""
    import nbformat
    from nbclient import NotebookClient
    assert DEFAULT_MODEL.exists(), f"the notebook needs the shipped model {DEFAULT_MODEL}"
    # the kernel imports textcolor from this checkout even where it is not pip-installed
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    monkeypatch.delenv("MPLBACKEND", raising=False)     # the kernel's inline backend: figures become outputs
    nb = nbformat.read(NOTEBOOK, as_version=4)
    start = time.perf_counter()
    # timeout per cell; startup_timeout for the kernel, generous for a loaded machine
    NotebookClient(nb, timeout=300, startup_timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    elapsed = time.perf_counter() - start
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "hibiki_(kantai_collection) vs akatsuki_(kantai_collection): raw cosine" in text
    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(figures) >= 8, f"expected the 4 plots and 4 image strips, got {len(figures)} figures"
    print(f"notebook executed in {elapsed:.1f} s")
