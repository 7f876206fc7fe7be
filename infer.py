"""Colour sketches from tags (the same command as `textcolor-infer`; the code is textcolor/infer.py).

    python infer.py --sketch s.png --tags "hatsune_miku"                   # -> s.colored.png
    python infer.py --sketch drawings/ --tags "red_hair, blue_eyes" --out coloured/
"""
import sys

from textcolor.infer import *  # noqa: F401,F403  (tests and scripts use infer.plan_outputs etc.)
from textcolor.infer import main

if __name__ == "__main__":
    sys.exit(main())
