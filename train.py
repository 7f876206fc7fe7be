"""Train the tag-conditioned colorizer.

    python train.py --config configs/demo.yaml --out runs/demo
    python train.py --config configs/base.yaml train.steps=500 data.size=128
    python train.py --out runs/demo --resume                     # continue exactly where it stopped
    torchrun --nproc_per_node 2 train.py --config configs/demo.yaml --out runs/ddp
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, help="YAML config (default: the run's config.yaml when resuming)")
    p.add_argument("--out", type=Path, help="run directory (default: runs/<name>)")
    p.add_argument("--resume", action="store_true", help="continue from the run directory's last checkpoint")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="dotted config overrides")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from textcolor.threads import quiet_openmp
    quiet_openmp()  # before torch is imported: idle OpenMP threads sleep instead of spinning
    from textcolor.checkpoint import CheckpointError
    from textcolor.config import ConfigError, load_config, to_yaml
    from textcolor.data import DatasetError
    from textcolor.distributed import DeviceError
    from textcolor.memory import keep_freed_memory
    from textcolor.projector import export_run
    from textcolor.tags import EncoderUnavailable
    from textcolor.training import TrainingError, train
    try:
        config_path = args.config
        if config_path is None and args.resume and args.out and (args.out / "config.yaml").exists():
            config_path = args.out / "config.yaml"
        if config_path is None:
            raise ConfigError("--config is required (or --resume with an --out that holds config.yaml)")
        cfg = load_config(config_path, args.overrides)
        if args.dry_run:
            print(to_yaml(cfg), end="")
            return 0
        out = args.out or Path("runs") / cfg.name
        keep_freed_memory()
        result = train(cfg, out, resume=args.resume)
        if result.generator is not None:  # the main process: the run's tag vectors in TensorBoard's projector
            export_run(result.generator, result.encoder, out, result.step)
    except (ConfigError, CheckpointError, TrainingError, DatasetError, DeviceError, EncoderUnavailable) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as e:  # e.g. --out under a regular file, a read-only or full disk
        print(f"error: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return 2
    if result.stopped_by_signal:
        return 0
    print(f"done: step {result.step}, checkpoint {result.checkpoint}, "
          f"logs: tensorboard --logdir {out} --samples_per_plugin images=1000")
    return 0


if __name__ == "__main__":
    sys.exit(main())
