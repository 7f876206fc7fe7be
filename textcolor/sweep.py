"""Run every ablation config into one TensorBoard tree, at a short budget.

    python -m textcolor.sweep --out runs/sweep train.steps=600
    tensorboard --logdir runs/sweep        # Scalars, Images (tag_ablation) and HParams side by side
"""
from __future__ import annotations

import sys
from pathlib import Path

from textcolor import cli
from textcolor.checkpoint import CheckpointError
from textcolor.config import BUNDLED_CONFIGS, ConfigError, load_config
from textcolor.data import DatasetError
from textcolor.distributed import DeviceError
from textcolor.projector import export_run
from textcolor.training import TrainingError, train


def main(argv: list[str] | None = None) -> int:
    p = cli.parser("textcolor-sweep", __doc__)
    p.add_argument("--configs", nargs="+", type=Path,
                   default=sorted((BUNDLED_CONFIGS / "ablations").glob("*.yaml")))
    p.add_argument("--out", type=Path, default=Path("runs/sweep"))
    p.add_argument("overrides", nargs="*", metavar="key=value", help="applied to every run, e.g. train.steps=600")
    args = p.parse_args(argv)
    if not args.configs:
        print("error: no configs to run: pass --configs", file=sys.stderr)
        return 2
    try:  # validate every config before spending minutes on the first run
        cfgs = [(path.stem, load_config(path, args.overrides)) for path in args.configs]
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    failed = []
    for i, (name, cfg) in enumerate(cfgs, 1):
        print(f"[{i}/{len(cfgs)}] {name}", flush=True)
        run_dir = args.out / name
        try:
            result = train(cfg, run_dir, resume=(run_dir / "checkpoints").exists())
            if result.generator is not None:
                export_run(result.generator, result.encoder, run_dir, result.step)
        except (CheckpointError, TrainingError, DatasetError, DeviceError) as e:
            print(f"error in {name}: {e}", file=sys.stderr)
            failed.append(name)
    print(f"sweep done: {len(cfgs) - len(failed)} runs in {args.out}" + (f", failed: {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
