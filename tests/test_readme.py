"""The README's quick start is itself tested: its commands name real files, and the main job runs."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def quick_start() -> list[str]:
    block = re.search(r"## Quick start.*?```bash\n(.*?)```", README, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_quick_start_is_two_commands_install_then_run():
    train_cmd, test_cmd = quick_start()
    assert "pip install -e ." in train_cmd and "train.py --config configs/demo.yaml" in train_cmd
    assert 'pip install -e ".[test,app]"' in test_cmd and "pytest" in test_cmd
    ci = (ROOT / ".ci/run").read_text()
    assert 'pip install -e ".[test,app]"' in ci and "python -m pytest" in ci


def test_no_unfilled_sections():
    assert "@@" not in README


@pytest.mark.slow
def test_quick_start_main_job_runs(tmp_path):
    train_cmd = quick_start()[0]
    args = train_cmd.split("train.py", 1)[1].split()
    args = [str(ROOT / a) if a.startswith("configs/") else a for a in args]
    args[args.index("--out") + 1] = str(tmp_path / "demo")
    tiny = ["train.steps=3", "data.synth_n=8", "data.val_n=2", "data.workers=0", "train.image_every=3",
            "train.ckpt_every=3", "train.log_every=1"]
    r = subprocess.run([sys.executable, str(ROOT / "train.py"), *args, *tiny], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "demo/checkpoints/last.pt").exists() and list((tmp_path / "demo").glob("events.out.*"))
