"""Image reading, datasets with faulty files mixed in, the prepare cache and the sketch CLI."""
import hashlib
import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from textcolor.config import Config, XDoGConfig
from textcolor.data import (CacheDataset, DatasetError, FolderDataset, TableDataset, augment, build_dataset,
                            crop, resize_short, summarize_skipped)
from textcolor.imageio import BadImageError, OutputError, open_rgb, probe, save_png_atomic
from textcolor import prepare, sketch

SIZE = 32


# ---------------------------------------------------------------- crafted files

def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width×height but whose pixel data is a few bytes: a bomb header."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
            + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + png_chunk(b"IEND", b""))


def noise_image(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def scene_image(w: int, h: int, seed: int) -> Image.Image:
    """Smooth colours with a dark bar, so sketches have a few lines."""
    yy, xx = np.mgrid[0:h, 0:w]
    a = np.stack([(xx * 255 // w), (yy * 255 // h), np.full_like(xx, 60 * seed % 256)], -1).astype(np.uint8)
    a[h // 3: h // 3 + 2, :] = 0
    return Image.fromarray(a)


def truncated_png(path: Path) -> None:
    buf = io.BytesIO()
    noise_image(48, 48).save(buf, "PNG")
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])


def tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        h.update(str(p.relative_to(root)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


GOOD = {  # name → (size, tags file text or None)
    "a.png": ((48, 40), "hatsune_miku, twintails"),
    "b.JPG": ((40, 56), "hibiki_(kantai_collection) white_hair"),
    "sub/c.webp": ((64, 32), None),
    "d.png": ((40, 40), "monochrome"),
}
FAULTY = {  # name → expected skip reason
    "empty.png": "empty",
    "text.jpg": "not an image",
    "tiny.png": "too small",
    "bomb.png": "too large",
    "big.png": "too large",
}


@pytest.fixture
def image_folder(tmp_path) -> Path:
    root = tmp_path / "src"
    (root / "sub").mkdir(parents=True)
    for i, (name, (size, tags)) in enumerate(GOOD.items()):
        scene_image(*size, seed=i).save(root / name)
        if tags is not None:
            (root / name).with_suffix(".txt").write_text(tags)
    (root / "empty.png").write_bytes(b"")
    (root / "text.jpg").write_text("<html>404 not found</html>")
    noise_image(8, 8).save(root / "tiny.png")
    (root / "bomb.png").write_bytes(png_header_only(100_000, 100_000))   # PIL's own bomb limit
    (root / "big.png").write_bytes(png_header_only(10_000, 7_000))       # over our 64 MP only
    truncated_png(root / "trunc.png")                                     # header fine, data cut
    noise_image(48, 48).save(root / "a.mask.png")                        # derived files: ignored
    noise_image(48, 48).save(root / "a.sketch.png")
    (root / "notes.txt").write_text("not an image and not a sidecar")
    return root


def check_sample(s: dict, size: int = SIZE) -> None:
    """A loader item; synthetic samples also carry their label mask (the region terms' input)."""
    assert set(s) - {"mask"} == {"sketch", "image", "tags", "bad"}
    if "mask" in s:
        assert s["mask"].shape == (size, size) and s["mask"].dtype == torch.uint8
    for key in ("sketch", "image"):
        t = s[key]
        assert t.shape == (3, size, size) and t.dtype == torch.float32
        assert t.min() >= -1 and t.max() <= 1
    assert torch.equal(s["sketch"][0], s["sketch"][1])
    assert isinstance(s["tags"], str) and isinstance(s["bad"], str)


# ---------------------------------------------------------------- open_rgb

def _mode_cases():
    p = Image.new("P", (4, 2))
    p.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    p.putpixel((1, 0), 1)
    p.info["transparency"] = 1                      # palette entry 1 (blue) is transparent
    la = Image.new("LA", (4, 2), (0, 128))
    i16 = Image.fromarray(np.full((2, 4), 30000, np.uint16))
    assert i16.mode == "I;16"
    return [
        ("1", Image.new("1", (4, 2), 1), "PNG", (255, 255, 255)),
        ("L", Image.new("L", (4, 2), 100), "PNG", (100, 100, 100)),
        ("P", p, "PNG", (255, 0, 0)),              # pixel (0, 0); (1, 0) is checked to be white
        ("LA", la, "PNG", (127, 127, 127)),        # black at alpha 128 over white
        ("RGBA", Image.new("RGBA", (4, 2), (255, 0, 0, 0)), "PNG", (255, 255, 255)),
        ("CMYK", Image.new("CMYK", (4, 2), (255, 0, 0, 0)), "TIFF", (0, 255, 255)),
        ("I;16", i16, "PNG", (117, 117, 117)),     # 30000/257, where PIL's convert would clip to 255
        ("I", Image.fromarray(np.full((2, 4), 65535, np.int32)), "TIFF", (255, 255, 255)),
        ("F", Image.fromarray(np.full((2, 4), 0.5, np.float32)), "TIFF", (128, 128, 128)),
        ("RGB", Image.new("RGB", (4, 2), (1, 2, 3)), "PNG", (1, 2, 3)),
    ]


@pytest.mark.parametrize("mode,img,fmt,expected", _mode_cases(), ids=lambda v: v if isinstance(v, str) else "")
def test_open_rgb_modes_in_memory_and_from_file(tmp_path, mode, img, fmt, expected):
    assert img.mode == mode
    path = tmp_path / f"x.{fmt.lower()}"
    img.save(path, fmt)
    for source in (img, path, str(path)):
        out = open_rgb(source)
        assert out.mode == "RGB" and out.size == (4, 2)
        assert np.abs(np.asarray(out)[0, 0].astype(int) - expected).max() <= 1, (source, np.asarray(out)[0, 0])
    if mode == "P":
        assert tuple(np.asarray(open_rgb(path))[0, 1]) == (255, 255, 255)


def test_transparent_png_composites_to_white(tmp_path):
    a = np.zeros((6, 6, 4), np.uint8)
    a[:3, :, 3] = 255          # top half opaque black, bottom half fully transparent black
    Image.fromarray(a).save(tmp_path / "t.png")
    out = np.asarray(open_rgb(tmp_path / "t.png"))
    assert (out[:3] == 0).all() and (out[3:] == 255).all()


def test_exif_orientation_applied(tmp_path):
    a = np.zeros((16, 32, 3), np.uint8)
    a[:, :16] = (255, 0, 0)    # left red, right blue
    a[:, 16:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6           # "rotate 90° clockwise to display"
    Image.fromarray(a).save(tmp_path / "r.jpg", quality=95, exif=exif)
    out = np.asarray(open_rgb(tmp_path / "r.jpg")).astype(int)
    assert out.shape == (32, 16, 3)
    assert out[4, 8, 0] > 200 and out[4, 8, 2] < 60      # the left (red) half is now on top
    assert out[28, 8, 2] > 200 and out[28, 8, 0] < 60


@pytest.mark.parametrize("arr,expected", [
    (np.full((3, 5), 7, np.uint8), (7, 7, 7)),
    (np.full((3, 5, 1), 7, np.uint8), (7, 7, 7)),
    (np.full((3, 5, 3), (1, 2, 3), np.uint8), (1, 2, 3)),
    (np.zeros((3, 5, 4), np.uint8), (255, 255, 255)),
    (np.full((3, 5, 3), 0.5, np.float32), (128, 128, 128)),
    (np.full((3, 5), 1.0, np.float64), (255, 255, 255)),
])
def test_open_rgb_arrays(arr, expected):
    out = open_rgb(arr)
    assert out.mode == "RGB" and out.size == (5, 3)
    assert tuple(np.asarray(out)[1, 1]) == expected


@pytest.mark.parametrize("arr", [np.zeros((3, 5, 2), np.uint8), np.zeros((0, 5), np.uint8), np.zeros((3, 5), np.int64)])
def test_open_rgb_refuses_odd_arrays(arr):
    with pytest.raises(BadImageError):
        open_rgb(arr)


def test_bad_files_give_one_line_messages(image_folder):
    expected = {
        "empty.png": "empty file",
        "text.jpg": "not an image",
        "big.png": "10000x7000 exceeds the 64-megapixel limit",
        "bomb.png": "decompression-bomb limit",
        "trunc.png": "truncated or corrupt image",
        "missing.png": "no such file",
    }
    for name, text in expected.items():
        with pytest.raises(BadImageError) as e:
            open_rgb(image_folder / name)
        msg = str(e.value)
        assert msg.startswith(str(image_folder / name)) and text in msg and "\n" not in msg
    with pytest.raises(BadImageError, match="zero-size"):
        open_rgb(Image.new("RGB", (0, 3)))
    assert probe(image_folder / "trunc.png") == (48, 48)   # the header alone looks fine


def test_save_png_atomic(tmp_path):
    img = Image.new("RGB", (3, 2), (9, 8, 7))
    save_png_atomic(img, tmp_path / "o.png")
    assert tuple(np.asarray(Image.open(tmp_path / "o.png"))[0, 0]) == (9, 8, 7)
    assert [p.name for p in tmp_path.iterdir()] == ["o.png"]   # no temp file left behind
    with pytest.raises(OutputError, match="cannot write") as e:
        save_png_atomic(img, tmp_path / "no" / "such" / "dir.png")
    assert "\n" not in str(e.value) and isinstance(e.value, OSError)


# ---------------------------------------------------------------- preprocessing

def test_resize_short_and_crop():
    img = noise_image(90, 60)
    r = resize_short(img, 30)
    assert r.size == (45, 30)
    assert crop(r, 30, None).size == (30, 30)
    assert np.array_equal(np.asarray(crop(r, 30, None)), np.asarray(r)[:, 7:37])
    a = crop(r, 30, np.random.default_rng(5))
    b = crop(r, 30, np.random.default_rng(5))
    assert np.array_equal(np.asarray(a), np.asarray(b))


def test_augment_crops_and_flips_images_together():
    img = noise_image(50, 30)
    grey = img.convert("L")
    for seed in range(8):
        c, g = augment([img, grey], 30, np.random.default_rng(seed))
        assert np.array_equal(np.asarray(c.convert("L")), np.asarray(g))


# ---------------------------------------------------------------- folder / table datasets

def test_folder_dataset_skips_faulty_files(image_folder):
    ds = FolderDataset(image_folder, size=SIZE)
    assert sorted(ds.skipped) == sorted((str(image_folder / n), r) for n, r in FAULTY.items())
    assert len(ds) == len(GOOD) + 1          # + trunc.png, which only fails at decode time
    assert ds.total == len(GOOD) + 1 + len(FAULTY)
    line = summarize_skipped(ds.skipped, ds.total)
    assert line.startswith(f"skipped 5 of {ds.total} files: 2 too large, ") and "1 empty" in line
    for i in range(len(ds)):
        check_sample(ds[i])
        check_sample(ds[(i, 123)])
    tags = {Path(p).name: ds[i]["tags"] for i, p in enumerate(ds.paths) if "trunc" not in p}
    assert tags == {"a.png": "hatsune_miku, twintails", "b.JPG": "hibiki_(kantai_collection), white_hair",
                    "c.webp": "", "d.png": "monochrome"}


def test_truncated_file_is_replaced_by_the_next(image_folder):
    ds = FolderDataset(image_folder, size=SIZE)
    t = [i for i, p in enumerate(ds.paths) if p.endswith("trunc.png")][0]
    nxt = (t + 1) % len(ds)
    s = ds[t]
    assert s["bad"] == str(image_folder / "trunc.png")
    assert torch.equal(s["image"], ds[nxt]["image"]) and s["tags"] == ds[nxt]["tags"]
    assert ds[nxt]["bad"] == ""
    s1, s2 = ds[(t, 9)], ds[(nxt, 9)]
    assert torch.equal(s1["image"], s2["image"]) and torch.equal(s1["sketch"], s2["sketch"])


def test_augmentation_deterministic_per_seed(image_folder):
    ds = FolderDataset(image_folder, size=SIZE)
    i = [k for k, p in enumerate(ds.paths) if p.endswith("c.webp")][0]   # 64×32: crops can move
    views = [ds[(i, seed)]["image"] for seed in range(6)]
    assert torch.equal(views[0], ds[(i, 0)]["image"])
    assert len({v.numpy().tobytes() for v in views}) > 1
    val = FolderDataset(image_folder, size=SIZE, train=False)
    assert torch.equal(val[(i, 3)]["image"], ds[i]["image"])         # validation ignores the seed
    no_flip = FolderDataset(image_folder, size=SIZE, flip=False)
    r = resize_short(open_rgb(ds.paths[i]), SIZE)
    for seed in range(6):
        out = no_flip[(i, seed)]["image"]
        # every un-flipped crop is a window of the resized image
        full = torch.from_numpy(np.asarray(r, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)
        assert any(torch.allclose(out, full[:, :, x:x + SIZE], atol=1e-6) for x in range(r.width - SIZE + 1))


def test_sketch_is_xdog_of_the_crop(image_folder):
    from textcolor.xdog import xdog_rgb
    ds = FolderDataset(image_folder, size=SIZE, xdog=XDoGConfig(p=10.0))
    s = ds[0]
    expected = xdog_rgb((s["image"][None] + 1) / 2, XDoGConfig(p=10.0))[0, 0] * 2 - 1
    assert (s["sketch"][0] == expected).float().mean() > 0.99
    assert (s["sketch"][0] < 0).any()        # the dark bar gives lines


def write_table(folder: Path, path: Path) -> None:
    rows = []
    for name, (_, tags) in GOOD.items():
        rows.append({"file": name, "tags": (tags or "").replace(",", ""), "character": "x"})
    rows[0]["tags"] += " white_background"
    rows[3]["tags"] += " white_background"
    rows += [{"file": n, "tags": "white_background", "character": "y"} for n in [*FAULTY, "trunc.png"]]
    rows.append({"file": "missing.png", "tags": "white_background", "character": "z"})
    df = pd.DataFrame(rows)
    {".csv": lambda: df.to_csv(path, index=False),
     ".parquet": lambda: df.to_parquet(path),
     ".jsonl": lambda: df.to_json(path, orient="records", lines=True)}[path.suffix]()


@pytest.mark.parametrize("ext", [".csv", ".parquet", ".jsonl"])
def test_table_dataset(image_folder, tmp_path, ext):
    table = tmp_path / f"meta{ext}"
    write_table(image_folder, table)
    ds = TableDataset(table, size=SIZE, image_root=image_folder)
    reasons = dict(ds.skipped)
    assert reasons[str(image_folder / "missing.png")] == "missing"
    assert {Path(p).name: r for p, r in ds.skipped} == {**FAULTY, "missing.png": "missing"}
    assert len(ds) == len(GOOD) + 1
    for i in range(len(ds)):
        check_sample(ds[(i, i)])
    assert ds[0]["tags"] == "hatsune_miku, twintails, white_background"
    only = TableDataset(table, size=SIZE, image_root=image_folder, require_tags=["white_background", "monochrome"])
    assert [Path(p).name for p in only.paths] == ["d.png"] and only.skipped == []


def test_table_image_root_defaults_to_table_dir(image_folder):
    write_table(image_folder, image_folder / "meta.csv")
    assert len(TableDataset(image_folder / "meta.csv", size=SIZE)) == len(GOOD) + 1


def test_table_errors_are_one_line(tmp_path):
    pd.DataFrame({"path": ["a.png"], "caption": ["x"]}).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DatasetError, match="no column 'file', 'tags'; available columns: path, caption"):
        TableDataset(tmp_path / "t.csv", size=SIZE)
    with pytest.raises(DatasetError, match="table not found"):
        TableDataset(tmp_path / "nope.parquet", size=SIZE)
    with pytest.raises(DatasetError, match="unknown table format"):
        TableDataset(tmp_path / "t.xlsx", size=SIZE)
    with pytest.raises(DatasetError, match="no usable images"):
        FolderDataset(tmp_path, size=SIZE)


def test_dataloader_batches(image_folder):
    ds = FolderDataset(image_folder, size=SIZE)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=3)))
    assert batch["sketch"].shape == (3, 3, SIZE, SIZE) and len(batch["tags"]) == 3


# ---------------------------------------------------------------- prepare + cache

def test_prepare_writes_cache_and_leaves_source_alone(image_folder, tmp_path, capsys):
    before = tree_hash(image_folder)
    out = tmp_path / "cache"
    assert prepare.main(["--folder", str(image_folder), "--out", str(out), "--size", str(SIZE)]) == 0
    assert tree_hash(image_folder) == before
    line = capsys.readouterr().out
    assert f"prepared {len(GOOD)} images" in line and "skipped 6 of 10 files" in line
    index = pd.read_csv(out / "index.csv", keep_default_na=False)
    assert list(index.columns) == ["image", "sketch", "tags", "source"] and len(index) == len(GOOD)
    skipped = pd.read_csv(out / "skipped.csv")
    assert dict(zip(skipped.source.map(lambda p: Path(p).name), skipped.reason)) == {**FAULTY, "trunc.png": "corrupt"}
    for row in index.itertuples():
        img, sk = Image.open(out / row.image), Image.open(out / row.sketch)
        assert img.size == sk.size and min(img.size) == SIZE and sk.mode == "L"

    ds = CacheDataset(out, size=SIZE)
    folder = FolderDataset(image_folder, size=SIZE, flip=False)
    for i in range(len(ds)):
        check_sample(ds[(i, 4)])
    a, b = ds[0], folder[0]
    assert torch.equal(a["image"], b["image"]) and a["tags"] == b["tags"]
    # XDoG of the whole image then cropped ≈ XDoG of the crop (they differ only at the border)
    assert torch.equal(a["sketch"][:, 3:-3, 3:-3], b["sketch"][:, 3:-3, 3:-3])

    # a cache may be rebuilt in place, with several workers
    assert prepare.main(["--folder", str(image_folder), "--out", str(out), "--size", str(SIZE), "--workers", "2"]) == 0
    assert len(pd.read_csv(out / "index.csv")) == len(GOOD)


def test_prepare_from_table_with_required_tag(image_folder, tmp_path):
    write_table(image_folder, tmp_path / "meta.parquet")
    out = tmp_path / "cache"
    argv = ["--table", str(tmp_path / "meta.parquet"), "--image-root", str(image_folder),
            "--require-tag", "white_background", "--out", str(out), "--size", str(SIZE)]
    assert prepare.main(argv) == 0
    assert [Path(s).name for s in pd.read_csv(out / "index.csv").source] == ["a.png", "d.png"]


@pytest.mark.parametrize("where", ["inside", "nonempty", "same"])
def test_prepare_refuses_bad_out(image_folder, tmp_path, capsys, where):
    out = {"inside": image_folder / "cache", "same": image_folder, "nonempty": tmp_path / "stuff"}[where]
    if where == "nonempty":
        out.mkdir()
        (out / "keep.txt").write_text("mine")
    before = tree_hash(image_folder)
    assert prepare.main(["--folder", str(image_folder), "--out", str(out), "--size", str(SIZE)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --out") and "\n" not in err
    assert tree_hash(image_folder) == before


def test_prepare_refuses_out_holding_the_table(image_folder, tmp_path, capsys):
    (tmp_path / "c").mkdir()
    write_table(image_folder, tmp_path / "c" / "index.csv")      # looks like a cache's index
    argv = ["--table", str(tmp_path / "c" / "index.csv"), "--image-root", str(image_folder),
            "--out", str(tmp_path / "c"), "--size", str(SIZE)]
    assert prepare.main(argv) == 2
    assert "contains the table" in capsys.readouterr().err


def test_cache_dataset_checks_its_parameters(image_folder, tmp_path):
    out = tmp_path / "cache"
    prepare.main(["--folder", str(image_folder), "--out", str(out), "--size", str(SIZE)])
    with pytest.raises(DatasetError, match="re-run textcolor.prepare with --size 64"):
        CacheDataset(out, size=64)
    with pytest.raises(DatasetError, match="xdog"):
        CacheDataset(out, size=SIZE, xdog=XDoGConfig(p=10.0))
    with pytest.raises(DatasetError, match="not a textcolor cache"):
        CacheDataset(tmp_path, size=SIZE)


def test_build_dataset_dispatch(image_folder, tmp_path):
    cfg = Config()
    cfg.data.size = SIZE
    cfg.data.source, cfg.data.path = "folder", str(image_folder)
    train, val = build_dataset(cfg, True), build_dataset(cfg, False)
    assert isinstance(train, FolderDataset) and train.train and not val.train
    write_table(image_folder, tmp_path / "m.jsonl")
    cfg.data.source, cfg.data.path, cfg.data.image_root = "table", str(tmp_path / "m.jsonl"), str(image_folder)
    cfg.data.require_tags = ["white_background"]
    assert len(build_dataset(cfg, True)) == 3          # a.png, d.png and trunc.png
    prepare.main(["--folder", str(image_folder), "--out", str(tmp_path / "c"), "--size", str(SIZE)])
    cfg.data.source, cfg.data.path = "cache", str(tmp_path / "c")
    assert isinstance(build_dataset(cfg, True), CacheDataset)


def test_build_dataset_synth():
    cfg = Config()
    cfg.data.size, cfg.data.synth_n, cfg.data.val_n = SIZE, 5, 2
    train, val = build_dataset(cfg, True), build_dataset(cfg, False)
    assert len(train) == 5 and len(val) == 2
    check_sample({**train[(0, 1)], "bad": ""})


# ---------------------------------------------------------------- sketch CLI

def test_sketch_cli(image_folder, tmp_path, capsys):
    out = tmp_path / "sk"
    inputs = [str(image_folder / "a.png"), str(image_folder / "sub")]
    assert sketch.main([*inputs, "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.sketch.png", "c.sketch.png"]
    assert Image.open(out / "a.sketch.png").size == (48, 40)
    assert Image.open(out / "c.sketch.png").size == (64, 32)
    # again: outputs exist → refused one line each unless --overwrite
    capsys.readouterr()
    assert sketch.main([*inputs, "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all("--overwrite" in e for e in err)
    assert sketch.main([*inputs, "--out", str(out), "--overwrite"]) == 0


def test_sketch_cli_bad_inputs(image_folder, capsys):
    before = {p: p.read_bytes() for p in image_folder.rglob("*") if p.is_file()}
    # the folder itself as --out: inputs are left alone, faulty ones reported one line each
    assert sketch.main([str(image_folder), "--out", str(image_folder)]) == 1
    err = [e for e in capsys.readouterr().err.splitlines() if e.strip()]
    # 4 faulty, trunc.png, and a.png whose a.sketch.png (made by the fixture) exists
    assert len(err) == 6 and all(e.startswith(str(image_folder)) for e in err)
    assert any("a.sketch.png exists (use --overwrite" in e for e in err)
    assert {p: p.read_bytes() for p in before} == before
    new = {p.name for p in image_folder.iterdir() if p.is_file()} - {p.name for p in before}
    assert new == {"b.sketch.png", "d.sketch.png", "tiny.sketch.png"}


def test_sketch_cli_usage_errors(tmp_path, capsys):
    assert sketch.main(["--out", str(tmp_path)]) == 2
    assert sketch.main([str(tmp_path / "nope.png"), "--out", str(tmp_path)]) == 2
    assert sketch.main([]) == 2                                 # argparse: --out missing
    err = capsys.readouterr().err
    assert "no inputs" in err and "no such file" in err and "Traceback" not in err


def test_sketch_of_transparent_image_is_blank(tmp_path):
    Image.new("RGBA", (20, 10), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    assert sketch.main([str(tmp_path / "clear.png"), "--out", str(tmp_path / "o")]) == 0
    assert (np.asarray(Image.open(tmp_path / "o" / "clear.sketch.png")) == 255).all()
