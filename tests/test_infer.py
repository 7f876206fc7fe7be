"""infer.py and the Colorizer API: outputs, resolution policy, strength, and one-line errors."""
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import infer
from cli_helpers import cli_runner, one_line_error
from test_data import png_header_only
from textcolor.checkpoint import CheckpointError, load_checkpoint
from textcolor.colorize import Colorizer, working_shape

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def sketch(tmp_path, rendered_sketch):
    return Path(shutil.copy(rendered_sketch, tmp_path / "s.png"))


run_cli = cli_runner(infer.main)


def test_default_model_writes_next_to_input_same_size(sketch, capsys):
    code, out, _ = run_cli(capsys, "--sketch", sketch, "--tags", "hatsune_miku")
    assert code == 0
    result = Image.open(sketch.with_name("s.colored.png"))
    assert result.size == Image.open(sketch).size == (96, 80) and result.mode == "RGB"


def test_repeated_tags_and_grid(sketch, tmp_path, tiny_checkpoint, capsys):
    code, _, _ = run_cli(capsys, "--sketch", sketch, "--tags", "hibiki_(kantai_collection)", "--tags", "",
                         "--grid", tmp_path / "strip.png", "--checkpoint", tiny_checkpoint)
    assert code == 0
    assert (tmp_path / "s.colored.hibiki_kantai_collection.png").exists()
    assert (tmp_path / "s.colored.untagged.png").exists()
    strip = Image.open(tmp_path / "strip.png")
    assert strip.width > 3 * 96 and strip.height > 80  # sketch + two panels, one labelled row


def test_folder_input_skips_own_outputs_and_bad_files(tmp_path, rendered_sketch, tiny_checkpoint, capsys):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    shutil.copy(rendered_sketch, src / "a.png")
    shutil.copy(rendered_sketch, src / "sub" / "b.png")
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    code, out, err = run_cli(capsys, "--sketch", src, "--out", tmp_path / "out", "--checkpoint", tiny_checkpoint)
    assert code == 1 and "1 input(s) skipped" in out and "broken.png" in err
    assert (tmp_path / "out/a.colored.png").exists() and (tmp_path / "out/sub/b.colored.png").exists()
    # a second run beside the inputs must not read back its own outputs as inputs
    code, out, _ = run_cli(capsys, "--sketch", src, "--checkpoint", tiny_checkpoint)
    assert "wrote 2 image(s)" in out


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "I;16", "CMYK", "1"])
def test_any_mode_and_aspect_ratio_keeps_the_size(tmp_path, tiny_checkpoint, mode):
    colorizer = Colorizer.from_checkpoint(tiny_checkpoint, device="cpu")
    img = Image.fromarray((np.random.default_rng(0).random((37, 91)) > 0.1).astype(np.uint8) * 255).convert(mode)
    out = colorizer(img, "red_hair")
    assert out.size == (91, 37) and out.mode == "RGB"


def test_resolution_policy():
    assert working_shape(1000, 500, 64, 8) == (128, 64)
    assert working_shape(37, 91, 32, 4) == (32, 80)
    assert working_shape(3, 5000, 64, 8) == (64, 106664)  # extreme aspect: short side still at size


def test_lines_stay_crisp_at_full_resolution(tiny_checkpoint):
    colorizer = Colorizer.from_checkpoint(tiny_checkpoint, device="cpu")
    sketch = np.full((256, 256), 255, np.uint8)
    sketch[:, 100] = 0  # a one-pixel line, four times finer than the 32 px working resolution
    out = np.asarray(colorizer(sketch, ""))
    assert out[:, 100].max() == 0 and out[:, 110].min() > 0


def test_strength_zero_equals_untagged_and_batches_match_singles(rendered_sketch, tiny_checkpoint):
    colorizer = Colorizer.from_checkpoint(tiny_checkpoint, device="cpu")
    untagged = np.asarray(colorizer(rendered_sketch, ""))
    assert np.array_equal(np.asarray(colorizer(rendered_sketch, "hatsune_miku", strength=0.0)), untagged)
    tagged = np.asarray(colorizer(rendered_sketch, "hatsune_miku"))
    double = np.asarray(colorizer(rendered_sketch, "hatsune_miku", strength=2.0)).astype(int)
    assert np.abs(double - untagged).mean() >= np.abs(tagged.astype(int) - untagged).mean()
    batch = colorizer([rendered_sketch, np.asarray(Image.open(rendered_sketch))], ["hatsune_miku", ""])
    assert np.abs(np.asarray(batch[0]).astype(int) - tagged).max() <= 1
    assert np.abs(np.asarray(batch[1]).astype(int) - untagged).max() <= 1
    with pytest.raises(ValueError, match="2 prompts for 1 sketches"):
        colorizer([rendered_sketch], ["a", "b"])


def test_checkpoint_forms_load_the_ema_generator(tiny_checkpoint, tmp_path):
    from textcolor.checkpoint import export_generator, load_generator
    state = load_checkpoint(tiny_checkpoint)
    g = load_generator(tiny_checkpoint)
    assert all(torch.equal(v, state["G_ema"][k]) for k, v in g.generator.state_dict().items())
    exported = export_generator(tiny_checkpoint, tmp_path / "g.safetensors")
    g2 = load_generator(exported)
    assert all(torch.equal(v, g2.generator.state_dict()[k]) for k, v in g.generator.state_dict().items())
    assert g2.tag_names == g.tag_names and torch.equal(g2.tag_vectors, g.tag_vectors)
    assert load_generator(tiny_checkpoint.parent.parent).cfg == g.cfg  # a run directory works too


def test_export_cli_writes_once_and_refuses_bad_input(tiny_checkpoint, tmp_path, capsys):
    from textcolor.checkpoint import load_generator, main
    dst = tmp_path / "g.safetensors"
    assert main(["export", str(tiny_checkpoint.parent.parent), str(dst)]) == 0
    assert load_generator(dst).cfg == load_generator(tiny_checkpoint).cfg
    before = dst.read_bytes()
    cases = [(["export", str(tiny_checkpoint), str(dst)], "exists"),
             (["export", str(tiny_checkpoint), str(tmp_path / "g.pt")], "must end in .safetensors"),
             (["export", str(tmp_path / "missing.pt"), str(tmp_path / "h.safetensors")], "error: "),
             (["export", str(ROOT / "README.md"), str(tmp_path / "i.safetensors")], "error: ")]
    for argv, message in cases:
        capsys.readouterr()
        assert main(argv) == 2
        captured = capsys.readouterr()
        err = captured.err.strip().splitlines()
        assert len(err) == 1 and message in err[0] and not captured.out, (argv, captured)
    assert dst.read_bytes() == before and not (tmp_path / "h.safetensors").exists()
    assert main(["export", str(tiny_checkpoint), str(dst), "--overwrite"]) == 0


@pytest.mark.slow
def test_known_tags_do_not_import_sentence_transformers(rendered_sketch, tiny_checkpoint, tmp_path):
    code = (f"import sys; sys.argv = ['infer.py', '--sketch', {str(rendered_sketch)!r}, '--tags', 'hatsune_miku', "
            f"'--out', {str(tmp_path / 'o.png')!r}, '--checkpoint', {str(tiny_checkpoint)!r}]; "
            "import infer; code = infer.main(); "
            "assert code == 0, code; assert 'sentence_transformers' not in sys.modules, 'imported'")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       env={"TEXTCOLOR_CACHE": str(tmp_path / "empty_cache"), "PATH": "/usr/bin:/bin",
                            "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr[-1500:]


@pytest.mark.parametrize("case,message", [
    ("missing", "no such file or folder"),
    ("empty_folder", "no images in this folder"),
    ("not_image", "not an image"),
    ("zero_bytes", "empty file"),
    ("enormous", "exceeds"),
    ("foreign_checkpoint", "not a textcolor checkpoint"),
    ("garbage_checkpoint", "truncated or corrupt"),
    ("wrong_architecture", "do not fit the architecture"),
    ("unwritable_out", "Not a directory"),
    ("out_is_input", "refusing to overwrite an input"),
    ("existing_output", "already exists"),
])
def test_bad_input_is_one_line_and_nonzero(case, message, tmp_path, sketch, tiny_checkpoint, capsys):
    args = ["--sketch", sketch, "--checkpoint", tiny_checkpoint]
    if case == "missing":
        args[1] = tmp_path / "nope.png"
    elif case == "empty_folder":
        (tmp_path / "empty").mkdir()
        args[1] = tmp_path / "empty"
    elif case == "not_image":
        args[1] = tmp_path / "notes.png"
        args[1].write_text("hello")
    elif case == "zero_bytes":
        args[1] = tmp_path / "zero.png"
        args[1].write_bytes(b"")
    elif case == "enormous":
        args[1] = tmp_path / "huge.png"
        args[1].write_bytes(png_header_only(30000, 30000))
    elif case == "foreign_checkpoint":
        torch.save({"state_dict": {}}, tmp_path / "other.pt")
        args[3] = tmp_path / "other.pt"
    elif case == "garbage_checkpoint":
        (tmp_path / "junk.pt").write_bytes(b"PK\x03\x04 not really a zip")
        args[3] = tmp_path / "junk.pt"
    elif case == "wrong_architecture":
        state = load_checkpoint(tiny_checkpoint)
        state["config"]["gen"]["base"] = 16
        torch.save(state, tmp_path / "arch.pt")
        args[3] = tmp_path / "arch.pt"
    elif case == "unwritable_out":
        (tmp_path / "afile").write_text("x")
        args += ["--out", tmp_path / "afile" / "sub" / "o.png"]
    elif case == "out_is_input":
        args += ["--out", sketch, "--overwrite"]
    elif case == "existing_output":
        sketch.with_name("s.colored.png").write_text("someone's file")
    before = sketch.read_bytes()
    code, _, err = run_cli(capsys, *args)
    assert code == 2 and one_line_error(err) and message in err, err
    assert sketch.read_bytes() == before
    if case == "existing_output":
        assert sketch.with_name("s.colored.png").read_text() == "someone's file"


def test_checkpoint_errors_in_the_api(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        Colorizer.from_checkpoint(tmp_path / "missing.pt")


def test_thin_lines_of_a_large_sketch_survive_the_working_size(tiny_checkpoint):
    """A 1-px line drawn at 4× the working size keeps one full line of working pixels (darkest pixel
    per block); the block average (3/4 white) fell above the line threshold and erased it."""
    from PIL import Image
    col = Colorizer.from_checkpoint(tiny_checkpoint, device="cpu")       # working size 32
    big = np.full((128, 128), 255, np.uint8)
    big[:, 61] = 0                                                         # a vertical line, 1 px wide
    big[90, :] = 0                                                         # and a horizontal one
    line = col.prepare(Image.fromarray(big)).sketch[0] < 0                 # [32, 32] line pixels
    assert line[:, 15].all() and line[22, :].all()
    assert line.sum() == 32 + 32 - 1                                       # and nothing else
