"""textcolor.xdog against a direct numpy/scipy evaluation of seed 000's formula."""
import inspect

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from scipy import ndimage

from textcolor.config import XDoGConfig
from textcolor.xdog import LUMA, gaussian_blur, sketch_array, xdog, xdog_rgb

SEED_PARAMS = dict(sigma=0.4, k=4.5, p=19.0, eps=0.01, phi=1e9)


def reference_xdog(rgb: np.ndarray, sigma=0.4, k=4.5, p=19.0, eps=0.01, phi=1e9) -> np.ndarray:
    """float64 [H, W, 3] in [0, 1] -> [H, W] sketch. scipy's 'mirror' is torch's 'reflect'."""
    gray = rgb @ np.array(LUMA)
    blur = lambda s: ndimage.gaussian_filter(gray, s, mode="mirror", truncate=4.0)
    s = (1 + p) * blur(sigma) - p * blur(k * sigma)
    return np.where(s >= eps, 1.0, 1.0 + np.tanh(phi * (s - eps)))


def scene(seed: int, size: int = 96) -> np.ndarray:
    """A real-looking test picture: smooth gradient background, filled and outlined shapes,
    thin strokes and sensor-like noise. uint8 [size, size, 3]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    base = np.stack([0.8 - 0.3 * yy, 0.6 + 0.3 * xx, 0.9 - 0.2 * xx * yy], -1)
    img = Image.fromarray((base * 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(6):
        x0, y0 = rng.integers(0, size - 20, 2)
        w, h = rng.integers(10, size // 2, 2)
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x0, y0, x0 + w, y0 + h), fill=colour, outline=(30, 20, 20), width=int(rng.integers(1, 3)))
    for _ in range(4):
        draw.line(tuple(int(v) for v in rng.integers(0, size, 4)), fill=(0, 0, 0), width=1)
    noisy = np.asarray(img, dtype=np.float64) + rng.normal(0, 2.0, (size, size, 3))
    return np.clip(noisy, 0, 255).astype(np.uint8)


def test_gaussian_blur_matches_scipy():
    gray = scene(0)[..., 0].astype(np.float64) / 255
    for sigma in (0.4, 1.8, 3.0):
        ours = gaussian_blur(torch.from_numpy(gray)[None, None].float(), sigma)[0, 0].numpy()
        ref = ndimage.gaussian_filter(gray, sigma, mode="mirror", truncate=4.0)
        np.testing.assert_allclose(ours, ref, atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("params", [SEED_PARAMS, dict(SEED_PARAMS, phi=10.0, eps=0.0), dict(SEED_PARAMS, sigma=0.8, p=10.0)])
def test_xdog_matches_reference(seed, params):
    rgb = scene(seed).astype(np.float64) / 255
    ours = xdog_rgb(torch.from_numpy(rgb).permute(2, 0, 1)[None].float(), XDoGConfig(**params))[0, 0].numpy()
    ref = reference_xdog(rgb, **params)
    agree = ((ours >= 0.5) == (ref >= 0.5)).mean()
    assert agree >= 0.99, agree
    assert 0.02 < (ref < 0.5).mean() < 0.9  # the scene has lines, and is not all line
    if params["phi"] < 1e3:  # a soft step can be compared value by value
        np.testing.assert_allclose(ours, ref, atol=1e-3)


def test_batch_equals_one_at_a_time():
    batch = torch.stack([torch.from_numpy(scene(s)).permute(2, 0, 1).float() / 255 for s in range(4)])
    together = xdog_rgb(batch)
    for i in range(4):
        alone = xdog_rgb(batch[i:i + 1])
        torch.testing.assert_close(together[i:i + 1], alone, atol=1e-6, rtol=0)


def test_sketch_array_agrees_with_xdog_rgb():
    rgb = scene(3)
    arr = sketch_array(rgb)
    ref = xdog_rgb(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255)[0, 0].numpy()
    assert arr.dtype == np.uint8 and arr.shape == rgb.shape[:2]
    np.testing.assert_array_equal(arr >= 128, ref >= 0.5)


def test_defaults_are_the_seed_values():
    assert {k: getattr(XDoGConfig(), k) for k in SEED_PARAMS} == SEED_PARAMS
    sig = inspect.signature(xdog).parameters
    assert {k: sig[k].default for k in SEED_PARAMS} == SEED_PARAMS


@pytest.mark.parametrize("level", [0.02, 0.3, 1.0])
def test_flat_image_has_no_lines(level):
    out = xdog(torch.full((1, 1, 40, 40), level))
    assert torch.all(out == 1.0)


def test_flat_black_is_solid_ink():
    # on a flat image S = I, so a level below ε is a filled area, uniformly, still with no edges
    assert torch.all(xdog(torch.zeros(1, 1, 40, 40)) == 0.0)


def test_black_line_on_white_is_detected():
    img = np.full((40, 40, 3), 255, np.uint8)
    img[:, 19:21] = 0  # a 2-px vertical black line
    out = sketch_array(img)
    assert np.all(out[:, 19:21] == 0)
    assert np.all(out[:, :15] == 255) and np.all(out[:, 25:] == 255)


def test_output_in_unit_range_and_finite():
    x = torch.rand(2, 3, 33, 47)
    out = xdog_rgb(x)
    assert out.shape == (2, 1, 33, 47)
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
