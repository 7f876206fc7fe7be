"""Not textcolor's code (that is textcolor/textcolor/): a bridge for one situation.

Python reads this file only when it runs in the folder that *holds* a clone named `textcolor`
(`python -m textcolor.synth` one level too high): the clone then shadows the package, and without
this file every command fails with "cannot import name ... from 'textcolor' (unknown location)".
Here the clone's package takes over: its submodules are found and its __init__ runs as usual.
"""
from pathlib import Path as _Path

__path__ = [str(_Path(__file__).resolve().parent / "textcolor")]
__file__ = str(_Path(__path__[0]) / "__init__.py")
with open(__file__, encoding="utf-8") as _f:
    exec(compile(_f.read(), __file__, "exec"))
