"""A fixed-seed 20-step CPU training run draws the batches, prompts and loss terms it drew when
recorded (tests/data/fingerprint.json), and its first step computes the losses it computed then.
Every code path of the step is on: attention pooling with 2 heads, paraphrased and colour-only
prompts, D conditioned on the tags, hair/eye L1, locality and shift terms, a lazy penalty and EMA.

What is compared, and why not the later losses: a GAN under Adam does not survive a change of
rounding. Adam's first update is ~lr * sign(g) for every weight, so a gradient that is zero in
exact arithmetic and 1e-9 in floats moves its weight a full step either way, and a new torch
build's rounding (a fresh install on 2026-12-01, torch 2.14.1: step-0 gradient norm off by
1.4e-5 from the first recording) becomes a 0.5% difference at step 1 and another trajectory by
step 10. So the losses are compared where they are a deterministic function of the code (step 0:
seeded weights, the first batch), and the whole run is compared where it does not depend on
rounding: every step's batch (sketch, target and mask sums), prompt embeddings, swapped rows and
regions, and which loss terms ran. An extra RNG draw, another prompt, a reordered or re-weighted
loss, or a changed schedule fails here; a new CPU or torch build does not.

Re-record (after checking that the old recording still passes on the old torch, or that the change
is intended): python tests/test_fingerprint.py"""
import inspect
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
    signature = inspect.signature(call)

    def recording(self, *args, **kw):
        given = signature.bind(self, *args, **kw)
        given.apply_defaults()
        metrics = call(self, *args, **kw)
        batch = {k: given.arguments[k] for k in ("sketch", "image", "emb", "mask", "swap")}
        steps.append({"losses": {k: float(v) for k, v in sorted(metrics.items())}, "batch": batch_stream(**batch)})
        return metrics

    monkeypatch.setattr(training.TrainStep, "__call__", recording)
    cfg = load_config(ROOT / "configs/demo.yaml", OVERRIDES + [f"tags.cache_dir={out_dir / 'tag_cache'}"])
    result = training.train(cfg, out_dir / "run")
    load_checkpoint(result.checkpoint)   # the run finished and wrote a loadable checkpoint
    return {"steps": steps}


def batch_stream(sketch, image, emb, mask, swap) -> dict:
    """What a step was given, as numbers that do not depend on the model's rounding: sums of the
    tensors (compared to float tolerance) and the swapped rows and regions (compared exactly)."""
    sums = {"sketch": float(sketch.double().sum()), "image": float(image.double().sum()),
            "emb": None if emb is None else float(emb.double().abs().sum()),
            "mask": None if mask is None else int(mask.long().sum())}
    swaps = None if swap is None else {"index": swap.index.tolist(), "label": swap.label.tolist()}
    return {"sums": sums, "swaps": swaps}


def test_twenty_steps_draw_the_recorded_batches_and_first_losses(tmp_path, monkeypatch):
    torch.use_deterministic_algorithms(True)
    try:
        got = fingerprint(tmp_path, monkeypatch)["steps"]
    finally:
        torch.use_deterministic_algorithms(False)
    want = json.loads((ROOT / "tests/data/fingerprint.json").read_text())["steps"]
    assert len(got) == len(want) == 20
    for step, (g, w) in enumerate(zip(got, want)):
        assert set(g["losses"]) == set(w["losses"]), f"step {step}: other loss terms ran"
        assert g["batch"]["swaps"] == w["batch"]["swaps"], f"step {step}: other swaps"
        assert g["batch"]["sums"] == pytest.approx(w["batch"]["sums"], rel=1e-6), f"step {step}: another batch"
    assert got[0]["losses"] == pytest.approx(want[0]["losses"], rel=1e-4, abs=1e-6)


if __name__ == "__main__":
    import tempfile

    torch.use_deterministic_algorithms(True)
    with pytest.MonkeyPatch.context() as patch:
        record = fingerprint(Path(tempfile.mkdtemp()), patch)
    (ROOT / "tests/data/fingerprint.json").write_text(json.dumps(record, indent=1) + "\n")
