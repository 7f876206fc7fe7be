"""Faults found from outside (issue 16): real full disks, FIFOs, paths out of the dataset root,
checkpoints whose config is an instruction, colliding outputs, oversized inputs, twin runs.

Each case must end in one clear line (or a counted skip), never a hang, never lost output.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from textcolor.checkpoint import list_checkpoints, load_checkpoint

ROOT = Path(__file__).resolve().parent.parent
TINY = ["data.size=32", "data.synth_n=16", "data.val_n=2", "gen.base=8", "gen.depth=2", "gen.max_ch=16",
        "disc.base=8", "disc.layers=2", "tags.k=4", "train.batch_size=2", "train.log_every=100",
        "train.image_every=100", "train.threads=1"]


def _train(out: Path, *extra: str, flags: tuple[str, ...] = (), timeout: float = 300) -> subprocess.CompletedProcess:
    """`python train.py` on the demo config with tiny overrides, as a user would run it. A run that
    outlives `timeout` fails the test as a hang, its whole process group (workers too) killed."""
    argv = [sys.executable, str(ROOT / "train.py"), *flags, "--config", str(ROOT / "configs/demo.yaml"),
            "--out", str(out), *TINY, *extra]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, start_new_session=True)
    try:
        out_text, err_text = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out_text, err_text = proc.communicate()
        raise AssertionError(f"train.py hung (> {timeout:g} s): {err_text[-2000:]}") from None
    return subprocess.CompletedProcess(argv, proc.returncode, out_text, err_text)


def _error_lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.replace("\r", "\n").splitlines() if "error" in ln.lower() or "Traceback" in ln]


# ---------------------------------------------------------------------------------------------
# 1. a real full disk, DataLoader workers on

@pytest.fixture
def small_fs(tmp_path):
    """A 4 MB tmpfs mounted for this test (root only; skipped where mounting is not permitted)."""
    mnt = tmp_path / "fs"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({(r.stderr or r.stdout).strip()[:100]}); "
                    f"the full-disk test needs root or CAP_SYS_ADMIN")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_real_full_disk_with_workers_exits_promptly_with_one_line(small_fs):
    run = small_fs / "run"
    first = _train(run, "train.steps=2", "train.ckpt_every=2", "data.workers=0")
    assert first.returncode == 0, first.stderr[-2000:]
    # fill the disk, leaving too little for the next checkpoint but enough for config and logs
    size = (run / "checkpoints" / "last.pt").stat().st_size
    free = os.statvfs(small_fs).f_bavail * os.statvfs(small_fs).f_frsize
    assert free > size // 2 + 64 * 1024, "the tmpfs is too small for this test"
    with open(small_fs / "filler", "wb") as f:
        f.write(b"\0" * (free - size // 2))
    # the timeout is the hang check: the run used to hang forever here with a worker alive
    r = _train(run, "train.steps=4", "train.ckpt_every=2", "data.workers=1", flags=("--resume",), timeout=240)
    errors = _error_lines(r.stderr + r.stdout)
    assert r.returncode != 0 and len(errors) == 1, r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    assert errors[0].endswith(f"no space left on {run / 'checkpoints'}: checkpoint step 4 not written; "
                              f"last good checkpoint step 2 kept"), errors
    names = os.listdir(run / "checkpoints")
    assert not [n for n in names if n.endswith(".tmp") or n.endswith(".link")], names
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 2
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == ["step_0000002.pt"]


# ---------------------------------------------------------------------------------------------
# 7. one run per directory; 8. --resume on a directory with no run

HOLDER = r'''
import sys, time
from textcolor.runlock import lock_run_dir
lock_run_dir(sys.argv[1])
print("locked", flush=True)
time.sleep(600)
'''


def test_second_run_on_one_out_is_refused_naming_the_first_pid_and_no_stale_lock(tmp_path, capsys):
    import train as train_cli
    from cli_helpers import one_line_error
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])})
    try:
        assert holder.stdout.readline().strip() == "locked"
        code = train_cli.main(["--config", str(ROOT / "configs/demo.yaml"), "--out", str(run), *TINY,
                               "data.workers=0", "train.steps=1"])
        err = capsys.readouterr().err
        assert code == 2 and one_line_error(err), err
        assert f"in use by another training run (pid {holder.pid})" in err
        assert not (run / "checkpoints").exists() and not (run / "config.yaml").exists()
    finally:
        holder.kill()  # SIGKILL: the kernel drops the flock with the process
        holder.wait()
    from textcolor.runlock import lock_run_dir, unlock_run_dir
    lock_run_dir(run)  # no stale lock
    unlock_run_dir(run)


def test_resume_on_a_directory_with_no_run_says_so(tmp_path, capsys):
    import train as train_cli
    from cli_helpers import one_line_error
    code = train_cli.main(["--resume", "--config", str(ROOT / "configs/demo.yaml"), "--out", str(tmp_path / "typo"),
                           *TINY, "data.workers=0", "train.steps=1"])
    err = capsys.readouterr().err
    assert code == 2 and one_line_error(err) and "holds no run" in err, err
    assert not (tmp_path / "typo").exists()


# ---------------------------------------------------------------------------------------------
# 2. data reads are bounded: FIFOs, devices, oversized tag files; 3. confined to the dataset root

@contextlib.contextmanager
def no_hang(seconds: int = 60):
    """A read that blocks (a FIFO with no writer) fails the test instead of hanging it."""
    def fire(*_):
        raise AssertionError(f"blocked for {seconds} s: a read hung")
    old = signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _png(path: Path, size: int = 40) -> Path:
    from PIL import Image
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), (200, 50, 50)).save(path)
    return path


def _hostile_folder(root: Path) -> Path:
    """5 good images (tags in sidecars) and 4 hostile ones: a FIFO tag file, a tag file linked to
    /dev/zero, a 2 MB tag file, a FIFO named like an image; a link to an image outside the root."""
    data = root / "data"
    for i in range(9):
        _png(data / f"{i:05d}.png")
        (data / f"{i:05d}.txt").write_text("red_hair, blue_eyes")
    (data / "00003.txt").unlink()
    os.mkfifo(data / "00003.txt")
    (data / "00004.txt").unlink()
    os.symlink("/dev/zero", data / "00004.txt")
    (data / "00005.txt").write_text("a, " * 700_000)
    (data / "00006.png").unlink()
    os.mkfifo(data / "00006.png")
    outside = _png(root / "outside" / "secret.png")
    (data / "00007.png").unlink()
    os.symlink(outside, data / "00007.png")
    return data


def test_folder_dataset_counts_fifos_devices_big_tag_files_and_links_out(tmp_path):
    from textcolor.data import FolderDataset
    data = _hostile_folder(tmp_path)
    with no_hang():
        ds = FolderDataset(data, 32)
        reasons = sorted(r for _, r in ds.skipped)
        assert reasons == ["not a regular file", "outside the dataset root", "tag file not a regular file",
                           "tag file not a regular file", "tag file too large"], ds.skipped
        assert len(ds) == 4 and all(ds[i]["tags"] == "red_hair, blue_eyes" for i in range(len(ds)))


def test_training_on_a_folder_with_a_fifo_tag_file_and_workers_finishes(tiny_cfg, tmp_path):
    from dataclasses import replace

    from textcolor.training import train
    data = _hostile_folder(tmp_path)
    cfg = replace(tiny_cfg, data=replace(tiny_cfg.data, source="folder", path=str(data), workers=1, val_n=2),
                  train=replace(tiny_cfg.train, steps=2, image_every=100, log_every=100))
    with no_hang(120):
        assert train(cfg, tmp_path / "run").step == 2


def test_prepare_skips_and_counts_fifos_and_paths_outside_the_root(tmp_path, capsys):
    import pandas as pd

    from textcolor import prepare
    data = _hostile_folder(tmp_path)
    with no_hang():
        code = prepare.main(["--folder", str(data), "--out", str(tmp_path / "cache"), "--size", "32"])
    out = capsys.readouterr().out
    assert code == 0 and "prepared 4 images" in out and "skipped 5 of 9 files" in out, out
    assert "secret" not in pd.read_csv(tmp_path / "cache" / "index.csv")["source"].str.cat()
    # a table naming files outside its root
    table = data / "meta.csv"
    pd.DataFrame({"file": ["00000.png", "../outside/secret.png", "/etc/shadow", "00001.png"],
                  "tags": ["red_hair"] * 4}).to_csv(table, index=False)
    with no_hang():
        code = prepare.main(["--table", str(table), "--out", str(tmp_path / "cache2"), "--size", "32"])
    out = capsys.readouterr().out
    assert code == 0 and "prepared 2 images" in out and "2 outside the dataset root" in out, out


def test_table_and_cache_rows_outside_the_root_are_refused_and_counted(tmp_path):
    import pandas as pd

    from textcolor.data import CacheDataset, TableDataset
    data = _hostile_folder(tmp_path)
    table = data / "meta.csv"
    pd.DataFrame({"file": ["00000.png", "../outside/secret.png", "/etc/shadow", "00001.png"],
                  "tags": ["red_hair"] * 4}).to_csv(table, index=False)
    ds = TableDataset(table, 32)
    assert len(ds) == 2 and sorted(r for _, r in ds.skipped) == ["outside the dataset root"] * 2
    assert not any("secret" in p or "shadow" in p for p in ds.paths)
    from textcolor import prepare
    assert prepare.main(["--folder", str(data), "--out", str(tmp_path / "cache"), "--size", "32"]) == 0
    index = pd.read_csv(tmp_path / "cache" / "index.csv", dtype=str, keep_default_na=False)
    index.loc[0, "image"] = "../../outside/secret.png"
    index.to_csv(tmp_path / "cache" / "index.csv", index=False)
    cache = CacheDataset(tmp_path / "cache", 32)
    assert len(cache) == 3 and [r for _, r in cache.skipped] == ["outside the dataset root"]


# ---------------------------------------------------------------------------------------------
# infer.py on folders (issue 17a), colliding outputs (5), oversized inputs (6)

def _infer(capsys, *argv) -> tuple[int, str, str]:
    import infer
    code = infer.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_infer_folder_written_by_sketch_and_one_broken_file(tiny_checkpoint, tmp_path, capsys):
    from textcolor import sketch
    src, sk = tmp_path / "src", tmp_path / "sk"
    _png(src / "a.png", 48)
    _png(src / "b.png", 48)
    assert sketch.main([str(src), "--out", str(sk)]) == 0
    (sk / "c.sketch.png").write_text("<html>404</html>")  # a failed download
    os.mkfifo(sk / "d.sketch.png")
    _png(sk / "old.colored.png", 48)
    _png(sk / "x.mask.png", 48)
    with no_hang():
        code, out, err = _infer(capsys, "--sketch", sk, "--checkpoint", tiny_checkpoint)
    assert code == 1, (out, err)
    assert sorted(p.name for p in sk.glob("*.sketch.colored.png")) == ["a.sketch.colored.png", "b.sketch.colored.png"]
    lines = [ln.strip() for ln in err.replace("\r", "\n").splitlines() if "skipped:" in ln or "rror" in ln]
    assert len(lines) == 2 and lines[0].endswith("c.sketch.png: not an image") and "Traceback" not in err, err
    assert "d.sketch.png: not a regular file" in lines[1], err
    assert "wrote 2 image(s)" in out and "2 input(s) skipped" in out and "left out 2 of our own outputs" in out, out


def test_infer_folder_of_only_our_outputs_says_why(tiny_checkpoint, tmp_path, capsys):
    from cli_helpers import one_line_error
    _png(tmp_path / "d" / "a.colored.png")
    _png(tmp_path / "d" / "a.mask.png")
    code, out, err = _infer(capsys, "--sketch", tmp_path / "d", "--checkpoint", tiny_checkpoint)
    assert code == 2 and one_line_error(err) and "skipped 2 of our own outputs" in err, err


def test_inputs_sharing_a_stem_get_distinct_outputs_and_grid_may_not_be_an_output(tiny_checkpoint, tmp_path, capsys):
    from cli_helpers import one_line_error
    from PIL import Image
    d = tmp_path / "d"
    for ext in ("png", "jpg", "webp"):
        d.mkdir(exist_ok=True)
        Image.new("RGB", (48, 48), "white").save(d / f"a.{ext}")
    code, out, err = _infer(capsys, "--sketch", d, "--checkpoint", tiny_checkpoint)
    assert code == 0 and "wrote 3 image(s)" in out, err
    assert sorted(p.name for p in d.glob("*.colored.png")) == ["a_jpg.colored.png", "a_png.colored.png",
                                                                "a_webp.colored.png"]
    code, out, err = _infer(capsys, "--sketch", d / "a.png", "--out", tmp_path / "o.png", "--grid", tmp_path / "o.png",
                            "--checkpoint", tiny_checkpoint)
    assert code == 2 and one_line_error(err) and "--grid" in err, err
    assert not (tmp_path / "o.png").exists()


def test_checkpoint_that_is_not_one_is_named_in_one_line(tmp_path, capsys):
    from cli_helpers import one_line_error
    _png(tmp_path / "s.png")
    code, out, err = _infer(capsys, "--sketch", tmp_path / "s.png", "--checkpoint", ROOT / "README.md")
    assert code == 2 and one_line_error(err), err
    assert err.strip() == f"error: {ROOT / 'README.md'}: not a checkpoint (expected a .pt file written by train.py " \
                          f"or a .safetensors export)"


@pytest.mark.parametrize("size", [(20000, 20), (200000, 1)])
def test_extreme_aspect_ratio_is_refused_before_allocation(tiny_checkpoint, tmp_path, capsys, size):
    from cli_helpers import one_line_error
    from PIL import Image
    Image.new("L", size, 255).save(tmp_path / "strip.png")
    code, out, err = _infer(capsys, "--sketch", tmp_path / "strip.png", "--checkpoint", tiny_checkpoint)
    assert code == 2 and one_line_error(err) and "more than 32:1" in err, err


def test_over_budget_input_names_the_size_that_fits(tiny_checkpoint, tmp_path, capsys, monkeypatch):
    from cli_helpers import one_line_error
    from textcolor import colorize
    _png(tmp_path / "s.png", 64)
    monkeypatch.setattr(colorize, "DEFAULT_BUDGET", 2_000_000)  # a tiny model needs a tiny budget to hit
    code, out, err = _infer(capsys, "--sketch", tmp_path / "s.png", "--size", "512", "--checkpoint", tiny_checkpoint)
    assert code == 2 and one_line_error(err) and "budget" in err and "pass --size " in err, err
    fit = int(err.split("pass --size ")[1].split()[0])
    code, out, err = _infer(capsys, "--sketch", tmp_path / "s.png", "--size", fit, "--checkpoint", tiny_checkpoint)
    assert code == 0, err


# ---------------------------------------------------------------------------------------------
# 4. checkpoints are data, not instructions; 8. NaN weights, zip bombs

def _crafted(tiny_checkpoint, dst: Path, edit_config=None, weights=None, vectors=None) -> Path:
    """The tiny run's generator exported as .safetensors, with its config / tensors replaced."""
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    from textcolor.checkpoint import export_generator
    base = export_generator(tiny_checkpoint, dst.with_name("base.safetensors"))
    with safe_open(str(base), "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    config = json.loads(meta["config"])
    if edit_config:
        edit_config(config)
    if weights is not None:
        tensors = {k: v for k, v in tensors.items() if not k.startswith("G.")} | {f"G.{k}": v for k, v in weights.items()}
    if vectors is not None:
        tensors["tags.vectors"] = vectors
        meta["tag_names"] = json.dumps([f"tag{i}" for i in range(len(vectors))])
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(dst), metadata={**meta, "config": json.dumps(config)})
    return dst


def _refused(path: Path, match: str) -> str:
    from textcolor.checkpoint import CheckpointError
    from textcolor.colorize import Colorizer
    with pytest.raises(CheckpointError) as info:
        Colorizer.from_checkpoint(path, device="cpu")
    message = str(info.value)
    assert "\n" not in message and match in message, message
    return message


def test_a_config_describing_a_huge_generator_is_refused_before_building(tiny_checkpoint, tmp_path):
    import resource
    import time

    def huge(c):
        c["gen"]["base"], c["gen"]["max_ch"] = 2048, 8192
    path = _crafted(tiny_checkpoint, tmp_path / "huge.safetensors", huge)
    rss, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter()
    _refused(path, "weights do not fit the architecture in its config")
    assert time.perf_counter() - t0 < 10
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss < 500_000  # KB: nothing of 50 GB allocated


def test_tag_widths_are_checked_when_the_colorizer_is_built(tiny_checkpoint, tmp_path):
    from textcolor.checkpoint import load_generator
    from textcolor.models import Generator
    g = load_generator(tiny_checkpoint)
    # 17-wide tag vectors for a generator that takes 384
    path = _crafted(tiny_checkpoint, tmp_path / "v17.safetensors", vectors=torch.randn(3, 17))
    _refused(path, "its tag vectors are 17-d but its generator takes 384-d tag embeddings")
    # a 17-wide generator and table, but the bundled encoder gives 384
    g17 = Generator(g.cfg.gen, g.cfg.tags, 17)
    path = _crafted(tiny_checkpoint, tmp_path / "g17.safetensors", weights=g17.state_dict(), vectors=torch.randn(3, 17))
    _refused(path, "its tags are 17-d but its tag encoder 'bundled' gives 384-d vectors")


def test_checkpoint_config_never_names_local_paths_nor_reads_the_environment(tiny_checkpoint, tmp_path, monkeypatch,
                                                                           capsys):
    from textcolor.colorize import Colorizer
    monkeypatch.setenv("SECRET_TOKEN", "hunter2")
    leak = tmp_path / "leak_${oc.env:SECRET_TOKEN}"

    def hostile(c):
        c["tags"]["cache_dir"] = str(leak)
        c["data"]["path"] = "${oc.env:SECRET_TOKEN}"
        c["train"]["probe_prompts"] = ["${oc.env:SECRET_TOKEN}"]
    path = _crafted(tiny_checkpoint, tmp_path / "env.safetensors", hostile)
    col = Colorizer.from_checkpoint(path, device="cpu")
    assert "hunter2" not in repr(col.cfg) and col.cfg.tags.cache_dir == "" and col.cfg.data.path == ""
    assert col.cfg.train.probe_prompts == ["${oc.env:SECRET_TOKEN}"]
    assert str(tmp_path) not in str(col.encoder.cache_path)
    _png(tmp_path / "s.png")
    code, _, err = _infer(capsys, "--sketch", tmp_path / "s.png", "--tags", "a_tag_nobody_has", "--checkpoint", path)
    assert not list(tmp_path.glob("leak_*")), "inference created a directory the checkpoint named"


def test_data_size_8192_in_a_checkpoint_is_refused_with_the_size_to_pass(tiny_checkpoint, tmp_path, capsys):
    from cli_helpers import one_line_error

    def big(c):
        c["data"]["size"] = 8192
    path = _crafted(tiny_checkpoint, tmp_path / "big.safetensors", big)
    _png(tmp_path / "s.png", 64)
    code, out, err = _infer(capsys, "--sketch", tmp_path / "s.png", "--checkpoint", path)
    assert code == 2 and one_line_error(err) and "budget" in err and "pass --size" in err, err


def test_nan_weights_are_refused(tiny_checkpoint, tmp_path, capsys):
    from cli_helpers import one_line_error
    state = torch.load(tiny_checkpoint, weights_only=True)
    key = next(k for k, v in state["G_ema"].items() if v.is_floating_point())
    state["G_ema"][key][0] = float("nan")
    torch.save(state, tmp_path / "nan.pt")
    _png(tmp_path / "s.png")
    code, out, err = _infer(capsys, "--sketch", tmp_path / "s.png", "--checkpoint", tmp_path / "nan.pt")
    assert code == 2 and one_line_error(err) and f"non-finite values in G_ema.{key}" in err, err
    assert not (tmp_path / "s.colored.png").exists()


def test_compressed_zip_checkpoint_is_refused_before_inflating(tiny_checkpoint, tmp_path):
    import zipfile

    from textcolor.checkpoint import CheckpointError, load_checkpoint
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(tiny_checkpoint) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            out.writestr(info.filename, src.read(info), compress_type=zipfile.ZIP_DEFLATED)
        prefix = src.infolist()[0].filename.split("/")[0]
        out.writestr(f"{prefix}/data/999", b"\0" * 50_000_000, compress_type=zipfile.ZIP_DEFLATED)
    assert bomb.stat().st_size < 1_000_000
    with pytest.raises(CheckpointError, match="compressed entries"):
        load_checkpoint(bomb)


# ---------------------------------------------------------------------------------------------
# 6. the web page bounds pixels per request and its queue

class _NoColorizer:
    """Fails the test if the page gets as far as allocating for the request."""

    def prepare(self, *a, **kw):
        raise AssertionError("the request reached the model")

    colorize_prepared = prepare


def test_web_page_bounds_pixels_per_request(tmp_path):
    import time

    from PIL import Image

    from textcolor.app import MAX_INPUT_PIXELS, colorize_request
    big = tmp_path / "big.png"
    Image.new("L", (5000, 4000), 255).save(big)
    t0 = time.perf_counter()
    images, msg = colorize_request(_NoColorizer(), str(big), "red_hair", 1.0, False)
    assert images == [] and "5000x4000 exceeds the 16-megapixel limit" in msg and MAX_INPUT_PIXELS == 16_000_000, msg
    assert time.perf_counter() - t0 < 5
    mid = tmp_path / "mid.png"
    Image.new("L", (3000, 3000), 255).save(mid)
    images, msg = colorize_request(_NoColorizer(), str(mid), "a\nb\nc\nd", 1.0, False)
    assert images == [] and "3000×3000 with 4 prompts is 36 megapixels" in msg and "at most 3 prompts" in msg, msg


def test_web_page_queue_and_upload_cleanup_are_bounded():
    pytest.importorskip("gradio", reason='gradio is not installed (pip install -e ".[app]")')
    from textcolor.app import MAX_QUEUE, build_ui
    demo = build_ui(_NoColorizer())
    assert demo._queue.max_size == MAX_QUEUE <= 8
    frequency, age = demo.delete_cache
    assert frequency <= 600 and age <= 1800


# ---------------------------------------------------------------------------------------------
# 8. the smaller cases in train.py: a missing text encoder, --out inside the data folder

def test_missing_text_encoder_is_one_line(tmp_path, capsys):
    import train as train_cli
    from cli_helpers import one_line_error
    code = train_cli.main(["--config", str(ROOT / "configs/demo.yaml"), "--out", str(tmp_path / "run"), *TINY,
                           "data.workers=0", "train.steps=1", f"tags.encoder={tmp_path / 'no_such_model'}"])
    err = capsys.readouterr().err
    assert code == 2 and one_line_error(err) and "no_such_model" in err and "tag encoder" in err, err


def test_out_inside_the_data_folder_is_refused(tmp_path, capsys):
    import train as train_cli
    from cli_helpers import one_line_error
    data = tmp_path / "data"
    for i in range(2):
        _png(data / f"{i}.png")
    before = sorted(p.name for p in data.rglob("*"))
    code = train_cli.main(["--config", str(ROOT / "configs/demo.yaml"), "--out", str(data / "runs" / "x"), *TINY,
                           "data.workers=0", "train.steps=1", "data.source=folder", f"data.path={data}"])
    err = capsys.readouterr().err
    assert code == 2 and one_line_error(err) and "inside the data folder" in err, err
    assert sorted(p.name for p in data.rglob("*")) == before


class _Runs:
    def __reduce__(self):
        return os.system, ("true",)


def test_a_code_running_pickle_is_named_not_pytorchs_paragraph(tmp_path):
    from textcolor.checkpoint import CheckpointError, load_checkpoint
    torch.save(_Runs(), tmp_path / "evil.pt")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "evil.pt")
    assert str(info.value) == (f"{tmp_path / 'evil.pt'}: refused to load (not a plain-weights checkpoint: "
                               f"it would call posix.system)")
