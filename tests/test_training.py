"""End-to-end training: loss goes down, exact resume, DDP, checkpoints, TensorBoard, failures."""
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from textcolor import losses
from textcolor.checkpoint import CheckpointError, load_checkpoint
from textcolor.prompts import Swap, color_distance, drop_prompts, swap_color_tags
from textcolor.tags import parse_prompt, tag_text, tags_to_prompt
from textcolor.training import TrainingError, TrainStep, lr_at, train
from textcolor.trainstate import build, init_weights
from textcolor.vocab import EYES, HAIR, LINE

ROOT = Path(__file__).resolve().parent.parent


def train_step(m, cfg, sketch, image, emb, step, **kw):
    """One TrainStep, as train() runs it."""
    return TrainStep(m, cfg)(sketch, image, emb, step, **kw)


def drop(prompts, *args, **kw):
    """drop_prompts on text: parsed in, joined out."""
    return [tags_to_prompt(p) for p in drop_prompts([parse_prompt(x) for x in prompts], *args, **kw)]


def swap(prompts, gen, colors):
    """swap_color_tags on text: parsed in, the swapped prompts joined out."""
    idx, new, kinds, moves = swap_color_tags([parse_prompt(x) for x in prompts], gen, colors)
    return idx, [tags_to_prompt(p) for p in new], kinds, moves


def weights(path):
    return load_checkpoint(path)["G"]


@pytest.mark.slow  # 40 steps
def test_a_few_dozen_steps_reduce_l1(tiny_cfg):
    tiny_cfg = replace(tiny_cfg, optim=replace(tiny_cfg.optim, lr=1e-3))
    m = build(tiny_cfg, embed_dim=6, device=torch.device("cpu"))
    # a learnable target: paper takes a per-sample colour (from the tag), lines stay dark
    lines = (torch.rand(2, 1, 32, 32) > 0.2).float()
    colour = torch.tensor([[0.8, -0.5, 0.2], [-0.6, 0.1, 0.9]]).view(2, 3, 1, 1)
    sketch, image = (lines * 2 - 1).expand(2, 3, 32, 32), lines * colour - (1 - lines)
    emb = torch.randn(2, 6)
    torch.manual_seed(0)
    first = [train_step(m, tiny_cfg, sketch, image, emb, s)["loss/l1"].item() for s in range(3)]
    for s in range(3, 40):
        last = train_step(m, tiny_cfg, sketch, image, emb, s)
    assert last["loss/l1"].item() < 0.5 * min(first)
    assert {"loss/d", "loss/gp", "loss/g_adv", "loss/l1", "score/real", "score/fake"} <= set(last)


COLORS = {"hair": ["red_hair", "blue_hair", "green_hair"], "eyes": ["red_eyes", "blue_eyes"]}


def test_swap_color_tags_changes_one_colour_of_its_own_kind_and_is_seeded():
    prompts = ["1girl, red_hair, blue_eyes:1.2", "hatsune_miku", "", "solo, green hair", "crimson-haired girl"]
    idx, new, kinds, moves = swap(prompts, torch.Generator().manual_seed(0), COLORS)
    assert idx == [0, 3]                       # no colour tag, empty, reworded: left out
    assert swap(prompts, torch.Generator().manual_seed(0), COLORS) == (idx, new, kinds, moves)
    for i, prompt, kind, (was, now) in zip(idx, new, kinds, moves):
        before, after = parse_prompt(prompts[i]), parse_prompt(prompt)
        changed = [(x, y) for x, y in zip(before, after) if x != y]
        assert len(before) == len(after) and len(changed) == 1
        (old, w_old), (repl, w_new) = changed[0]
        assert w_old == w_new and repl in COLORS[kind]
        assert tag_text(old) in {tag_text(t) for t in COLORS[kind]} and tag_text(repl) != tag_text(old)
        assert (tag_text(was), now) == (tag_text(old), repl) and was in COLORS[kind]
    gen, seen = torch.Generator().manual_seed(1), set()
    for _ in range(30):
        seen |= set(swap(prompts[:1], gen, COLORS)[2])
    assert seen == {"hair", "eyes"}


def _locality_batch():
    """Two 32-px samples: hair on the left, eyes in one corner, outlines in row 0."""
    mask = torch.zeros(2, 32, 32, dtype=torch.uint8)
    mask[:, :, :16] = HAIR
    mask[:, 20:24, 20:24] = EYES
    mask[:, 0] = LINE
    sketch = torch.ones(2, 3, 32, 32)
    sketch[:, :, 0] = -1
    emb = torch.randn(4, 6, generator=torch.Generator().manual_seed(3))   # 2 own prompts, 2 swapped
    image = torch.where(emb[:2, :3, None, None] > 0, 0.8, -0.8).expand(2, 3, 32, 32).clone()
    swap = Swap(torch.tensor([0, 1]), torch.tensor([HAIR, EYES], dtype=torch.uint8))
    return sketch, image, emb, mask, swap


def test_region_and_locality_terms_are_what_they_say(tiny_cfg):
    import copy
    cfg = replace(tiny_cfg, loss=replace(tiny_cfg.loss, lambda_hair=0.5, lambda_eyes=1.0, lambda_locality=1.0))
    m = build(cfg, embed_dim=6, device=torch.device("cpu"))
    sketch, image, emb, mask, swap = _locality_batch()
    G = copy.deepcopy(m.G)
    torch.manual_seed(0)
    fake_all = G(torch.cat([sketch, sketch[swap.index]]), emb).detach()   # same batch statistics as the step
    fake = fake_all[:2]
    metrics = train_step(m, cfg, sketch, image, emb, 0, mask=mask, swap=swap)
    # regions (default): the hair swap (sample 0) is held on background and eyes, the eye swap
    # (sample 1) on background and hair; each region's mean over its samples, then their mean
    moved, held = fake_all[2:], fake
    bg = losses.masked_l1(moved, held, mask == 0)
    eyes = losses.masked_l1(moved[:1], held[:1], mask[:1] == EYES)
    hair = losses.masked_l1(moved[1:], held[1:], mask[1:] == HAIR)
    assert metrics["loss/locality"].item() == pytest.approx(((bg + eyes + hair) / 3).item(), rel=1e-5)
    pixels = replace(cfg, loss=replace(cfg.loss, locality_average="pixels"))
    m = build(pixels, embed_dim=6, device=torch.device("cpu"))
    G = copy.deepcopy(m.G)
    fake_all = G(torch.cat([sketch, sketch[swap.index]]), emb).detach()
    fake = fake_all[:2]
    outside = (mask != swap.label[:, None, None]) & (mask != LINE)
    metrics = train_step(m, pixels, sketch, image, emb, 0, mask=mask, swap=swap)
    assert metrics["loss/locality"].item() == pytest.approx(
        losses.masked_l1(fake_all[2:], fake, outside).item(), rel=1e-5)
    assert metrics["loss/l1_hair"].item() == pytest.approx(losses.masked_l1(fake, image, mask == HAIR).item(), rel=1e-5)
    assert metrics["loss/l1_eyes"].item() == pytest.approx(losses.masked_l1(fake, image, mask == EYES).item(), rel=1e-5)


def test_shift_term_is_the_hinge_on_the_swapped_region(tiny_cfg):
    import copy
    cfg = replace(tiny_cfg, loss=replace(tiny_cfg.loss, lambda_locality=1.0, lambda_shift=1.0))
    m = build(cfg, embed_dim=6, device=torch.device("cpu"))
    sketch, image, emb, mask, swap = _locality_batch()
    swap = replace(swap, shift=torch.tensor([0.7, 0.4]))
    G = copy.deepcopy(m.G)
    torch.manual_seed(0)
    fake_all = G(torch.cat([sketch, sketch[swap.index]]), emb).detach()
    metrics = train_step(m, cfg, sketch, image, emb, 0, mask=mask, swap=swap)
    want = losses.region_shift_hinge(fake_all[2:], fake_all[:2], mask == swap.label[:, None, None], swap.shift)
    assert want.item() > 0 and metrics["loss/shift"].item() == pytest.approx(want.item(), rel=1e-5)


def test_recolor_term_supervises_the_swapped_rows_by_the_recoloured_target(tiny_cfg):
    """Row 0 (hair swap, an original) is held to its target recoloured; row 1 (a monochrome
    prompt) to its own target; a roster row would be left out."""
    import copy

    from textcolor.prompts import LEAVE_OUT, RECOLOR, UNCHANGED
    cfg = replace(tiny_cfg, loss=replace(tiny_cfg.loss, lambda_recolor=1.0))
    m = build(cfg, embed_dim=6, device=torch.device("cpu"))
    sketch, image, emb, mask, swap = _locality_batch()
    new = torch.tensor([[0.5, -0.5, 0.0], [0.0, 0.0, 0.0]])
    G = copy.deepcopy(m.G)
    fake_all = G(torch.cat([sketch, sketch[swap.index]]), emb).detach()
    moved = fake_all[2:]
    target0 = losses.recolored(image[:1], mask[:1], swap.label[:1], image[:1, :, 5, 5], new[:1])
    assert not torch.equal(target0, image[:1])
    target = torch.cat([target0, image[1:]])
    region = mask == swap.label[:, None, None]
    want = losses.l1(moved, target) + losses.masked_l1(moved, target, region)
    metrics = train_step(m, cfg, sketch, image, emb, 0, mask=mask,
                         swap=replace(swap, recolor=torch.tensor([RECOLOR, UNCHANGED], dtype=torch.int8),
                                              old=image[:, :, 5, 5], new=new))
    assert metrics["loss/recolor"].item() == pytest.approx(want.item(), rel=1e-5)
    m = build(cfg, embed_dim=6, device=torch.device("cpu"))
    G = copy.deepcopy(m.G)
    moved = G(torch.cat([sketch, sketch[swap.index]]), emb).detach()[3:]
    metrics = train_step(m, cfg, sketch, image, emb, 0, mask=mask,
                         swap=replace(swap, recolor=torch.tensor([LEAVE_OUT, UNCHANGED], dtype=torch.int8),
                                              old=image[:, :, 5, 5], new=new))
    want = losses.l1(moved, image[1:]) + losses.masked_l1(moved, image[1:], region[1:])
    assert metrics["loss/recolor"].item() == pytest.approx(want.item(), rel=1e-5)


def test_prompt_sampler_marks_recolour_rows(tiny_cfg):
    """Originals are recoloured, monochrome prompts keep their target, roster characters are left out."""
    from textcolor.prompts import LEAVE_OUT, RECOLOR, UNCHANGED, PromptSampler
    cfg = replace(tiny_cfg, loss=replace(tiny_cfg.loss, lambda_recolor=1.0),
                  tags=replace(tiny_cfg.tags, drop_prob=0.0, tag_drop=0.0, short_prompt=0.0, color_prompt=0.0,
                               paraphrase=0.0))
    sampler = PromptSampler(cfg, torch.Generator().manual_seed(0))
    prompts = [parse_prompt(p) for p in ("1girl, red_hair, blue_eyes", "monochrome, red_hair",
                                         "hatsune_miku, aqua_hair", "1girl, solo")]
    out, sw = sampler(prompts, torch.device("cpu"), swaps=True)
    assert sw.index.tolist() == [0, 1, 2] and len(out) == 7
    assert sw.recolor.tolist() == [RECOLOR, UNCHANGED, LEAVE_OUT]
    assert sw.new.shape == sw.old.shape == (3, 3) and sw.new.abs().max() <= 1 and not torch.equal(sw.old, sw.new)
    swapped_in = [t for p, q in zip(out[4:], prompts[:3]) for t, _ in p if (t, 1.0) not in q]
    assert len(swapped_in) == 3


@pytest.mark.parametrize("cut", ["short_prompt", "color_prompt", "tag_drop"])
def test_keep_roster_keeps_the_character_name_in_cut_prompts(tiny_cfg, cut):
    """With tags.keep_roster every cut prompt of a roster character still names it (only the empty
    prompt drops the name); an original's cut prompts are cut as before; off, names are cut too."""
    from textcolor.prompts import PromptSampler
    miku, original = "hatsune_miku, aqua_hair, aqua_eyes, twintails, 1girl", "1girl, solo, red_hair, blue_eyes, long_hair"
    named = {}
    for keep in (False, True):
        opts = dict(drop_prob=0.0, tag_drop=0.0, short_prompt=0.0, color_prompt=0.0, paraphrase=0.0, keep_roster=keep)
        opts[cut] = 0.9
        sampler = PromptSampler(replace(tiny_cfg, tags=replace(tiny_cfg.tags, **opts)), torch.Generator().manual_seed(0))
        out, _ = sampler([parse_prompt(miku), parse_prompt(original)] * 40, torch.device("cpu"), swaps=False)
        named[keep] = [any(t == "hatsune_miku" for t, _ in p) for p in out[::2]]
        assert sum(len(p) for p in out[1::2]) < 5 * 40 * 0.8          # the originals' prompts were cut
        if keep:
            assert sum(len(p) for p in out[::2]) < 5 * 40 * 0.8       # so were miku's, but around her name
    assert all(named[True]) and not all(named[False])


def test_color_distance_in_generator_units():
    assert color_distance((0, 0, 0), (255, 0, 0)) == pytest.approx(2.0)
    assert color_distance((10, 20, 30), (10, 20, 30)) == 0.0


@pytest.mark.slow  # many steps
def test_locality_term_teaches_a_swapped_tag_to_leave_the_rest_alone(tiny_cfg):
    """The target colours the whole image by the tag; with the term on, a swapped tag must still
    change less outside its region than without it."""
    final = {}
    for weight in (0.0, 5.0):
        cfg = replace(tiny_cfg, optim=replace(tiny_cfg.optim, lr=1e-3),
                      loss=replace(tiny_cfg.loss, lambda_adv=0.0, penalty="none", lambda_locality=weight))
        torch.manual_seed(0)
        m = build(cfg, embed_dim=6, device=torch.device("cpu"))
        sketch, image, emb, mask, swap = _locality_batch()
        for s in range(40):
            metrics = train_step(m, cfg, sketch, image, emb, s, mask=mask, swap=swap)
        final[weight] = metrics["loss/locality"].item()
    assert final[5.0] < 0.5 * final[0.0]


def test_l1_only_trains_no_critic(tiny_cfg):
    cfg = replace(tiny_cfg, loss=replace(tiny_cfg.loss, lambda_adv=0.0, penalty="none"))
    m = build(cfg, embed_dim=6, device=torch.device("cpu"))
    before = [p.clone() for p in m.D.parameters()]
    metrics = train_step(m, cfg, torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32), torch.randn(2, 6), 0)
    assert "loss/d" not in metrics
    assert all(torch.equal(a, b) for a, b in zip(before, m.D.parameters()))


@pytest.mark.slow  # three training runs
@pytest.mark.parametrize("workers", [0, 1])
def test_resume_is_bit_identical(tiny_cfg, tmp_path, workers):
    cfg = replace(tiny_cfg, data=replace(tiny_cfg.data, workers=workers),
                  train=replace(tiny_cfg.train, ema=0.9, steps=6, ckpt_every=3),
                  optim=replace(tiny_cfg.optim, decay_steps=4, decay_to=0.25))   # the decay spans the resume
    cfg.gen.dropout = 0.3  # RNG inside G must be restored too
    full = train(cfg, tmp_path / "full")
    train(cfg, tmp_path / "part", max_steps=3)          # "crash" after the step-3 checkpoint
    resumed = train(cfg, tmp_path / "part", resume=True)
    assert full.step == resumed.step == 6
    a, b = load_checkpoint(full.checkpoint), load_checkpoint(resumed.checkpoint)
    for key in ("G", "G_ema", "D"):
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), f"{key}.{name}"
    assert torch.equal(a["opt_g"]["state"][0]["exp_avg"], b["opt_g"]["state"][0]["exp_avg"])
    for opt in ("opt_g", "opt_d"):   # the last update ran at lr × decay_to
        assert b[opt]["param_groups"][0]["lr"] == pytest.approx(cfg.optim.lr * 0.25)


def test_lr_decays_linearly_over_the_last_steps():
    lrs = [lr_at(s, 1e-4, 10, 4, 0.0) for s in range(10)]
    assert lrs[:6] == [1e-4] * 6
    assert lrs[6:] == pytest.approx([0.75e-4, 0.5e-4, 0.25e-4, 0.0])
    assert [lr_at(s, 2.0, 4, 4, 0.5) for s in range(4)] == pytest.approx([1.75, 1.5, 1.25, 1.0])
    assert all(lr_at(s, 1e-4, 10, 0, 0.0) == 1e-4 for s in range(10))   # decay_steps=0: constant


def test_training_wall_time_adds_up_over_resumed_chunks(tiny_cfg, tmp_path):
    """A recipe trained in chunks is timed as their sum: each checkpoint carries the wall time of
    every chunk that led to it."""
    first = train(tiny_cfg, tmp_path / "run", max_steps=2)          # stops after the step-2 checkpoint
    before = load_checkpoint(first.checkpoint)["train_seconds"]
    assert 0 < before <= first.train_seconds
    t0 = time.perf_counter()
    second = train(tiny_cfg, tmp_path / "run", resume=True)
    chunk = time.perf_counter() - t0
    after = load_checkpoint(second.checkpoint)["train_seconds"]
    assert second.step == 4 and before < after <= before + chunk
    assert second.train_seconds >= after


def test_run_dir_layout_and_tensorboard(tiny_cfg, tmp_path):
    res = train(tiny_cfg, tmp_path / "run")
    run = tmp_path / "run"
    assert (run / "config.yaml").exists()
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["last.pt", "step_0000002.pt", "step_0000004.pt"]
    assert os.path.samefile(run / "checkpoints/last.pt", run / "checkpoints/step_0000004.pt")
    state = load_checkpoint(res.checkpoint)
    assert state["step"] == 4 and "hatsune_miku" in state["tags"]["names"]
    assert state["tags"]["vectors"].shape == (len(state["tags"]["names"]), 384)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    ea = EventAccumulator(str(run), size_guidance={"images": 0}).Reload()
    tags = ea.Tags()
    assert {"samples", "tag_ablation"} <= set(tags["images"])
    assert {"loss/d", "loss/gp", "loss/l1", "score/real", "speed/images_per_s", "grad_norm/g",
            "time/train_minutes"} <= set(tags["scalars"])
    assert "final/val_l1" in tags["scalars"]
    from tensorboard.backend.event_processing.plugin_event_accumulator import (
        EventAccumulator as PluginAccumulator,
    )
    hp = PluginAccumulator(str(run)).Reload().PluginTagToContent("hparams")
    assert "_hparams_/experiment" in hp and "_hparams_/session_start_info" in hp


def test_scalars_from_step_0_and_logging_does_not_change_the_numbers(tiny_cfg, tmp_path):
    """A run shorter than log_every still writes its step-0 scalars; logging every step (grad norms,
    TensorBoard writes) draws no random numbers, so the weights are those of a run that logs nothing."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    quiet = replace(tiny_cfg, train=replace(tiny_cfg.train, steps=3, log_every=100, image_every=100, ckpt_every=3))
    loud = replace(quiet, train=replace(quiet.train, log_every=1))
    a, b = train(quiet, tmp_path / "quiet"), train(loud, tmp_path / "loud")
    ea = EventAccumulator(str(tmp_path / "quiet")).Reload()
    assert [e.step for e in ea.Scalars("loss/l1")] == [0]
    assert [e.step for e in ea.Scalars("grad_norm/g")] == [0]
    assert [e.step for e in EventAccumulator(str(tmp_path / "loud")).Reload().Scalars("loss/l1")] == [0, 1, 2]
    wa, wb = load_checkpoint(a.checkpoint), load_checkpoint(b.checkpoint)
    for key in ("G", "D"):
        for name in wa[key]:
            assert torch.equal(wa[key][name], wb[key][name]), f"{key}.{name}"


def test_refuses_to_overwrite_a_run_without_resume(tiny_cfg, tmp_path):
    train(tiny_cfg, tmp_path / "run", max_steps=2)
    with pytest.raises(TrainingError, match="--resume"):
        train(tiny_cfg, tmp_path / "run")


def test_nonfinite_loss_stops_and_names_the_term(tiny_cfg, tmp_path):
    train(tiny_cfg, tmp_path / "run", max_steps=2)
    good = weights(tmp_path / "run")
    cfg = replace(tiny_cfg, loss=replace(tiny_cfg.loss, lambda_l1=float("nan")))
    # step 2 is a logging step (log_every 2), so the gradient norm may be named first
    with pytest.raises(TrainingError, match=r"step 2: non-finite loss \((grad_norm/g=nan, )?loss/g=nan"):
        train(cfg, tmp_path / "run", resume=True)
    assert all(torch.equal(good[k], v) for k, v in weights(tmp_path / "run").items())


@pytest.mark.slow  # several training runs
def test_corrupted_checkpoint_is_refused(tiny_cfg, tmp_path):
    res = train(tiny_cfg, tmp_path / "run", max_steps=2)
    data = res.checkpoint.read_bytes()
    bad = tmp_path / "bad.pt"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(bad)
    bad.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty file"):
        load_checkpoint(bad)
    torch.save({"hello": torch.zeros(1)}, bad)
    with pytest.raises(CheckpointError, match="not a textcolor checkpoint"):
        load_checkpoint(bad)


def test_resume_with_a_different_architecture_is_refused(tiny_cfg, tmp_path):
    train(tiny_cfg, tmp_path / "run", max_steps=2)
    cfg = replace(tiny_cfg, gen=replace(tiny_cfg.gen, base=4))
    with pytest.raises(TrainingError, match="model settings differ"):
        train(cfg, tmp_path / "run", resume=True)


@pytest.mark.slow  # two training runs
def test_init_from_fine_tunes_into_extra_heads(tiny_cfg, tmp_path):
    """init_from: a new run from another run's (or an export's) weights; extra attention heads, which
    the source lacks, start at their init, so the model begins exactly as the source."""
    from textcolor.checkpoint import export_generator, load_generator
    src = replace(tiny_cfg, tags=replace(tiny_cfg.tags, pool="attention"), train=replace(tiny_cfg.train, ema=0.9))
    train(src, tmp_path / "src")
    exported = export_generator(tmp_path / "src", tmp_path / "src.safetensors")
    heads = replace(src, tags=replace(src.tags, heads=3))
    for source in (tmp_path / "src", exported):
        cfg = replace(heads, train=replace(heads.train, steps=1, init_from=str(source)))
        m = build(cfg, embed_dim=384, device=torch.device("cpu"))
        fresh = init_weights(m, source)
        assert fresh == ["cond.extra_proj", "cond.extra_score.0.bias", "cond.extra_score.0.weight",
                         "cond.extra_score.2.bias", "cond.extra_score.2.weight"]
        src_g = load_generator(source).generator.state_dict()
        for name, v in src_g.items():
            assert torch.equal(m.G_ema.state_dict()[name], v), name
        assert torch.count_nonzero(m.G.cond.extra_proj) == 0
    res = train(cfg, tmp_path / "tuned")
    state = load_checkpoint(res.checkpoint)
    assert state["step"] == 1 and state["config"]["tags"]["heads"] == 3
    # another architecture is refused, naming the parameter
    other = replace(src, tags=replace(src.tags, k=5), train=replace(src.train, init_from=str(tmp_path / "src")))
    with pytest.raises(CheckpointError, match="does not fit this config's architecture"):
        train(other, tmp_path / "other")


@pytest.mark.slow
def test_cli_dry_run_and_errors(tmp_path):
    run = lambda *a: subprocess.run([sys.executable, str(ROOT / "train.py"), *a],  # noqa: E731
                                    capture_output=True, text=True, cwd=tmp_path)
    r = run("--config", str(ROOT / "configs/demo.yaml"), "--dry-run", "train.steps=7")
    assert r.returncode == 0 and "steps: 7" in r.stdout
    r = run("--config", str(ROOT / "configs/demo.yaml"), "train.stepz=7")
    assert r.returncode == 2 and r.stderr.strip() == "error: unknown config key: train.stepz"
    r = run("--config", "missing.yaml")
    assert r.returncode == 2 and "config file not found" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_two_process_gloo_ddp(tmp_path):
    overrides = ["data.size=32", "data.synth_n=16", "data.val_n=2", "data.workers=0", "gen.base=8", "gen.depth=2",
                 "gen.max_ch=16", "disc.base=8", "disc.layers=2", "tags.k=4", "train.steps=3",
                 "train.batch_size=2", "train.log_every=1", "train.image_every=100", "train.ckpt_every=3"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
           str(ROOT / "train.py"), "--config", str(ROOT / "configs/demo.yaml"), "--out", str(tmp_path / "ddp"),
           *overrides]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    state = load_checkpoint(tmp_path / "ddp")
    assert state["step"] == 3 and state["samples_seen"] == 3 * 2 * 2  # both processes' batches counted


def test_drop_prompts_empties_shortens_and_is_seeded():
    from textcolor.tags import parse_prompt
    prompts = ["1girl, solo, hatsune_miku, aqua_hair, twintails, monochrome"] * 400
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    assert drop(prompts, 1.0, gen(), 0.5, 0.5) == [""] * 400
    assert drop(prompts, 0.0, gen()) == prompts
    lone = drop(prompts, 0.0, gen(), 0.0, 1.0)
    assert all(len(parse_prompt(p)) == 1 and p in prompts[0].split(", ") for p in lone)
    assert len(set(lone)) == 6                                    # every tag gets to be alone
    mixed = drop(prompts, 0.1, gen(), 0.3, 0.4)
    assert mixed == drop(prompts, 0.1, gen(), 0.3, 0.4)   # the generator decides (exact resume)
    n_tags = [len(parse_prompt(p)) for p in mixed]
    empty, single = n_tags.count(0) / 400, n_tags.count(1) / 400
    assert 0.05 < empty < 0.17                                    # ≈ 0.1 (+ all six dropped: 0.3⁶ ≈ 0)
    assert 0.28 < single < 0.46                                   # ≈ 0.9 · 0.4 (+ tag_drop leaving one)
    assert max(n_tags) == 6
    # a tag that describes the whole target survives every cut but the empty prompt
    kept = drop(prompts, 0.1, gen(), 0.3, 0.4, keep=["monochrome"])
    assert all(p == "" or "monochrome" in p for p in kept)
    assert {p for p in kept if len(parse_prompt(p)) == 1} == {"monochrome"}
    assert any(p.endswith("monochrome") and len(parse_prompt(p)) == 2 for p in kept)
    # kept tags match as the encoder reads them: a spaced spelling in the data is kept too
    spaced = drop(["1girl, solo, hatsune miku, aqua_hair"] * 200, 0.0, gen(), 0.5, 0.5, keep=["hatsune_miku"])
    assert all("hatsune miku" in p for p in spaced) and "hatsune miku" in spaced


def test_colour_prompts_and_paraphrases_are_seeded_and_keep_monochrome():
    from textcolor.paraphrase import load_paraphrases
    from textcolor.tags import parse_prompt, tag_text
    table = load_paraphrases()
    prompts = ["1girl, solo, red_hair, blue_eyes, long_hair, hat", "1girl, solo, long_hair, monochrome"] * 200
    gen = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    only = drop(prompts, 0.0, gen(), color_p=1.0, paraphrases=table, keep=["monochrome"])
    assert set(only[0::2]) == {"red_hair, blue_eyes"}           # the colour tags alone
    assert set(only[1::2]) == {prompts[1]}                      # no colour tag: left as it was
    worded = drop(prompts, 0.0, gen(), paraphrase_p=1.0, paraphrases=table)
    assert worded == drop(prompts, 0.0, gen(), paraphrase_p=1.0, paraphrases=table)
    firsts = [parse_prompt(p)[2][0] for p in worded[0::2]]
    assert len(set(firsts)) > 8 and all(tag_text(f) != "red hair" or f in ("red_hair", "red hair") for f in firsts)
    assert set(firsts) <= {"red_hair", "red hair", *table["red_hair"]}
    assert all(parse_prompt(p)[:2] == [("1girl", 1.0), ("solo", 1.0)] for p in worded)
    # without the new options the stream of draws is the old one (older runs resume exactly)
    assert drop(prompts, 0.1, gen(), 0.3, 0.4) == drop(prompts, 0.1, gen(), 0.3, 0.4, color_p=0.0)
