"""Warnings from a read that may fail: shown if it succeeds, dropped if it raises.

A damaged file makes PIL or torch warn on the way to giving up (PIL: "Corrupt EXIF data" before the
TIFF reader refuses the file; torch: "Detected pickle protocol 5" before the weights-only unpickler
refuses it). The one-line error that follows names the real cause; the warnings printed above it
would only bury that line. When the read succeeds, the warnings are real news and are shown.
"""
from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def shown_if_it_succeeds() -> Iterator[None]:
    # record=True keeps the filters in force (an "ignore" or an "error" filter still applies)
    with warnings.catch_warnings(record=True) as caught:
        yield
    # reached only without an exception
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
