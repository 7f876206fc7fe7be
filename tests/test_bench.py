"""The benchmark runs end to end on a tiny config and writes the documented JSON (no timing checks)."""
import json
import math

import pytest

from textcolor import bench

pytestmark = pytest.mark.slow  # the benchmark, end to end

TINY = ["data.size=32", "gen.base=8", "gen.depth=2", "gen.max_ch=16", "disc.base=8", "disc.layers=2",
        "train.batch_size=2", "data.synth_n=64"]


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    rc = bench.main(["--quick", "--device", "cpu", "--json", str(out), "--infer-size", "64",
                     "--infer-sizes", "32,64", "--cache-images", "8", "--train-budget", "2",
                     "--config-overrides", *TINY])
    data = json.loads(out.read_text())
    return rc, data


def _leaves(d, prefix=""):
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            yield from _leaves(v, key + ".")
        elif isinstance(v, list):
            for i, x in enumerate(v):
                yield f"{key}[{i}]", x
        else:
            yield key, v


def test_runs_without_errors(result):
    rc, data = result
    assert data.get("errors") is None, data.get("errors")
    assert rc == 0


def test_required_keys_are_finite_and_positive(result):
    _, data = result
    for key in bench.REQUIRED_KEYS:
        value = bench._get(data, key)
        assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{key}: {value!r}"
        assert math.isfinite(value) and value > 0, f"{key} = {value}"


def test_every_number_is_finite_and_not_negative(result):
    _, data = result
    numbers = [(k, v) for k, v in _leaves(data) if isinstance(v, (int, float)) and not isinstance(v, bool)]
    assert len(numbers) > 60
    for key, value in numbers:
        assert math.isfinite(value) and value >= 0, f"{key} = {value}"


def test_schema_sections(result):
    _, data = result
    for name in ("base", "demo"):
        t = data["train"][name]
        assert {"g_forward_s", "d_main_s", "g_main_s", "sum_s", "sum_over_step"} <= set(t["phases"])
        assert {"convolution", "convolution_backward"} <= set(t["flops_by_op"])
        assert t["flops_per_step"] == pytest.approx(t["flops_per_image"] * t["batch_size"])
    assert "penalty_s" in data["train"]["base"]["phases"]                     # base penalises every step
    p = data["penalty"]
    assert {"step_s_none", "step_s_every", "step_s_lazy_amortised", "lazy_every", "rounds"} <= set(p)
    assert p["lazy_with_penalty_is_main_step"] is True                      # base.yaml: zero_mixed, every step
    assert len(data["train"]["base"]["step_s_all"]) == data["train"]["base"]["steps_timed"] == p["rounds"]
    assert {"other_processes_cpu_share", "own_cpu_share"} <= set(data["meta"]["contention"])
    assert isinstance(data["meta"]["keep_freed_memory"], bool)
    assert data["infer"]["cold_start_unseen_s"] > 0 and data["infer"]["unseen_cached_s"] > 0
    assert set(data["infer"]["sizes"]) == {"32", "64"}
    assert data["infer"]["growth"]["pixel_ratio"] == pytest.approx(4.0)
    assert set(data["memory"]["infer_peak_mb"]) == {"32", "64"}
    assert data["data"]["loader_workers"] == 2 and data["data"]["cache_images"] == 8
    assert set(data["targets"]) == set(bench.TARGETS)
    for t in data["targets"].values():
        assert isinstance(t["pass"], bool) and t["op"] in (">=", "<=")
    assert data["meta"]["overrides"] == TINY


def test_phases_cover_the_whole_step(result):
    # FLOP counts are deterministic: the phase hook wraps every convolution/matmul of the step
    _, data = result
    for name in ("base", "demo"):
        assert data["train"][name]["phase_flops_sum_over_step"] == pytest.approx(1.0, rel=1e-9)


def test_table_lists_the_headline_numbers(result):
    _, data = result
    table = bench.format_table(data)
    for label in ("train base MFU", "penalty lazy/16 / none", "cache DataLoader", "cold infer.py, known tag",
                  "train base peak RSS"):
        assert label in table


def test_check_targets_uses_pixel_ratio_for_growth():
    res = {"train": {"base": {"mfu": 0.5}}, "infer": {"growth": {"pixel_ratio": 16.0, "time_ratio": 12.0,
                                                                   "memory_ratio": 20.0}}}
    t = bench.check_targets(res)
    assert t["train_base_mfu"]["pass"] is False
    assert t["infer_time_growth"] == {"key": "infer.growth.time_ratio", "value": 12.0, "op": "<=",
                                      "target": 16.0, "pass": True}
    assert t["infer_memory_growth"]["pass"] is False
    assert "penalty_lazy_overhead" not in t            # not measured: no verdict


def test_bad_override_is_refused_before_measuring(tmp_path, capsys):
    out = tmp_path / "b.json"
    assert bench.main(["--json", str(out), "--config-overrides", "gen.nope=1"]) == 2
    assert "unknown config key" in capsys.readouterr().err
    assert not out.exists()


def test_g_flops_counts_what_the_stem_saves(capsys):
    """The unshuffle stem runs the ResBlock levels at size/4: at the same input size it costs far
    less than the same U-Net at full resolution, and about what that U-Net does at size/4."""
    from textcolor.config import load_config
    small = ["gen.base=16", "gen.max_ch=32", "tags.k=4"]
    full = bench.generator_flops(load_config("configs/demo.yaml", small + ["data.size=128"]))
    folded = bench.generator_flops(load_config("configs/demo.yaml", small + ["data.size=128", "gen.stem=unshuffle"]))
    quarter = bench.generator_flops(load_config("configs/demo.yaml", small + ["data.size=32"]))
    assert folded < full / 4 and 0.8 * quarter < folded < 3 * quarter
    assert bench.main(["--g-flops", "configs/demo.yaml", "--config-overrides", *small, "data.size=32"]) == 0
    assert "GFLOP/image" in capsys.readouterr().out


def test_recipe_step_times_the_phases_of_a_step_with_masks_and_swaps(capsys):
    """--recipe-step runs the config's own step (region terms, prompt swaps) for both stem forms."""
    from textcolor.config import load_config
    tiny = ["data.synth_n=4", "data.size=64", "train.batch_size=2", "gen.base=16", "gen.max_ch=16"]
    cfg = load_config("configs/v4_stage2.yaml", tiny)
    times = bench.recipe_step_seconds(cfg, steps=1, warmup=0)
    assert {"step", "g_forward", "d_main", "d_update", "g_main"} <= times.keys()
    assert sum(v for k, v in times.items() if k != "step") <= times["step"]
    assert bench.main(["--recipe-step", "configs/v4_stage2.yaml", "--steps", "1",
                       "--config-overrides", *tiny]) == 0
    out = capsys.readouterr().out
    assert "stem as per-sample bias: step" in out and "stem on the tiled input: step" in out
    assert bench.main(["--recipe-step", "configs/v4_stage2.yaml", "--config-overrides", "gen.nope=1"]) == 2
