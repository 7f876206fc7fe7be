import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(min(2, torch.get_num_threads()))


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
