"""Image reading that turns every kind of bad input into one readable line, and atomic PNG writing.

Scraped data is messy: zero-byte downloads, HTML error pages saved as .jpg, truncated transfers,
palette images with transparency, 16-bit PNGs, rotated phone photos, decompression bombs.
`open_rgb` turns each of them into either an RGB image or a `BadImageError` whose message is
"path: what is wrong" and whose `reason` is a short category for counting.
"""
from __future__ import annotations

import os
import stat
import uuid
import warnings
from contextlib import suppress
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from textcolor.deferredwarnings import shown_if_it_succeeds

# 64 MP is ~8000×8000: larger than any real illustration, small enough to decode in ~200 MB.
MAX_PIXELS = 64_000_000

# Modes holding 16-bit (or wider) integers; PIL's own convert("RGB") clips them at 255.
_WIDE_INT_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N")


IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
# Files other tools write beside the images (synth masks, sketch CLI output) are not training images.
DERIVED_SUFFIXES = frozenset({".mask", ".sketch"})
# our own outputs beside inputs (infer.py) are not inputs either
OUTPUT_MARKERS = (".colored",)


def is_image_name(name: str) -> bool:
    stem, ext = os.path.splitext(name)
    # hidden files include macOS's `._x.jpg` resource forks, which are not images
    return (not name.startswith(".") and ext.lower() in IMAGE_EXTS
            and os.path.splitext(stem)[1].lower() not in DERIVED_SUFFIXES
            and not any(m in name for m in OUTPUT_MARKERS))


class BadImageError(ValueError):
    """An input that cannot be used as an image. str(e) is one line for the user; `reason` is a
    short category ("empty", "not an image", "too large", "corrupt", ...) for counting skips."""

    def __init__(self, message: str, reason: str = "corrupt"):
        super().__init__(message)
        self.reason = reason


class OutputError(OSError):
    """A file that cannot be written; str(e) is one line for the user."""


def _check_size(size: tuple[int, int], name: str, max_pixels: int) -> None:
    w, h = size
    if w * h == 0:
        raise BadImageError(f"{name}: zero-size image ({w}x{h})", "zero size")
    if w * h > max_pixels:
        raise BadImageError(f"{name}: {w}x{h} exceeds the {max_pixels / 1e6:g}-megapixel limit", "too large")


def _open_header(path: Path, max_pixels: int) -> Image.Image:
    """Open lazily (header only) and refuse empty, non-image and oversized files before decoding."""
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            # a FIFO would block Image.open forever, a device would be read without end
            raise BadImageError(f"{path}: not a regular file", "not a regular file")
        if st.st_size == 0:
            raise BadImageError(f"{path}: empty file", "empty")
    except FileNotFoundError:
        raise BadImageError(f"{path}: no such file", "missing") from None
    except OSError as e:
        raise BadImageError(f"{path}: cannot read ({e.strerror or e})", "unreadable") from None
    with warnings.catch_warnings():
        # PIL warns above its own limit; ours is checked right below, with a clearer message.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            img = Image.open(path)
        except UnidentifiedImageError:
            raise BadImageError(f"{path}: not an image", "not an image") from None
        except Image.DecompressionBombError:
            raise BadImageError(f"{path}: exceeds PIL's decompression-bomb limit", "too large") from None
        except OSError as e:
            raise BadImageError(f"{path}: cannot read ({e.strerror or e})", "unreadable") from None
        except Exception:  # malformed headers surface as SyntaxError, struct.error, ValueError ...
            raise BadImageError(f"{path}: truncated or corrupt image", "corrupt") from None
    try:
        _check_size(img.size, str(path), max_pixels)
    except BadImageError:
        img.close()
        raise
    return img


def probe(path: str | Path, max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """(width, height) from the file header, without decoding pixels; BadImageError if unusable."""
    with shown_if_it_succeeds(), _open_header(Path(path), max_pixels) as img:
        return img.size


def _from_array(a: np.ndarray) -> Image.Image:
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if not (a.ndim == 2 or a.ndim == 3 and a.shape[2] in (3, 4)):
        raise BadImageError(f"array of shape {a.shape} is not an image (HxW, HxWx1, HxWx3 or HxWx4)",
                            "not an image")
    if a.size == 0:
        raise BadImageError(f"array: zero-size image {a.shape}", "zero size")
    if a.dtype == np.uint16:
        a = (a / 257.0 + 0.5).astype(np.uint8)
    elif np.issubdtype(a.dtype, np.floating) or a.dtype == np.bool_:
        a = (np.clip(np.nan_to_num(a.astype(np.float32)), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    elif a.dtype != np.uint8:
        raise BadImageError(f"array of dtype {a.dtype} is not an image (uint8, uint16 or float in [0, 1])",
                            "not an image")
    return Image.fromarray(np.ascontiguousarray(a))


def _scaled_to_l(img: Image.Image) -> Image.Image:
    """16-bit / 32-bit integer → 8 bits by scaling 65535 to 255; float → [0, 1] scaled to 255."""
    a = np.asarray(img)
    if img.mode == "F":
        a = np.clip(np.nan_to_num(a), 0.0, 1.0) * 255.0
    else:
        a = np.clip(a.astype(np.float64), 0, 65535) / 257.0
    return Image.fromarray((a + 0.5).astype(np.uint8))


def _to_rgb(img: Image.Image, name: str) -> Image.Image:
    if img.mode in _WIDE_INT_MODES or img.mode == "F":
        img = _scaled_to_l(img)
    if img.mode == "La":  # premultiplied; PIL only converts it to LA
        img = img.convert("LA")
    # Palette, L and RGB images may carry a transparent colour key in info["transparency"].
    if "A" in img.getbands() or "a" in img.getbands() or "transparency" in img.info:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    try:
        return img.convert("RGB")
    except ValueError:
        raise BadImageError(f"{name}: unsupported colour mode {img.mode}", "unsupported") from None


def _decoded_rgb(img: Image.Image, name: str, max_pixels: int) -> Image.Image:
    _check_size(img.size, name, max_pixels)
    try:
        img.load()
        img = ImageOps.exif_transpose(img)
        return _to_rgb(img, name)
    except BadImageError:
        raise
    except Exception:  # PIL decoders fail with OSError, SyntaxError, EOFError, ValueError, zlib.error ...
        raise BadImageError(f"{name}: truncated or corrupt image", "corrupt") from None


def open_rgb(source: str | Path | Image.Image | np.ndarray, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Any image file, PIL image or array → a fully decoded RGB PIL image.

    Alpha is composited onto white, EXIF orientation applied, 16-bit modes scaled (65535 → 255),
    float data (mode F, float arrays) read as [0, 1]. Arrays: HxW, HxWx1, HxWx3 or HxWx4 of uint8,
    uint16 or float. Raises BadImageError for anything unusable, including files over max_pixels
    (checked from the header, before decoding).
    """
    # one read: a header that opens with warnings may still fail to decode
    with shown_if_it_succeeds():
        if isinstance(source, np.ndarray):
            return _decoded_rgb(_from_array(source), "array", max_pixels)
        if isinstance(source, Image.Image):
            return _decoded_rgb(source, getattr(source, "filename", "") or "image", max_pixels)
        path = Path(source)
        with _open_header(path, max_pixels) as img:
            return _decoded_rgb(img, str(path), max_pixels)


def save_png_atomic(img: Image.Image, path: str | Path) -> None:
    """Write a PNG via a temporary file in the same directory and os.replace, so a crash or a full
    disk never leaves a half-written file under the final name. Raises OutputError."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        img.save(tmp, format="PNG")
        os.replace(tmp, path)
    except OSError as e:
        raise OutputError(f"{path}: cannot write ({e.strerror or e})") from None
    finally:
        with suppress(OSError):
            tmp.unlink(missing_ok=True)
