import os
import sys
from pathlib import Path

import pytest

# before torch is imported: idle OpenMP threads sleep, not spin, on a busy machine (textcolor/threads.py)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(min(2, torch.get_num_threads()))


def pytest_collection_modifyitems(config, items):
    """Tests marked `gpu` are skipped, with the reason, where CUDA is not available."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="gpu test: torch.cuda.is_available() is False")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def tiny_cfg():
    """A config small enough to train a few steps in seconds on CPU."""
    from textcolor.config import load_config
    return load_config(None, [
        "data.size=32", "data.synth_n=16", "data.val_n=2", "data.workers=0",
        "gen.base=8", "gen.depth=2", "gen.max_ch=16", "gen.res_blocks=1", "gen.bottleneck_blocks=1",
        "disc.base=8", "disc.layers=2", "tags.k=4",
        "train.steps=4", "train.batch_size=2", "train.log_every=2", "train.image_every=2",
        "train.ckpt_every=2", "train.keep_last=2",
    ])


@pytest.fixture(scope="session", autouse=True)
def shared_tag_cache(tmp_path_factory):
    """One embedding cache for the whole session: the text model loads at most once per process."""
    path = tmp_path_factory.mktemp("tag_cache")
    old = os.environ.get("TEXTCOLOR_CACHE")
    os.environ["TEXTCOLOR_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("TEXTCOLOR_CACHE", None)
    else:
        os.environ["TEXTCOLOR_CACHE"] = old


@pytest.fixture(scope="session")
def train_tiny(tmp_path_factory):
    """train_tiny(name, *overrides) -> the checkpoint of a real 2-step train.py run of a tiny model;
    the overrides come after (and so win over) the tiny defaults."""
    from textcolor.config import load_config
    from textcolor.training import train

    def run(name, *overrides):
        cfg = load_config(None, [
            "data.size=32", "data.synth_n=8", "data.val_n=2", "data.workers=0", "gen.base=8", "gen.depth=2",
            "gen.max_ch=16", "gen.bottleneck_blocks=1", "disc.base=8", "disc.layers=2", "tags.k=4",
            "train.steps=2", "train.batch_size=2", "train.image_every=100", "train.ckpt_every=2", *overrides])
        return train(cfg, tmp_path_factory.mktemp(name)).checkpoint
    return run


@pytest.fixture(scope="session")
def tiny_checkpoint(train_tiny):
    """A real train.py checkpoint of a tiny model (2 steps), shared by inference tests."""
    return train_tiny("tiny_run", "train.log_every=1", "train.ema=0.5")


@pytest.fixture(scope="session")
def rendered_sketch(tmp_path_factory):
    """A 96×80 XDoG sketch of a synthetic character, as a PNG file."""
    from PIL import Image
    from textcolor import synth
    from textcolor.xdog import sketch_array
    sample = synth.render(7, 96, character="hatsune_miku", monochrome=False)
    path = tmp_path_factory.mktemp("sketch") / "s.png"
    Image.fromarray(sketch_array(sample.image)[:80]).save(path)
    return path
