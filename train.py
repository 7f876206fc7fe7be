"""Train the tag-conditioned colorizer (the same command as `textcolor-train`).

    python train.py --config configs/demo.yaml --out runs/demo
    python train.py --config configs/base.yaml train.steps=500 data.size=128
    python train.py --out runs/demo --resume                     # continue exactly where it stopped
    torchrun --nproc_per_node 2 train.py --config configs/demo.yaml --out runs/ddp
"""
import sys

from textcolor.cli import train_main as main

if __name__ == "__main__":
    sys.exit(main())
