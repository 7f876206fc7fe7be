"""A read that fails says one line: the library warnings on the way to the failure are dropped."""
import pickle
import warnings

import pytest

from textcolor.checkpoint import CheckpointError, load_checkpoint
from textcolor.deferredwarnings import shown_if_it_succeeds
from textcolor.imageio import BadImageError, open_rgb


def _warn_then(fail: bool) -> None:
    with shown_if_it_succeeds():
        warnings.warn("on the way", UserWarning)
        if fail:
            raise ValueError("the cause")


def _warnings_of_a_failing_read(read, error, match: str) -> list:
    """The warnings shown while `read()` raises `error` (matching `match`)."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(error, match=match):
            read()
    return seen


def test_warnings_are_shown_when_the_read_succeeds():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        _warn_then(fail=False)
    assert [str(w.message) for w in seen] == ["on the way"]
    assert seen[0].category is UserWarning and seen[0].filename == __file__


def test_warnings_are_dropped_when_the_read_fails():
    assert _warnings_of_a_failing_read(lambda: _warn_then(fail=True), ValueError, "the cause") == []


def test_an_error_filter_still_raises():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UserWarning, match="on the way"):
            _warn_then(fail=False)


def test_corrupt_tiff_gives_the_error_alone(tmp_path):
    path = tmp_path / "img.tif"
    path.write_bytes(b"II*\x00\x08\x00\x00\x00")  # a TIFF header whose first directory is cut off
    assert _warnings_of_a_failing_read(lambda: open_rgb(path), BadImageError, "not an image") == []


class _Calls:
    def __reduce__(self):
        return (print, ("never",))


def test_protocol_5_pickle_gives_the_refusal_alone(tmp_path):
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps(_Calls(), protocol=5))
    assert _warnings_of_a_failing_read(lambda: load_checkpoint(path), CheckpointError, "refused to load") == []


def test_tiff_whose_header_warns_and_then_fails_to_decode_gives_the_error_alone(tmp_path):
    # found by tests/test_faults_fuzz.py: the header opens with "Corrupt EXIF data", the strip is missing
    path = tmp_path / "img.png"
    path.write_bytes(b"II*\x00\x08\x00\x00\x00\n\x00\x00\x01\x04\x00\x01\x00\x00\x00!\x00\x00\x00\x01\x01\x04"
                     b"\x00\x01\x00\x00\x00\x14\x00\x00\x00\x02\x01\x03\x00\x01\x00\x00\x00 \x00\x00\x00\x03"
                     b"\x01\x03\x00\x01\x00\x00\x00\x01\x00\x00\x00\x06\x01\x03\x00\x01\x00\x00\x00\x01\x00"
                     b"\x00\x00\x11\x01\x04\x00\x01\x00\x00\x00\x86\x00\x00\x00")
    assert _warnings_of_a_failing_read(lambda: open_rgb(path), BadImageError, "truncated or corrupt") == []
