"""A fixed-seed 20-step CPU training run gives the losses and weights it gave before the training code
was restructured (tests/data/fingerprint.json, recorded by this file's `fingerprint` on the code
before the move, commit e5c60a7). Every code
path of the step is on: attention pooling with 2 heads, paraphrased and colour-only prompts, D
conditioned on the tags, hair/eye L1, locality and shift terms, a lazy penalty and EMA.

Recorded bit-exact on this project's CPU; compared here to 1e-6 so another CPU's rounding passes
while any change to the recipe (an extra RNG draw, a reordered sum, another prompt) does not."""
import json
from pathlib import Path

import pytest
import torch

from textcolor import training
from textcolor.checkpoint import load_checkpoint
from textcolor.config import load_config

ROOT = Path(__file__).resolve().parent.parent
OVERRIDES = ["data.size=32", "data.synth_n=64", "data.workers=0", "data.val_n=2", "gen.base=8", "gen.depth=2",
             "gen.max_ch=16", "disc.base=8", "disc.cond_tags=true", "tags.pool=attention", "tags.heads=2",
             "tags.paraphrase=0.3", "tags.color_prompt=0.2", "loss.lambda_hair=1", "loss.lambda_eyes=1",
             "loss.lambda_locality=1", "loss.lambda_shift=0.5", "loss.gp_every=2", "train.steps=20",
             "train.batch_size=4", "train.log_every=1", "train.image_every=1000", "train.ckpt_every=1000",
             "train.threads=1", "train.ema=0.9"]


def prefill_tag_cache(cache: Path) -> None:
    """Every tag the run can meet, embedded in one fixed order: a sentence-transformer's vector
    depends (in the 7th digit) on the other texts of its batch, and a GAN step amplifies that."""
    from textcolor.explore import vocabulary
    from textcolor.paraphrase import load_paraphrases
    from textcolor.tags import TagEncoder
    tags = set(vocabulary()["tag"]) | {p for phrases in load_paraphrases().values() for p in phrases}
    TagEncoder(cache_dir=cache).encode(sorted(tags))


def fingerprint(out_dir: Path, monkeypatch) -> dict:
    prefill_tag_cache(out_dir / "tag_cache")
    steps = []
    call = training.TrainStep.__call__

    def recording(self, *args, **kw):
        metrics = call(self, *args, **kw)
        steps.append({k: float(v) for k, v in sorted(metrics.items())})
        return metrics

    monkeypatch.setattr(training.TrainStep, "__call__", recording)
    cfg = load_config(ROOT / "configs/demo.yaml", OVERRIDES + [f"tags.cache_dir={out_dir / 'tag_cache'}"])
    result = training.train(cfg, out_dir / "run")
    state = load_checkpoint(result.checkpoint)
    weights = {net: sum(float(t.double().abs().sum()) for t in state[net].values() if t.is_floating_point())
               for net in ("G", "D", "G_ema")}
    return {"losses": steps, "weights": weights}


def test_twenty_steps_give_the_recorded_losses_and_weights(tmp_path, monkeypatch):
    torch.use_deterministic_algorithms(True)
    try:
        got = fingerprint(tmp_path, monkeypatch)
    finally:
        torch.use_deterministic_algorithms(False)
    want = json.loads((ROOT / "tests/data/fingerprint.json").read_text())
    assert len(got["losses"]) == len(want["losses"]) == 20
    for step, (g, w) in enumerate(zip(got["losses"], want["losses"])):
        assert set(g) == set(w), step
        assert g == pytest.approx(w, rel=1e-6, abs=1e-7), f"step {step}"
    assert got["weights"] == pytest.approx(want["weights"], rel=1e-6)
