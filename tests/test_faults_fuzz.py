"""Hostile and broken files: code-running pickles, corrupt checkpoints, fuzzed images and prompts.

Promises:
  * A checkpoint is data, never code: pickles that would run a command (torch.save'd or plain,
    zip or legacy format, nested in a real-looking checkpoint) are refused by load_checkpoint,
    Colorizer.from_checkpoint, `infer.py --checkpoint` (one line, exit 2) and `train.py --resume`,
    and the command never runs. Truncated, bit-flipped, malformed and wrong-architecture
    checkpoints are refused with CheckpointError (one line), never another exception.
  * Every image input either works or fails with BadImageError / a one-line error and a documented
    exit status; nothing raises anything else, hangs (hard per-case time limit) or kills the
    process. Fuzzed with Hypothesis from valid PNG/JPEG/GIF/WebP/BMP/TIFF files of small images,
    truncated, bit-flipped and header-mutated (PNG chunks get valid CRCs so the mutation reaches
    the decoder), plus random bytes, and random prompts (unicode, control characters, lone
    surrogates, 10 000 characters, weights, hundreds of tags).
Case counts per target go to <pytest basetemp>/fault_figures.json and are printed (pytest -s).
"""
from __future__ import annotations

import contextlib
import functools
import io
import json
import math
import os
import pickle
import signal
import struct
import time
import uuid
import zipfile
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

import infer
from textcolor import sketch as sketch_cli
from textcolor.checkpoint import CheckpointError, load_checkpoint, load_generator
from textcolor.colorize import Colorizer
from textcolor.data import FolderDataset
from textcolor.imageio import BadImageError, open_rgb

pytestmark = pytest.mark.slow  # fuzz tests

ROOT = Path(__file__).resolve().parent.parent
CASE_SECONDS = 120          # a case slower than this counts as a hang (generous: the machine is shared)
FUZZ = settings(deadline=None, derandomize=True, database=None, print_blob=True,
                suppress_health_check=list(HealthCheck))


def budget(n: int) -> settings:
    """n examples; FAULT_FUZZ_SCALE=0.1 runs a tenth (quick local iterations)."""
    return settings(FUZZ, max_examples=max(1, round(n * float(os.environ.get("FAULT_FUZZ_SCALE", "1")))))


def record_figures(tmp_path_factory, section: str, figures: dict) -> None:
    path = tmp_path_factory.getbasetemp() / "fault_figures.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data[section] = figures
    path.write_text(json.dumps(data, indent=1, sort_keys=True))
    print(f"\n[fault figures] {section}: {json.dumps(figures, sort_keys=True)}")


def summary(counts: Counter, t0: float, cases: int | None = None) -> dict:
    """Outcome counts, the number of cases, and the CPU seconds this process spent on them."""
    total = sum(counts.values()) if cases is None else cases
    return {**counts, "cases": total, "cpu_s": round(time.process_time() - t0, 1)}


class CaseTimeout(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float = CASE_SECONDS):
    def expire(signum, frame):
        raise CaseTimeout(f"case ran over {seconds}s: a hang")
    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@contextlib.contextmanager
def captured():
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        yield out, err


def one_line(text: str) -> bool:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return len(lines) == 1 and "Traceback" not in text


# ---------------------------------------------------------------------------------------------
# fixtures

@pytest.fixture(scope="module")
def checkpoint(request, tmp_path_factory) -> Path:
    """A real tiny train.py checkpoint (the session's shared one when conftest provides it)."""
    try:
        return Path(request.getfixturevalue("tiny_checkpoint"))
    except pytest.FixtureLookupError:
        from textcolor.config import load_config
        from textcolor.training import train
        cfg = load_config(None, [
            "data.size=32", "data.synth_n=8", "data.val_n=2", "data.workers=0", "gen.base=8", "gen.depth=2",
            "gen.max_ch=16", "disc.base=8", "disc.layers=2", "tags.k=4", "train.steps=2", "train.batch_size=2",
            "train.image_every=100", "train.ckpt_every=2", "train.ema=0.5"])
        return train(cfg, tmp_path_factory.mktemp("fault_ckpt") / "run").checkpoint


@pytest.fixture(scope="module")
def colorizer(checkpoint) -> Colorizer:
    return Colorizer.from_checkpoint(checkpoint, device="cpu")


@pytest.fixture
def small_png(tmp_path) -> Path:
    path = tmp_path / "sketch.png"
    Image.fromarray((np.random.default_rng(1).random((40, 52)) > 0.15).astype(np.uint8) * 255).save(path)
    return path


# ---------------------------------------------------------------------------------------------
# 4a. hostile pickles

class Evil:
    """Unpickling this runs a shell command."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _real_zip_with(checkpoint: Path, payload: bytes, dst: Path) -> None:
    """The real checkpoint's zip with its data.pkl replaced by `payload`."""
    with zipfile.ZipFile(checkpoint) as src, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as out:
        for info in src.infolist():
            data = payload if info.filename.endswith("/data.pkl") else src.read(info)
            out.writestr(info, data)


def hostile_files(directory: Path, marker: Path, checkpoint: Path) -> dict[str, Path]:
    evil = Evil(marker)
    files: dict[str, Path] = {}

    def add(name: str, writer) -> None:
        files[name] = directory / name
        writer(files[name])
    add("torch_save.pt", lambda p: torch.save(evil, p))
    add("torch_save_legacy.pt", lambda p: torch.save(evil, p, _use_new_zipfile_serialization=False))
    add("nested_in_checkpoint.pt", lambda p: torch.save(
        {"format": "textcolor-checkpoint", "version": 1, "step": 1, "config": {}, "G": {"w": evil}}, p))
    add("in_config.pt", lambda p: torch.save(
        {"format": "textcolor-checkpoint", "version": 1, "step": 1, "config": {"name": evil}, "G": {}}, p))
    for proto in (0, 2, 5):
        add(f"plain_pickle_p{proto}.pt", lambda p, proto=proto: p.write_bytes(pickle.dumps(evil, protocol=proto)))
    # hand-written protocol-0 opcodes inside a genuine checkpoint's zip
    proto0 = f"cposix\nsystem\n(V touch {marker}\ntR.".encode()
    add("real_zip_evil_data_pkl.pt", lambda p: _real_zip_with(checkpoint, proto0, p))
    add("real_zip_evil_reduce.pt", lambda p: _real_zip_with(checkpoint, pickle.dumps(evil, protocol=2), p))
    add("builtins_eval.pt", lambda p: _real_zip_with(
        checkpoint, f"cbuiltins\neval\n(V__import__('os').system('touch {marker}')\ntR.".encode(), p))
    add("pickle_named.safetensors", lambda p: p.write_bytes(pickle.dumps(evil)))
    # a safetensors header that claims an absurd length
    add("header_bomb.safetensors", lambda p: p.write_bytes(struct.pack("<Q", 2 ** 62) + b"{}"))
    return files


def test_code_running_checkpoints_are_refused_everywhere(checkpoint, small_png, tmp_path, tmp_path_factory, capsys):
    import train as train_cli
    marker = Path(f"/tmp/pwned_{uuid.uuid4().hex}")
    files = hostile_files(tmp_path, marker, checkpoint)
    # sanity: the payload really runs when unpickled without weights_only
    probe = Path(f"/tmp/pwned_{uuid.uuid4().hex}")
    pickle.loads(pickle.dumps(Evil(probe)))
    assert probe.exists()
    probe.unlink()
    refused = Counter()
    for name, path in files.items():
        if path.suffix == ".pt":
            with pytest.raises(CheckpointError) as info:
                load_checkpoint(path)
            assert "\n" not in str(info.value)
            refused["load_checkpoint"] += 1
        with pytest.raises(CheckpointError):
            Colorizer.from_checkpoint(path, device="cpu")
        refused["Colorizer.from_checkpoint"] += 1
        code = infer.main(["--sketch", str(small_png), "--checkpoint", str(path), "--out", str(tmp_path / "o.png")])
        _, err = capsys.readouterr()
        assert code == 2 and one_line(err) and err.startswith("error: "), (name, err)
        refused["infer.py --checkpoint"] += 1
        if path.suffix == ".pt":  # a run directory whose newest checkpoint is hostile
            run = tmp_path / f"run_{path.stem}"
            (run / "checkpoints").mkdir(parents=True)
            os.link(path, run / "checkpoints" / "step_0000001.pt")
            os.link(path, run / "checkpoints" / "last.pt")
            code = train_cli.main(["--resume", "--out", str(run), "--config", str(ROOT / "configs/demo.yaml")])
            _, err = capsys.readouterr()
            assert code == 2 and one_line(err) and err.startswith("error: "), (name, err)
            refused["train.py --resume"] += 1
        assert not marker.exists(), f"{name}: the payload ran"
    assert not (tmp_path / "o.png").exists()
    record_figures(tmp_path_factory, "hostile_checkpoints", {"files": len(files), "refusals": dict(refused),
                                                              "total_refusals": sum(refused.values())})


def _malformed_states(state: dict) -> dict[str, dict]:
    base = {k: v for k, v in state.items()}
    other_arch = {k: (torch.zeros(3, 3) if v.dim() == 4 else v) for k, v in state["G"].items()}
    cases = {
        "no_G": {k: v for k, v in base.items() if k not in ("G", "G_ema")},
        "no_config": {k: v for k, v in base.items() if k != "config"},
        "config_is_list": {**base, "config": [1, 2]},
        "config_wrong_types": {**base, "config": {**base["config"], "gen": {"base": "wide"}}},
        "config_unknown_key": {**base, "config": {**base["config"], "surprise": 1}},
        "G_is_string": {**base, "G": "weights", "G_ema": "weights"},
        "G_holds_strings": {**base, "G_ema": {k: "x" for k in base["G"]}},
        "wrong_shapes": {**base, "G_ema": other_arch},
        "missing_weights": {**base, "G_ema": dict(list(base["G_ema"].items())[:3])},
        "tags_is_string": {**base, "tags": "hatsune_miku"},
        "tag_table_mismatch": {**base, "tags": {**base["tags"], "vectors": torch.zeros(2, 384)}},
        "tag_vectors_not_tensor": {**base, "tags": {**base["tags"], "vectors": [1.0, 2.0]}},
        "version_is_string": {**base, "version": "1"},
        "version_from_future": {**base, "version": 99},
        "step_is_string": {**base, "step": "12"},
    }
    cfg = json.loads(json.dumps(base["config"]))
    cfg["gen"]["base"] = 4
    cases["config_other_architecture"] = {**base, "config": cfg}
    return cases


def test_malformed_and_wrong_architecture_checkpoints_are_refused(checkpoint, small_png, tmp_path, capsys):
    import train as train_cli
    state = load_checkpoint(checkpoint)
    for name, bad in _malformed_states(state).items():
        path = tmp_path / f"{name}.pt"
        torch.save(bad, path)
        with pytest.raises(CheckpointError) as info:
            Colorizer.from_checkpoint(path, device="cpu")
        assert "\n" not in str(info.value), name
        code = infer.main(["--sketch", str(small_png), "--checkpoint", str(path), "--out", str(tmp_path / "o.png")])
        _, err = capsys.readouterr()
        assert code == 2 and one_line(err) and err.startswith("error: "), (name, err)
        run = tmp_path / f"run_{name}"
        (run / "checkpoints").mkdir(parents=True)
        torch.save(bad, run / "checkpoints" / "step_0000002.pt")
        code = train_cli.main(["--resume", "--out", str(run), "--config", str(ROOT / "configs/demo.yaml"),
                               *TINY_OVERRIDES])
        _, err = capsys.readouterr()
        assert code == 2 and one_line(err) and err.startswith("error: "), (name, err)


TINY_OVERRIDES = ["data.size=32", "data.synth_n=8", "data.val_n=2", "data.workers=0", "gen.base=8",
                  "gen.depth=2", "gen.max_ch=16", "disc.base=8", "disc.layers=2", "tags.k=4",
                  "train.batch_size=2", "train.steps=4"]


# ---------------------------------------------------------------------------------------------
# 4b. fuzzed checkpoint bytes

@st.composite
def damaged(draw, data: bytes):
    """Truncations and bit flips, biased to the zip's local headers, data.pkl and central directory."""
    data = bytearray(data)
    n = len(data)
    kind = draw(st.sampled_from(["truncate", "flip", "flip", "overwrite"]))
    if kind == "truncate":
        return bytes(data[:draw(st.integers(0, n - 1))])
    region = draw(st.sampled_from(["head", "tail", "anywhere"]))
    lo, hi = {"head": (0, min(n, 4096)), "tail": (max(0, n - 4096), n), "anywhere": (0, n)}[region]
    for _ in range(draw(st.integers(1, 8))):
        pos = draw(st.integers(lo, hi - 1))
        if kind == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        else:
            data[pos] = draw(st.integers(0, 255))
    return bytes(data)


def test_fuzzed_checkpoint_bytes_load_or_raise_checkpoint_error(checkpoint, tmp_path, tmp_path_factory):
    original = checkpoint.read_bytes()
    counts, t0 = Counter(), time.process_time()

    @budget(150)
    @given(damaged(original))
    def case(data):
        path = tmp_path / "fuzzed.pt"
        path.write_bytes(data)
        with time_limit():
            try:
                c = Colorizer.from_checkpoint(path, device="cpu")
                counts["loaded"] += 1
                assert isinstance(c.G, torch.nn.Module)
            except CheckpointError as e:
                assert "\n" not in str(e)
                counts["refused"] += 1
    case()
    record_figures(tmp_path_factory, "fuzz_checkpoint_bytes", summary(counts, t0))


# ---------------------------------------------------------------------------------------------
# 4c. fuzzed images

@functools.lru_cache(maxsize=1)
def seed_images() -> tuple[tuple[str, bytes], ...]:
    """Valid files of small images: every format, several modes and options."""
    rng = np.random.default_rng(0)
    rgb = (rng.random((20, 33, 3)) * 255).astype(np.uint8)
    rgb[::4] = 0  # some line art
    base = Image.fromarray(rgb)
    rgba = base.copy()
    rgba.putalpha(Image.fromarray((rng.random((20, 33)) * 255).astype(np.uint8)))
    variants = [
        ("PNG", ".png", base, {}), ("PNG", ".png", rgba, {}), ("PNG", ".png", base.convert("L"), {}),
        ("PNG", ".png", base.convert("P"), {"transparency": 3}), ("PNG", ".png", base.convert("1"), {}),
        ("PNG", ".png", base.convert("I;16"), {}), ("PNG", ".png", base, {"optimize": True}),
        ("JPEG", ".jpg", base, {"quality": 80}), ("JPEG", ".jpg", base.convert("L"), {}),
        ("JPEG", ".jpg", base.convert("CMYK"), {}), ("JPEG", ".jpg", base, {"progressive": True}),
        ("GIF", ".gif", base.convert("P"), {}), ("GIF", ".gif", base.convert("P"), {"transparency": 0}),
        ("WEBP", ".webp", base, {"quality": 70}), ("WEBP", ".webp", rgba, {"lossless": True}),
        ("BMP", ".bmp", base, {}), ("BMP", ".bmp", base.convert("P"), {}), ("BMP", ".bmp", base.convert("1"), {}),
        ("TIFF", ".tif", base, {}), ("TIFF", ".tiff", rgba, {"compression": "tiff_lzw"}),
        ("TIFF", ".tif", base.convert("L"), {"compression": "tiff_deflate"}), ("TIFF", ".tif", base.convert("F"), {}),
        ("TIFF", ".tif", base.convert("I;16"), {}), ("TIFF", ".tif", base.convert("CMYK"), {}),
    ]
    out = []
    for fmt, ext, img, opts in variants:
        buf = io.BytesIO()
        img.save(buf, fmt, **opts)
        out.append((ext, buf.getvalue()))
    # an animated GIF and a JPEG with an EXIF rotation
    buf = io.BytesIO()
    base.convert("P").save(buf, "GIF", save_all=True, append_images=[base.transpose(0).convert("P")], duration=10)
    out.append((".gif", buf.getvalue()))
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    base.save(buf, "JPEG", exif=exif)
    out.append((".jpg", buf.getvalue()))
    return tuple(out)


EXTS = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff")
INTERESTING = (0, 1, 2, 7, 8, 15, 16, 255, 256, 0x7FFF, 0x8000, 0xFFFF, 30000, 0x7FFFFFFF, 0xFFFFFFFF)


def fix_png_crcs(data: bytearray) -> bytearray:
    """Recompute every chunk CRC so that a mutation gets past PIL's CRC check into the decoder."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return data
    pos = 8
    while pos + 12 <= len(data):
        length = struct.unpack(">I", data[pos:pos + 4])[0]
        end = pos + 8 + length
        if end + 4 > len(data):
            break
        data[end:end + 4] = struct.pack(">I", zlib.crc32(bytes(data[pos + 4:end])))
        pos = end + 4
    return data


@st.composite
def image_file(draw) -> tuple[str, bytes]:
    seeds = seed_images()
    kind = draw(st.sampled_from(["mutated"] * 6 + ["valid", "random", "magic"]))
    if kind == "random":
        return draw(st.sampled_from(EXTS)), draw(st.binary(max_size=2048))
    ext, data = draw(st.sampled_from(seeds))
    if kind == "magic":  # a real header, then noise
        return ext, data[:draw(st.integers(4, 64))] + draw(st.binary(max_size=512))
    data = bytearray(data)
    if kind == "mutated":
        for _ in range(draw(st.integers(1, 4))):
            op = draw(st.sampled_from(["truncate", "flip", "header", "int", "insert", "delete"]))
            n = len(data)
            if n == 0:
                break
            header = draw(st.booleans())
            pos = draw(st.integers(0, min(n, 96) - 1 if header else n - 1))
            if op == "truncate":
                del data[pos:]
            elif op == "flip":
                data[pos] ^= 1 << draw(st.integers(0, 7))
            elif op == "header":
                chunk = draw(st.binary(min_size=1, max_size=8))
                data[pos:pos + len(chunk)] = chunk
            elif op == "int":
                value, width = draw(st.sampled_from(INTERESTING)), draw(st.sampled_from([2, 4]))
                fmt = draw(st.sampled_from(["<", ">"])) + ("H" if width == 2 else "I")
                data[pos:pos + width] = struct.pack(fmt, value & (0xFFFF if width == 2 else 0xFFFFFFFF))
            elif op == "insert":
                data[pos:pos] = draw(st.binary(min_size=1, max_size=64))
            else:
                del data[pos:pos + draw(st.integers(1, 64))]
        if draw(st.booleans()):
            data = fix_png_crcs(data)
    if draw(st.integers(0, 9)) == 0:
        ext = draw(st.sampled_from(EXTS))  # wrong extension
    return ext, bytes(data)


FUZZ_MAX_PIXELS = 250_000


@pytest.fixture
def smaller_pixel_limit(monkeypatch):
    """A 0.25 MP limit instead of 64 MP while fuzzing the pipelines: a mutated header claiming e.g.
    7999×7999 (an 800-byte GIF does decode to 64 MP) is then refused as 'too large' instead of
    spending seconds and gigabytes per case in XDoG. open_rgb's own target keeps the real limit."""
    from textcolor import data as data_mod
    from textcolor import imageio
    monkeypatch.setattr(imageio.open_rgb, "__defaults__", (FUZZ_MAX_PIXELS,))
    monkeypatch.setattr(imageio.probe, "__defaults__", (FUZZ_MAX_PIXELS,))
    monkeypatch.setattr(data_mod.check_image, "__defaults__", (FUZZ_MAX_PIXELS,))


def _write(directory: Path, ext: str, data: bytes, stem: str = "img") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stem}{ext}"
    path.write_bytes(data)
    return path


def test_fuzz_open_rgb(tmp_path, tmp_path_factory):
    counts, t0 = Counter(), time.process_time()

    @budget(900)
    @given(image_file())
    def case(f):
        path = _write(tmp_path, *f)
        with time_limit():
            try:
                img = open_rgb(path)
            except BadImageError as e:
                assert str(e).startswith(f"{path}: ") and "\n" not in str(e)
                counts[f"refused:{e.reason}"] += 1
                return
        assert img.mode == "RGB" and min(img.size) > 0
        counts["ok"] += 1

    @budget(200)
    @given(hnp.arrays(st.sampled_from([np.uint8, np.uint16, np.float32, np.float64, np.float16, np.bool_,
                                       np.int8, np.int64, np.complex64]),
                      hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=12)))
    def array_case(a):
        with time_limit():
            try:
                img = open_rgb(a)
            except BadImageError as e:
                assert "\n" not in str(e)
                counts[f"array_refused:{e.reason}"] += 1
                return
        assert img.mode == "RGB"
        counts["array_ok"] += 1
    case()
    array_case()
    record_figures(tmp_path_factory, "fuzz_open_rgb", summary(counts, t0))


def test_fuzz_folder_dataset_getitem_never_raises(tmp_path, tmp_path_factory, smaller_pixel_limit):
    counts, t0 = Counter(), time.process_time()
    good = seed_images()[0]

    @budget(250)
    @given(image_file(), st.binary(max_size=300), st.integers(0, 2 ** 32 - 1))
    def case(f, sidecar, seed):
        root = tmp_path / f"ds{counts['cases']}"
        counts["cases"] += 1
        _write(root, *good, stem="a_good")
        path = _write(root / "sub", *f, stem="b_fuzzed")
        path.with_suffix(".txt").write_bytes(sidecar)
        with time_limit():
            ds = FolderDataset(root, size=16)
            counts["kept_by_scan" if len(ds) == 2 else "skipped_by_scan"] += 1
            for i in range(len(ds)):
                for item in (i, (i, seed)):
                    s = ds[item]
                    assert s["image"].shape == s["sketch"].shape == (3, 16, 16)
                    assert bool(torch.isfinite(s["image"]).all()) and s["image"].abs().max() <= 1
                    assert isinstance(s["tags"], str)
                    counts["replaced_at_load" if s["bad"] else "loaded"] += 1
    case()
    record_figures(tmp_path_factory, "fuzz_folder_dataset", summary(counts, t0, cases=counts["cases"]))


def test_fuzz_sketch_cli(tmp_path, tmp_path_factory, smaller_pixel_limit):
    counts, t0 = Counter(), time.process_time()

    @budget(300)
    @given(image_file())
    def case(f):
        d = tmp_path / f"c{sum(counts.values())}"
        path = _write(d, *f)
        with time_limit(), captured() as (out, err):
            code = sketch_cli.main([str(path), "--out", str(d / "out")])
        assert code in (0, 1), err.getvalue()
        assert "Traceback" not in err.getvalue()
        outputs = list((d / "out").iterdir())
        if code == 0:
            assert [p.name for p in outputs] == ["img.sketch.png"]
            assert Image.open(outputs[0]).size == open_rgb(path).size
            counts["ok"] += 1
        else:
            assert one_line(err.getvalue()) and str(path) in err.getvalue(), err.getvalue()
            assert outputs == []  # no partial file, no temp file
            counts["refused"] += 1

    weird = st.sampled_from([0.0, -0.0, -1.0, 1e-300, 1e6, 1e300, math.inf, -math.inf, math.nan])
    usual = {"sigma": st.floats(0.05, 5), "k": st.floats(0.5, 10), "p": st.floats(-50, 200),
             "eps": st.floats(-1, 1), "phi": st.floats(0, 1e10)}

    @budget(100)
    @given(st.fixed_dictionaries({k: st.one_of(v, v, v, weird) for k, v in usual.items()}))
    def args_case(xdog):
        d = tmp_path / f"a{sum(counts.values())}"
        path = _write(d, *seed_images()[0])
        argv = [str(path), "--out", str(d / "out")] + [f"--{k}={v!r}" for k, v in xdog.items()]
        with time_limit(), captured() as (out, err):
            code = sketch_cli.main(argv)
        assert code in (0, 2), (xdog, err.getvalue())
        assert code == 0 or one_line(err.getvalue()), err.getvalue()
        counts[f"xdog_args_exit_{code}"] += 1
    case()
    args_case()
    record_figures(tmp_path_factory, "fuzz_sketch_cli", summary(counts, t0))


WEIRD_PROMPTS = [
    "", ",", ",,,,", ":", "::1.5", "a:1e999", "a:nan", "a:-inf", "hatsune_miku:1e308", "hatsune_miku:-1e308",
    "red_hair:0", " \t\n\r\x00\x1b[31m\x7f", "\u202e\u200b\ufeff", "\ud800", "\udfff x", "😀" * 50,
    "a" * 10_000, ",".join(f"tag{i}" for i in range(100)), ("hatsune_miku, " * 1000)[:10_000],
    "\x00" * 10_000, "ℌ𝔞𝔱𝔰𝔲𝔫𝔢 𝔪𝔦𝔨𝔲", "hibiki_(kantai_collection)", "monochrome, greyscale, red_hair:2",
    "Ｈａｔｓｕｎｅ＿Ｍｉｋｕ", "'; DROP TABLE tags; --", "<script>alert(1)</script>", "../../etc/passwd",
]
prompts = st.one_of(
    st.sampled_from(WEIRD_PROMPTS),
    st.text(max_size=80),
    st.text(st.characters(codec="utf-8", categories=["Cc", "Cf", "Zs", "Zl", "Zp", "Mn", "So"]), max_size=40),
    st.builds(lambda s: (s * (10_000 // len(s) + 1))[:10_000], st.text(min_size=1, max_size=30)),
    st.lists(st.text(max_size=12), max_size=20).map(", ".join),
)
strengths = st.one_of(st.floats(-3, 3), st.sampled_from([0.0, 1.0, 1e6, -1e6]))


def test_fuzz_colorizer_images_and_prompts(colorizer, tmp_path, tmp_path_factory, smaller_pixel_limit):
    """The bulk of infer.py's work: Colorizer.prepare + colorize_prepared, model loaded once."""
    counts, t0 = Counter(), time.process_time()

    @budget(300)
    @given(image_file(), prompts, strengths, st.booleans())
    def case(f, prompt, strength, from_color):
        path = _write(tmp_path, *f)
        with time_limit():
            try:
                item = colorizer.prepare(path, from_color=from_color)
            except BadImageError as e:
                assert "\n" not in str(e)
                counts["image_refused"] += 1
                return
            [out] = colorizer.colorize_prepared([item], [prompt], strength)
        assert out.size == item.size and out.mode == "RGB"
        counts["coloured"] += 1

    item = colorizer.prepare(_write(tmp_path, *seed_images()[0], stem="fixed"))

    @budget(200)
    @given(st.lists(prompts, min_size=1, max_size=4), strengths)
    def prompt_case(batch, strength):
        with time_limit():
            emb = colorizer.embed(batch)
            outs = colorizer.colorize_prepared([item] * len(batch), batch, strength)
        assert bool(torch.isfinite(emb).all()), batch  # else the picture is NaN cast to uint8
        assert [o.size for o in outs] == [item.size] * len(batch)
        counts["prompt_batches"] += 1
    case()
    prompt_case()
    with pytest.raises(ValueError, match="finite"):
        colorizer.colorize_prepared([item], ["red_hair"], math.nan)
    record_figures(tmp_path_factory, "fuzz_colorizer", summary(counts, t0))


def test_fuzz_infer_main(colorizer, checkpoint, tmp_path, tmp_path_factory, smaller_pixel_limit):
    """Real infer.main calls; prompts come from a pool embedded once (no text-model load per call)."""
    pool = WEIRD_PROMPTS + ["red_hair", "blue_eyes, twintails"]
    colorizer.embed(pool)  # fills the on-disk tag cache that each infer.main call reads
    counts, t0 = Counter(), time.process_time()

    @budget(40)
    @given(image_file(), st.lists(st.sampled_from(pool), min_size=1, max_size=3), st.booleans(),
           st.sampled_from(["1", "0.5", "2", "nan", "inf", "-1"]), st.sampled_from([None, "16", "32", "30", "4"]),
           st.booleans())
    def case(f, tags, from_color, strength, size, grid):
        d = tmp_path / f"m{sum(counts.values())}"
        path = _write(d, *f)
        argv = ["--sketch", str(path), "--checkpoint", str(checkpoint), "--out", str(d / "out"),
                f"--strength={strength}", *(f"--tags={t}" for t in tags)]
        argv += ["--from-color"] if from_color else []
        argv += [f"--size={size}"] if size else []
        argv += ["--grid", str(d / "grid.png")] if grid else []
        with time_limit(), captured() as (out, err):
            code = infer.main(argv)
        assert code in (0, 2), err.getvalue()
        if strength in ("nan", "inf"):
            assert code == 2, err.getvalue()  # "strength must be a finite number" (or a bad image first)
        outputs = sorted((d / "out").iterdir()) if (d / "out").exists() else []
        if code == 0:
            assert len(outputs) == len(set(tags)), (tags, outputs)  # one file per distinct prompt
            assert not grid or Image.open(d / "grid.png").width > 0
            size_in = open_rgb(path).size
            assert all(Image.open(p).size == size_in for p in outputs)
            counts["ok"] += 1
        else:
            assert one_line(err.getvalue()) and err.getvalue().startswith("error: "), err.getvalue()
            assert not [p for p in outputs if p.name.startswith(".")], "temp file left"
            counts["refused"] += 1
    case()
    # a 10 000-character prompt as a grid label (shortening it was quadratic: minutes)
    src = _write(tmp_path / "long", *seed_images()[0])
    with time_limit(60), captured() as (out, err):
        code = infer.main(["--sketch", str(src), "--checkpoint", str(checkpoint), "--grid", str(tmp_path / "g.png"),
                           "--tags=" + "a" * 10_000, "--tags=" + ("hatsune_miku, " * 1000)[:10_000]])
    assert code == 0, err.getvalue()
    counts["ok"] += 1
    record_figures(tmp_path_factory, "fuzz_infer_main", summary(counts, t0))


def test_fuzz_web_page_request(colorizer, tmp_path, tmp_path_factory, smaller_pixel_limit, monkeypatch):
    """textcolor/app.py's colorize_request never raises."""
    from textcolor import app
    monkeypatch.setattr(app.load_source, "__defaults__", (FUZZ_MAX_PIXELS,))
    counts, t0 = Counter(), time.process_time()
    anything = st.one_of(st.none(), st.text(max_size=20), st.floats(), st.integers(), st.booleans(),
                         st.binary(max_size=20), st.lists(st.integers(), max_size=3))

    @budget(250)
    @given(image_file(), st.sampled_from(["path", "bytes", "pil", "array", "junk"]),
           st.one_of(prompts, st.lists(prompts, max_size=12).map("\n".join), anything), st.one_of(strengths, anything),
           st.one_of(st.booleans(), anything), anything)
    def case(f, form, prompts_text, strength, from_color, junk):
        path = _write(tmp_path, *f)
        image = {"path": str(path), "bytes": f[1], "junk": junk}.get(form)
        if form in ("pil", "array"):
            try:
                image = Image.open(path) if form == "pil" else np.asarray(Image.open(path))
            except Exception:
                image = f[1]
        with time_limit():
            images, message = app.colorize_request(colorizer, image, prompts_text, strength, from_color)
        assert isinstance(message, str) and isinstance(images, list)
        assert all(isinstance(i, Image.Image) for i in images)
        counts["coloured" if images else "refused"] += 1
    case()
    record_figures(tmp_path_factory, "fuzz_web_page", summary(counts, t0))
