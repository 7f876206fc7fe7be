"""The machine's fp32 peak, the denominator of MFU: the best of measured kernels, and the FMA bound.

    python -m textcolor.peak            # prints the measured and theoretical peaks (~20 s on 2 cores)

One square matmul is not the ceiling: on a 2-core AMD EPYC, n = 4096 reached 203 GFLOP/s while
training ran its convolutions at 382 GFLOP/s, so MFU came out at 1.88. Here the peak is the best of
  * GEMMs of several shapes (square, and the tall-skinny ones an im2col convolution makes),
  * the conv2d forwards a generator of the config actually runs (FLOPs from torch's FlopCounterMode),
each at 1 thread and at every usable core, and, where /proc/cpuinfo names the vector width and the
clock, the theoretical FMA peak: cores × clock × lanes × 2 (multiply + add) × 2 FMA pipes. That
bound assumes two full-width FMA pipes (Zen 4 runs AVX-512 at half width, so it halves there) and
the clock /proc/cpuinfo reports (a boost clock can pass it).
"""
from __future__ import annotations

import time
from pathlib import Path

import torch

from textcolor.threads import usable_cores

GEMM_SHAPES = ((512, 512, 512), (1024, 1024, 1024), (2048, 2048, 2048),   # (M, K, N)
               (16384, 576, 64), (4096, 1152, 128), (1024, 1152, 256))
QUICK_GEMM_SHAPES = ((1024, 1024, 1024), (4096, 1152, 128))


def cpu_info(path: str = "/proc/cpuinfo") -> dict:
    """Model, clock (MHz), SIMD flags and physical cores from /proc/cpuinfo ({} where unreadable)."""
    try:
        text = Path(path).read_text()
    except OSError:
        return {}
    first = text.split("\n\n", 1)[0]
    fields = dict((k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in first.splitlines()))
    mhz = [float(line.split(":")[1]) for line in text.splitlines() if line.startswith("cpu MHz")]
    flags = set(fields.get("flags", "").split())
    logical = usable_cores()
    siblings, cores = int(fields.get("siblings", 0) or 0), int(fields.get("cpu cores", 0) or 0)
    smt = siblings // cores if siblings and cores and siblings >= cores else 1
    return {"model": fields.get("model name", "?"), "mhz": max(mhz) if mhz else None,
            "simd": next((f for f in ("avx512f", "avx2", "sse2") if f in flags), None),
            "fma": "fma" in flags or "avx512f" in flags, "logical_cpus": logical,
            "bf16": bool({"avx512_bf16", "amx_bf16"} & flags),   # bf16 matrix units (else emulated)
            "physical_cores": max(1, logical // smt)}


def theoretical_gflops(info: dict) -> float | None:
    """cores × GHz × fp32 lanes × 2 (FMA) × 2 pipes; None without a clock or FMA."""
    lanes = {"avx512f": 16, "avx2": 8}.get(info.get("simd") or "")
    if not lanes or not info.get("fma") or not info.get("mhz"):
        return None
    return info["physical_cores"] * info["mhz"] / 1e3 * lanes * 2 * 2


def _best_rate(fn, flops: float, reps: int) -> float:
    fn()                                                   # warm-up: oneDNN picks and caches its kernel
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return flops / best / 1e9


def conv_shapes(cfg, embed_dim: int = 384) -> list[tuple]:
    """(input shape, Conv2d) of every distinct conv2d a generator of `cfg` runs at its batch size."""
    from textcolor.models import build_models
    G, _ = build_models(cfg, embed_dim)
    seen: dict[tuple, tuple] = {}

    def hook(mod, args, _out):
        x = args[0]
        key = (tuple(x.shape), mod.in_channels, mod.out_channels, mod.kernel_size, mod.stride, mod.groups)
        seen.setdefault(key, (tuple(x.shape), mod))
    hooks = [mod.register_forward_hook(hook) for mod in G.modules() if isinstance(mod, torch.nn.Conv2d)]
    b, s = cfg.train.batch_size, cfg.data.size
    with torch.no_grad():
        G(torch.zeros(b, 3, s, s), torch.zeros(b, embed_dim))
    for h in hooks:
        h.remove()
    return list(seen.values())


def measured_gflops(cfg=None, quick: bool = False, threads: tuple[int, ...] | None = None) -> dict:
    """Best fp32 GFLOP/s over GEMM shapes and the config's conv2d forwards, at each thread count."""
    from torch.utils.flop_counter import FlopCounterMode
    old = torch.get_num_threads()
    threads = threads or tuple(sorted({1, usable_cores()}))
    reps = 2 if quick else 4
    out: dict = {"gemm": {}, "conv": {}}
    convs = conv_shapes(cfg) if cfg is not None else []
    convs = sorted(convs, key=lambda c: -c[1].weight.numel() * c[0][2] * c[0][3])[: 3 if quick else 8]
    try:
        for t in threads:
            torch.set_num_threads(t)
            best_t = 0.0
            for m, k, n in (QUICK_GEMM_SHAPES if quick else GEMM_SHAPES):
                a, b = torch.randn(m, k), torch.randn(k, n)
                rate = _best_rate(lambda: a @ b, 2 * m * k * n, reps)
                best_t = max(best_t, rate)
                key = f"{m}x{k}x{n}"
                out["gemm"][key] = max(out["gemm"].get(key, 0.0), rate)
            for shape, conv in convs:
                x = torch.randn(shape)
                with torch.no_grad(), FlopCounterMode(display=False) as fc:
                    conv(x)
                flops = fc.get_total_flops()
                with torch.no_grad():
                    rate = _best_rate(lambda: conv(x), flops, reps)
                best_t = max(best_t, rate)
                key = f"{list(shape)} k{conv.kernel_size[0]} -> {conv.out_channels}"
                out["conv"][key] = max(out["conv"].get(key, 0.0), rate)
            out.setdefault("by_threads", {})[t] = best_t
    finally:
        torch.set_num_threads(old)
    everything = {f"{kind} {k}": v for kind in ("gemm", "conv") for k, v in out[kind].items()}
    out["best_kernel"] = max(everything, key=everything.get)
    out["best_gflops"] = everything[out["best_kernel"]]
    out["gemm_best_gflops"] = max(out["gemm"].values())
    if out["conv"]:
        out["conv_best_gflops"] = max(out["conv"].values())
    return out


def main() -> None:
    from textcolor.config import load_config
    from textcolor.threads import other_load
    info = cpu_info()
    print(f"cpu: {info.get('model')}, {info.get('physical_cores')} cores, {info.get('mhz')} MHz, "
          f"{info.get('simd')}{' + FMA' if info.get('fma') else ''}; other runnable load {other_load():g}")
    theory = theoretical_gflops(info)
    print(f"theoretical fp32 FMA peak: {theory:.1f} GFLOP/s" if theory else "theoretical peak: unknown")
    m = measured_gflops(load_config("base", []))   # the bundled configs/base.yaml
    for kind in ("gemm", "conv"):
        for k, v in m[kind].items():
            print(f"  {kind} {k:40s} {v:8.1f} GFLOP/s")
    print(f"measured peak: {m['best_gflops']:.1f} GFLOP/s ({m['best_kernel']}); by threads {m['by_threads']}")


if __name__ == "__main__":
    main()
