"""What every command line shares: the parser (with --version) and the one-line error contract.

    p = cli.parser("textcolor-evaluate", __doc__)
    args = p.parse_args(argv)                       # checked before torch is imported
    return cli.run(lambda: _evaluate(args))         # expected errors -> "error: ..." + exit 2

This module imports nothing heavy: a wrong argument or `--help` answers in a fraction of a second,
before a CLI imports torch. The train CLI lives here too (`textcolor-train`, `train.py`).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

from textcolor import __version__


class UsageError(Exception):
    """Bad input found after parsing: one line for the user, exit code 2."""


# Errors that are the user's to fix, by module. Looked up in sys.modules when an exception arrives,
# so checking for them imports nothing: an error class whose module was never imported cannot
# have been raised.
EXPECTED_ERRORS: dict[str, tuple[str, ...]] = {
    "textcolor.config": ("ConfigError",),
    "textcolor.checkpoint": ("CheckpointError",),
    "textcolor.data": ("DatasetError",),
    "textcolor.training": ("TrainingError",),
    "textcolor.distributed": ("DeviceError",),
    "textcolor.imageio": ("BadImageError", "OutputError"),
    "textcolor.tags": ("EncoderUnavailable",),
}


def version_string(prog: str | None = None) -> str:
    return f"{prog or 'textcolor'} (textcolor {__version__})"


def parser(prog: str | None = None, doc: str | None = None, **kwargs) -> argparse.ArgumentParser:
    """argparse with the module docstring as help text and `--version`."""
    p = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter,
                                **kwargs)
    p.add_argument("--version", action="version", version=version_string(p.prog))
    return p


def is_expected(e: BaseException) -> bool:
    if isinstance(e, UsageError):
        return True
    for module, names in EXPECTED_ERRORS.items():
        mod = sys.modules.get(module)
        if mod is not None and isinstance(e, tuple(getattr(mod, n) for n in names if hasattr(mod, n))):
            return True
    return False


def os_error_line(e: OSError) -> str:
    """The file that failed and why: `error: tags/characters.csv: No such file or directory`."""
    where = f"{e.filename}: " if e.filename else ""
    return f"error: {where}{e.strerror or e}"


def run(body: Callable[[], int], extra: tuple[type[BaseException], ...] = (), out_of_memory: str = "") -> int:
    """body() -> its exit code; expected errors (and `extra`) -> one line on stderr, exit 2.
    With `out_of_memory` (the line to print), a MemoryError is expected too."""
    try:
        return body()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        if not out_of_memory:
            raise
        print(f"error: {out_of_memory}", file=sys.stderr)
        return 2
    except OSError as e:  # a missing input, --out under a regular file, a read-only or full disk
        if is_expected(e):
            print(f"error: {e}", file=sys.stderr)
        else:
            print(os_error_line(e), file=sys.stderr)
        return 2
    except Exception as e:
        if not (is_expected(e) or isinstance(e, extra)):
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2


# --- textcolor-train (train.py) ---------------------------------------------------------------

TRAIN_DOC = """Train the tag-conditioned colorizer.

    python train.py --config configs/demo.yaml --out runs/demo           # or: textcolor-train ...
    python train.py --config configs/base.yaml train.steps=500 data.size=128
    python train.py --out runs/demo --resume                     # continue exactly where it stopped
    torchrun --nproc_per_node 2 train.py --config configs/demo.yaml --out runs/ddp
"""


def train_parser() -> argparse.ArgumentParser:
    p = parser("textcolor-train", TRAIN_DOC)
    p.add_argument("--config", type=Path, help="YAML config (default: the run's config.yaml when resuming)")
    p.add_argument("--out", type=Path, help="run directory (default: runs/<name>)")
    p.add_argument("--resume", action="store_true", help="continue from the run directory's last checkpoint")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="dotted config overrides")
    return p


def train_main(argv: list[str] | None = None) -> int:
    args = train_parser().parse_args(argv)
    return run(lambda: _train(args))


def _train(args: argparse.Namespace) -> int:
    # the config is read and validated (omegaconf only) before torch is imported
    from textcolor.config import ConfigError, load_config, to_yaml
    config_path = args.config
    if config_path is None and args.resume and args.out and (args.out / "config.yaml").exists():
        config_path = args.out / "config.yaml"
    if config_path is None:
        raise ConfigError("--config is required (or --resume with an --out that holds config.yaml)")
    cfg = load_config(config_path, args.overrides)
    if args.dry_run:
        print(to_yaml(cfg), end="")
        return 0
    from textcolor.threads import quiet_openmp
    quiet_openmp()  # before torch is imported: idle OpenMP threads sleep instead of spinning
    from textcolor.memory import keep_freed_memory
    from textcolor.projector import export_run
    from textcolor.training import train
    out = args.out or Path("runs") / cfg.name
    keep_freed_memory()
    result = train(cfg, out, resume=args.resume)
    if result.generator is not None:  # the main process: the run's tag vectors in TensorBoard's projector
        export_run(result.generator, result.encoder, out, result.step)
    if result.stopped_by_signal:
        return 0
    print(f"done: step {result.step}, checkpoint {result.checkpoint}, "
          f"{result.train_seconds / 60:.1f} min of training wall time (resumed chunks included), "
          f"logs: tensorboard --logdir {out} --samples_per_plugin images=1000")
    return 0
