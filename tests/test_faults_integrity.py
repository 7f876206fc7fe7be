"""Data integrity and unwritable outputs.

Promises:
  * No command (synth CLI into a new folder, prepare, the sketch CLI, infer.py on a folder, training
    on a folder dataset) modifies or deletes a file of the source dataset folder: the sha256, size,
    mtime and inode of every file, and the file list, are the same before and after. Commands that
    write beside their inputs only ADD files with their own suffix, and never replace an input.
  * An output that cannot be written (a path under a regular file, a full disk) gives a non-zero
    exit status and one line on stderr, no traceback, and no partial or temporary file.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import infer
import train as train_cli
from textcolor import prepare, synthfolder
from textcolor import sketch as sketch_cli

ROOT = Path(__file__).resolve().parent.parent
TINY = ["data.size=32", "data.val_n=2", "data.workers=0", "gen.base=8", "gen.depth=2", "gen.max_ch=16",
        "disc.base=8", "disc.layers=2", "tags.k=4", "train.batch_size=2", "train.steps=2", "train.ckpt_every=2",
        "train.image_every=100", "train.log_every=1"]


@pytest.fixture(scope="module")
def checkpoint(request, tmp_path_factory) -> Path:
    try:
        return Path(request.getfixturevalue("tiny_checkpoint"))
    except pytest.FixtureLookupError:
        from textcolor.config import load_config
        from textcolor.training import train
        cfg = load_config(None, TINY + ["data.synth_n=8", "train.ema=0.5"])
        return train(cfg, tmp_path_factory.mktemp("fault_ckpt") / "run").checkpoint


def run(main, *argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as e:  # argparse in synth
            code = e.code
    return code, out.getvalue(), err.getvalue()


def one_line_error(err: str) -> bool:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    return len(lines) == 1 and lines[0].startswith("error") and "Traceback" not in err


def snapshot(root: Path) -> dict[str, tuple]:
    """relative path -> (sha256, size, mtime_ns, inode) for files; (None,) for directories."""
    snap = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            snap[os.path.relpath(os.path.join(dirpath, d), root) + "/"] = (None,)
        for f in filenames:
            p = Path(dirpath) / f
            st = p.stat()
            snap[str(p.relative_to(root))] = (hashlib.sha256(p.read_bytes()).hexdigest(), st.st_size,
                                              st.st_mtime_ns, st.st_ino)
    return snap


def make_dataset(root: Path) -> Path:
    """A synth folder plus what real folders hold: a JPEG in a subfolder, a broken image, notes."""
    code, _, err = run(synthfolder.main, "--out", root, "--n", "6", "--size", "40")
    assert code == 0, err
    (root / "extra").mkdir()
    img = Image.open(root / "00001.png")
    img.save(root / "extra" / "photo.jpg", quality=90)
    (root / "extra" / "photo.txt").write_text("red_hair, blue_eyes\n")
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (root / "notes.md").write_text("source data, do not touch\n")
    return root


# ---------------------------------------------------------------------------------------------
# 5. data integrity

@pytest.mark.slow  # every command end to end
def test_no_command_modifies_or_deletes_source_files(tmp_path, checkpoint):
    src = make_dataset(tmp_path / "dataset")
    before = snapshot(src)
    results = {}

    results["synth into a new folder"] = run(synthfolder.main, "--out", tmp_path / "synth2", "--n", "2", "--size", "32")
    assert results["synth into a new folder"][0] == 0
    # re-rendering over the source would replace and remove files: refused (foreign files there)
    code, _, err = run(synthfolder.main, "--out", src, "--n", "2", "--size", "32")
    assert code == 2 and one_line_error(err), err

    code, out, err = run(prepare.main, "--folder", src, "--out", tmp_path / "cache", "--size", "32")
    assert code == 0 and "prepared 7 images" in out, out + err
    for bad_out in (src, src / "cache", src / "extra"):
        code, _, err = run(prepare.main, "--folder", src, "--out", bad_out, "--size", "32")
        assert code == 2 and one_line_error(err) and "overlaps the source folder" in err, err

    code, out, err = run(sketch_cli.main, src, src / "extra", "--out", tmp_path / "sketches")
    assert code == 1 and "wrote 7 sketch(es)" in out and "broken.png" in err, out + err

    code, out, err = run(infer.main, "--sketch", src, "--out", tmp_path / "coloured", "--checkpoint", checkpoint,
                         "--tags", "red_hair")
    assert code == 1 and "wrote 7 image(s)" in out and "broken.png" in err, out + err
    assert (tmp_path / "coloured" / "extra" / "photo.colored.png").exists()
    code, _, err = run(infer.main, "--sketch", src / "00001.png", "--out", src / "00001.png", "--overwrite",
                       "--checkpoint", checkpoint)
    assert code == 2 and "refusing to overwrite an input" in err

    code, out, err = run(train_cli.main, "--config", ROOT / "configs/demo.yaml", "--out", tmp_path / "run",
                         "data.source=folder", f"data.path={src}", *TINY)
    assert code == 0, err[-2000:]
    code, out, err = run(train_cli.main, "--config", ROOT / "configs/demo.yaml", "--out", tmp_path / "run2",
                         "data.source=cache", f"data.path={tmp_path / 'cache'}", *TINY)
    assert code == 0, err[-2000:]

    after = snapshot(src)
    assert after == before, {k: (before.get(k), after.get(k)) for k in set(before) | set(after)
                             if before.get(k) != after.get(k)}


def test_outputs_beside_inputs_only_add_files_and_never_replace_one(tmp_path, checkpoint):
    src = make_dataset(tmp_path / "dataset")
    before = snapshot(src)

    def check_only_added(suffixes: tuple[str, ...]) -> dict:
        now = snapshot(src)
        for name, entry in before.items():
            assert now.get(name) == entry, f"{name} changed"
        added = set(now) - set(before)
        assert all(n.endswith(suffixes) for n in added), added
        return now

    code, out, err = run(infer.main, "--sketch", src, "--checkpoint", checkpoint)  # no --out: beside inputs
    assert code == 1 and "wrote 7 image(s)" in out, out + err
    first = check_only_added((".colored.png",))
    assert len(first) == len(before) + 7
    # a second run never overwrites its earlier outputs without --overwrite, and never reads them as inputs
    code, _, err = run(infer.main, "--sketch", src, "--checkpoint", checkpoint)
    assert code == 2 and one_line_error(err) and "already exists" in err
    assert snapshot(src) == first
    code, out, err = run(infer.main, "--sketch", src, "--checkpoint", checkpoint, "--overwrite")
    assert code == 1 and "wrote 7 image(s)" in out, out + err
    check_only_added((".colored.png",))

    code, out, err = run(sketch_cli.main, src, "--out", src)  # sketches into the source folder itself
    assert code == 1 and "wrote 6 sketch(es)" in out, out + err
    with_sketches = check_only_added((".colored.png", ".sketch.png"))
    code, out, err = run(sketch_cli.main, src, "--out", src)  # again: refuses, replaces nothing
    assert code == 1 and "wrote 0 sketch(es)" in out
    assert snapshot(src) == with_sketches
    # an explicit input that is itself a derived file: its output name differs from every input
    code, out, err = run(sketch_cli.main, src / "00000.sketch.png", src / "00000.png", "--out", src, "--overwrite")
    assert snapshot(src)["00000.png"] == before["00000.png"]


def test_prompts_with_the_same_file_name_slug_do_not_overwrite_each_other(tmp_path, checkpoint):
    """Two different prompts whose names reduce to the same slug ("untagged", "red_hair") must
    give two files (or a refusal), never one output silently replacing the other."""
    src = tmp_path / "s.png"
    Image.fromarray((np.random.default_rng(0).random((40, 40)) > 0.2).astype(np.uint8) * 255).save(src)
    for tags in (["", "\u7ea2\u53d1"], ["red hair", "red_hair:1.5"], ["a/b", "a?b"]):
        out = tmp_path / f"out_{len(list(tmp_path.iterdir()))}"
        code, stdout, err = run(infer.main, "--sketch", src, "--checkpoint", checkpoint, "--out", out,
                                *(f"--tags={t}" for t in tags))
        if code == 0:
            assert len(list(out.iterdir())) == 2, (tags, sorted(p.name for p in out.iterdir()))
        else:
            assert code == 2 and one_line_error(err)


# ---------------------------------------------------------------------------------------------
# 2. unwritable outputs

@pytest.fixture
def image(tmp_path) -> Path:
    path = tmp_path / "in" / "s.png"
    path.parent.mkdir()
    Image.fromarray((np.random.default_rng(0).random((40, 48)) > 0.2).astype(np.uint8) * 255).save(path)
    return path


def test_output_under_a_regular_file_is_a_one_line_error(tmp_path, image, checkpoint):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    cases = {
        "sketch": (sketch_cli.main, [image, "--out", blocker / "sub"]),
        "sketch, out is a file": (sketch_cli.main, [image, "--out", blocker]),
        "infer, file": (infer.main, ["--sketch", image, "--checkpoint", checkpoint, "--out", blocker / "o.png"]),
        "infer, folder": (infer.main, ["--sketch", image.parent, "--checkpoint", checkpoint, "--out", blocker / "d"]),
        "infer, grid": (infer.main, ["--sketch", image, "--checkpoint", checkpoint, "--out", tmp_path / "ok.png",
                                     "--grid", blocker / "g.png"]),
        "prepare": (prepare.main, ["--folder", image.parent, "--out", blocker / "cache", "--size", "32"]),
        "synth": (synthfolder.main, ["--out", blocker / "synth", "--n", "1", "--size", "32"]),
        "train": (train_cli.main, ["--config", ROOT / "configs/demo.yaml", "--out", blocker / "run", *TINY,
                                   "data.synth_n=8"]),
    }
    for name, (main, argv) in cases.items():
        code, _, err = run(main, *argv)
        assert code != 0 and one_line_error(err), (name, code, err[-1500:])
    assert blocker.read_text() == "not a directory"


def test_full_disk_while_writing_images_leaves_no_partial_file(tmp_path, image, checkpoint, monkeypatch):
    def full_disk(self, fp, *a, **kw):
        with open(fp, "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\n half an image")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(Image.Image, "save", full_disk)
    out = tmp_path / "out"
    out.mkdir()
    code, _, err = run(infer.main, "--sketch", image, "--checkpoint", checkpoint, "--out", out / "o.png")
    assert code == 2 and one_line_error(err) and "No space left on device" in err, err
    code, _, err = run(sketch_cli.main, image, "--out", out)
    assert code == 1 and "No space left on device" in err and "Traceback" not in err, err
    assert len([ln for ln in err.splitlines() if ln.strip()]) == 1
    code, _, err = run(prepare.main, "--folder", image.parent, "--out", out / "cache", "--size", "32")
    assert code != 0 and one_line_error(err) and "No space left on device" in err, err
    leftovers = [p for p in out.rglob("*") if p.is_file() and p.suffix in (".png", ".tmp")]
    assert leftovers == [], leftovers
    assert sorted(p.name for p in image.parent.iterdir()) == ["s.png"]
