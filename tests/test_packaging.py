"""Packaging: run-time files are package data, console scripts, --version, the shared CLI error
contract, checkpoints carrying the version, the hub-layout export and its model card."""
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import torch
import yaml

import textcolor
from textcolor import TAGS_DIR, __version__, card, cli, evaluate, synthfolder, vocab
from textcolor.checkpoint import generator_parts, load_checkpoint, main as checkpoint_main, save_checkpoint
from textcolor.colorize import DEFAULT_MODEL, Colorizer
from textcolor.config import from_dict
from cli_helpers import cli_runner, one_line_error

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
RUN_TIME_FILES = ["assets/tags/characters.csv", "assets/tags/colors.csv", "assets/tags/paraphrases.csv",
                  "assets/default/model.safetensors", "assets/default/config.json", "assets/default/README.md",
                  "assets/configs/demo.yaml", "assets/configs/base.yaml", "assets/configs/shipped_stage3.yaml",
                  "assets/configs/ablations/k4.yaml", "assets/configs/finetune/heads4.yaml"]


# --- run-time files live in the package ----------------------------------------------------------

def test_run_time_files_are_inside_the_package():
    pkg = Path(textcolor.__file__).parent
    assert TAGS_DIR.is_relative_to(pkg) and DEFAULT_MODEL.is_relative_to(pkg)
    for rel in RUN_TIME_FILES:
        assert (pkg / rel).is_file(), rel
    # one source of truth: the top-level tags/ only points into the package, configs/ is a link to it
    assert sorted(p.name for p in (ROOT / "tags").iterdir()) == ["README.md"]
    assert (ROOT / "configs").is_symlink() and (ROOT / "configs").resolve() == pkg / "assets" / "configs"


def test_a_bundled_config_is_found_by_name(tmp_path, monkeypatch):
    from textcolor.config import ConfigError, config_path, load_config
    monkeypatch.chdir(tmp_path)                         # outside the checkout, as after a wheel install
    assert load_config("demo").name == "demo" and load_config("ablations/k4").tags.k == 4
    (tmp_path / "demo").mkdir()                          # a path that exists is taken as given
    assert config_path("demo") == Path("demo")
    with pytest.raises(ConfigError, match="not found"):
        load_config("no_such_config")


def test_package_data_globs_cover_every_run_time_file():
    import fnmatch
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["textcolor"]
    for rel in RUN_TIME_FILES:
        assert any(fnmatch.fnmatch(rel, g) for g in globs), rel


@pytest.mark.slow
def test_wheel_holds_the_tables_the_shipped_model_and_the_scripts(tmp_path):
    # offline with this environment's setuptools when it has one (a Python >= 3.12 venv may not)
    isolation = ["--no-build-isolation"] if importlib.util.find_spec("setuptools") else []
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-q",
                    "-w", str(tmp_path), str(ROOT)], check=True, cwd=tmp_path, timeout=300)
    (wheel,) = tmp_path.glob("textcolor-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        for rel in RUN_TIME_FILES:
            assert f"textcolor/{rel}" in names, rel
        assert z.read("textcolor/assets/default/model.safetensors") == DEFAULT_MODEL.read_bytes()
        entry_points = z.read(f"textcolor-{__version__}.dist-info/entry_points.txt").decode()
    for name in SCRIPTS:
        assert name in entry_points


def test_missing_roster_is_named_not_the_output_folder(tmp_path, monkeypatch, capsys):
    """Once reported as `cannot write to OUT`: the error names the file that is missing."""
    monkeypatch.setattr(vocab, "TAGS_DIR", tmp_path / "nowhere")
    vocab.default_roster.cache_clear()  # read again, from the patched folder (nothing is cached: it fails)
    vocab.default_colors.cache_clear()
    code = synthfolder.main(["--out", str(tmp_path / "out"), "--n", "1", "--size", "32"])
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bar's line
    assert code == 2 and one_line_error(err), err
    assert "nowhere/characters.csv: No such file" in err and "cannot write" not in err


def test_parent_folder_of_a_clone_named_textcolor(tmp_path):
    """`python -m textcolor.X` one level above a clone named textcolor: the clone's package loads."""
    (tmp_path / "textcolor").symlink_to(ROOT, target_is_directory=True)
    code = "import textcolor, textcolor.cli; print(textcolor.TAGS_DIR); print(textcolor.cli.__file__)"
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    tags_dir, cli_file = r.stdout.split()
    assert Path(tags_dir, "characters.csv").is_file() and Path(cli_file).name == "cli.py"


# --- console scripts, --version, the error contract ---------------------------------------------

def _entry(target: str):
    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_every_console_script_answers_version(name, capsys):
    try:
        code = _entry(SCRIPTS[name])(["--version"])
    except SystemExit as e:  # argparse's exit; sketch and prepare return its status instead
        code = e.code
    assert code == 0
    assert capsys.readouterr().out.strip() == f"{name} (textcolor {__version__})"


def test_top_level_scripts_are_the_package_entry_points():
    import infer
    import train
    assert train.main is _entry(SCRIPTS["textcolor-train"])
    assert infer.main is _entry(SCRIPTS["textcolor-infer"])


@pytest.mark.parametrize("argv", [["train.py", "--bogus"], ["train.py", "--config", "missing.yaml"],
                                  ["infer.py", "--bogus"], ["infer.py", "--sketch", "missing.png"]])
def test_argument_errors_do_not_import_torch(argv):
    """A wrong argument is answered before torch is imported (seconds on a busy machine)."""
    code = (f"import sys, runpy; sys.argv = {argv!r}\n"
            "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\n"
            "except SystemExit as e:\n    print('exit', e.code, 'torch' in sys.modules)")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
    assert r.stdout.split() == ["exit", "2", "False"], r.stdout + r.stderr


def test_expected_error_classes_exist():
    """cli.EXPECTED_ERRORS names classes by string: a rename elsewhere must fail here, not hide."""
    for module, names in cli.EXPECTED_ERRORS.items():
        mod = importlib.import_module(module)
        for name in names:
            assert issubclass(getattr(mod, name), Exception), f"{module}.{name}"


def test_cli_run_turns_expected_errors_into_one_line(capsys):
    def missing():
        open("/nonexistent/roster.csv")
    assert cli.run(missing) == 2
    err = capsys.readouterr().err
    assert one_line_error(err) and "/nonexistent/roster.csv" in err
    assert cli.run(lambda: (_ for _ in ()).throw(cli.UsageError("bad input"))) == 2
    assert capsys.readouterr().err == "error: bad input\n"
    with pytest.raises(ZeroDivisionError):  # a bug is not an expected error: its traceback stays
        cli.run(lambda: 1 // 0)


# --- checkpoints record the version; evaluate names what it scored -----------------------------

def test_checkpoints_record_the_package_version(tmp_path):
    path = save_checkpoint({"step": 1, "config": {}, "G": {"w": torch.zeros(1)}}, tmp_path)
    assert load_checkpoint(path)["textcolor_version"] == __version__


def test_evaluate_names_the_checkpoint_it_scored(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "e.json"
    assert evaluate.main(["--checkpoint", str(tiny_checkpoint), "--n", "1", "--size", "32", "--json", str(out)]) == 0
    assert f"model: {tiny_checkpoint}" in capsys.readouterr().out
    assert json.loads(out.read_text())["checkpoint_path"] == str(tiny_checkpoint)


# --- hub export and model card ---------------------------------------------------------------

FIGURES = {"l1": 0.0712, "psnr": 21.5, "tag_accuracy": 0.97, "swap_accuracy": 0.9, "outside_delta": 12.25}


def _eval_json(path: Path, size: int, n: int, **figures) -> Path:
    path.write_text(json.dumps({**FIGURES, **figures, "size": size, "n": n, "checkpoint": "x"}))
    return path


def test_hub_export_round_trip_and_card(tiny_checkpoint, tmp_path, rendered_sketch, capsys):
    run_cli = cli_runner(checkpoint_main)
    evals = [_eval_json(tmp_path / "e512.json", 512, 7, l1=0.0833), _eval_json(tmp_path / "e64.json", 64, 9)]
    hub, single = tmp_path / "hub", tmp_path / "single.safetensors"
    assert checkpoint_main(["export", str(tiny_checkpoint), str(single)]) == 0
    assert checkpoint_main(["export", str(tiny_checkpoint), str(hub), "--hub", "--eval", *map(str, evals),
                            "--recipe", "configs/shipped.yaml", "configs/shipped_stage2.yaml",
                            "configs/finetune/cooldown.yaml", "--name", "shipped"]) == 0
    assert sorted(p.name for p in hub.iterdir()) == sorted(card.HUB_FILES)

    # same pixels through from_pretrained(DIR) as through the single-file export
    torch.manual_seed(0)
    a = Colorizer.from_pretrained(hub, device="cpu")(rendered_sketch, "hatsune_miku")
    b = Colorizer.from_checkpoint(single, device="cpu")(rendered_sketch, "hatsune_miku")
    assert a.tobytes() == b.tobytes()
    assert generator_parts(hub / "model.safetensors")[1] == json.loads((hub / "config.json").read_text())["config"]

    text = (hub / "README.md").read_text()
    meta = yaml.safe_load(card.front_matter(text))
    assert meta["license"] == "mit" and meta["library_name"] == "textcolor"
    assert meta["pipeline_tag"] == "image-to-image" and meta["tags"]
    table = [ln for ln in text.splitlines() if ln.startswith("| ")]
    assert table[0] == "| metric | 64 px (n=9) | 512 px (n=7) |"          # sorted by size
    assert "| l1 | 0.071 | 0.083 |" in table and "| tag_accuracy | 97.0% | 97.0% |" in table
    assert "| outside_delta | 12.25 | 12.25 |" in table
    assert "python train.py --config configs/shipped_stage2.yaml --out runs/shipped --resume" in text
    # a stage that starts from other weights is a run of its own, and the export reads the last run
    assert "python train.py --config configs/finetune/cooldown.yaml --out runs/cooldown   # from train.init_from" in text
    assert "python -m textcolor.checkpoint export runs/cooldown" in text and "## Limitations" in text

    # a second export refuses to replace, and a file that is not an evaluation is one line
    capsys.readouterr()
    code, _, err = run_cli(capsys, "export", tiny_checkpoint, hub, "--hub")
    assert code == 2 and one_line_error(err) and "--overwrite" in err, err
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    code, _, err = run_cli(capsys, "export", tiny_checkpoint, tmp_path / "h2", "--hub", "--eval", bad)
    assert code == 2 and one_line_error(err) and "bad.json" in err, err


def test_hub_directory_is_a_checkpoint_argument(tmp_path):
    """--checkpoint DIR (infer.py, evaluate, the app) reads a hub directory's model.safetensors."""
    from textcolor.checkpoint import resolve
    assert resolve(DEFAULT_MODEL.parent) == DEFAULT_MODEL


def test_the_shipped_model_carries_its_card():
    d = DEFAULT_MODEL.parent
    text = (d / "README.md").read_text()
    meta = yaml.safe_load(card.front_matter(text))
    assert meta["license"] == "mit" and meta["pipeline_tag"] == "image-to-image"
    config = json.loads((d / "config.json").read_text())
    # config.json: the model's config resolved when the card was written (newer keys' defaults filled in)
    assert from_dict(config["config"]) == from_dict(generator_parts(DEFAULT_MODEL)[1])
    table = [ln for ln in text.splitlines() if ln.startswith("| ")]
    assert table[0].startswith("| metric | 64 px") and any(ln.startswith("| tag_accuracy |") for ln in table)
    for stage in ("shipped.yaml", "shipped_stage2.yaml", "shipped_stage3.yaml"):
        assert f"configs/{stage}" in text and (ROOT / "configs" / stage).is_file()
