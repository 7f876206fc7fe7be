"""textcolor/peak.py: the MFU denominator is the best of measured kernels, beside the FMA bound."""
from textcolor import bench
from textcolor.config import load_config
from textcolor.peak import conv_shapes, cpu_info, measured_gflops, theoretical_gflops

CPUINFO = """processor	: 0
model name	: AMD EPYC
cpu MHz		: 2500.000
siblings	: 2
cpu cores	: 2
flags		: fpu sse2 avx fma avx2 {extra}

processor	: 1
model name	: AMD EPYC
cpu MHz		: 2500.000
"""
TINY = ["data.size=32", "gen.base=8", "gen.depth=2", "gen.max_ch=16", "train.batch_size=2"]


def test_theoretical_peak_is_cores_clock_lanes_fma_pipes(tmp_path, monkeypatch):
    monkeypatch.setattr("textcolor.peak.usable_cores", lambda: 2)
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO.format(extra=""))
    info = cpu_info(str(path))
    assert info["simd"] == "avx2" and info["fma"] and info["physical_cores"] == 2 and info["mhz"] == 2500
    assert theoretical_gflops(info) == 2 * 2.5 * 8 * 2 * 2                      # 160 GFLOP/s
    path.write_text(CPUINFO.format(extra="avx512f"))
    assert theoretical_gflops(cpu_info(str(path))) == 320
    assert theoretical_gflops({}) is None and cpu_info(str(tmp_path / "missing")) == {}


def test_measured_peak_is_the_best_kernel_and_covers_the_configs_convolutions():
    cfg = load_config("configs/demo.yaml", TINY)
    shapes = conv_shapes(cfg)
    assert shapes and all(shape[0] == 2 for shape, _conv in shapes)          # the batch size
    m = measured_gflops(cfg, quick=True, threads=(1,))
    assert m["conv"] and m["gemm"]
    assert m["best_gflops"] == max(*m["gemm"].values(), *m["conv"].values()) > 0
    assert m["best_kernel"].split(" ", 1)[0] in ("gemm", "conv")


def test_no_pass_for_an_mfu_above_1_or_a_contended_run():
    res = {"train": {"base": {"mfu": 1.9}}, "meta": {"contention": {"other_processes_cpu_share": 0.0,
                                                                    "other_runnable": [0, 0]}}}
    t = bench.check_targets(res)["train_base_mfu"]
    assert t["pass"] is False and "MFU 1.90 > 1" in t["unverified"]
    res["train"]["base"]["mfu"] = 0.8
    assert bench.check_targets(res)["train_base_mfu"]["pass"] is True
    res["meta"]["contention"]["other_runnable"] = [0, 2]
    t = bench.check_targets(res)["train_base_mfu"]
    assert t["pass"] is False and "other runnable tasks 2" in t["unverified"]
    res["meta"]["contention"].update(other_runnable=[0], other_processes_cpu_share=0.3)
    t = bench.check_targets(res)["train_base_mfu"]
    assert t["pass"] is False and "30%" in t["unverified"]
    table = bench.format_table({**res, "targets": bench.check_targets(res)})
    assert "UNVERIFIED" in table and "PASS" not in table
