"""The web page (textcolor/app.py): `colorize_request` directly, then the page in headless Chromium.

The browser test starts `python -m textcolor.app` on a free localhost port, uploads a rendered
sketch, types two prompts, fetches both results, checks that hibiki's hair comes out lighter than
akatsuki's, and saves docs/app.png. It is skipped when /usr/bin/chromium, playwright or gradio
is missing (pip install -e ".[test,app]"; apt-get install chromium).
"""
from __future__ import annotations

import io
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from textcolor import synth, vocab
from textcolor.app import MAX_PROMPT_CHARS, MAX_PROMPTS, colorize_request, split_prompts
from textcolor.imageio import MAX_PIXELS
from textcolor.xdog import sketch_array

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
HIBIKI, AKATSUKI = "hibiki_(kantai_collection)", "akatsuki_(kantai_collection)"
SIZE, SEED = 128, 0


def luma(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width×height, with no pixel data: big on paper, 45 bytes on disk."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)     # 8-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def colorizer():
    from textcolor.colorize import Colorizer
    return Colorizer.from_checkpoint(device="cpu")


@pytest.fixture(scope="module")
def sample():
    return synth.render(SEED, SIZE, character=HIBIKI, monochrome=False)


@pytest.fixture(scope="module")
def sketch(sample):
    return sketch_array(sample.image)


@pytest.fixture(scope="module")
def sketch_png(sketch, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("app") / "hibiki-sketch.png"
    Image.fromarray(sketch).save(path)
    return path


# ---------------------------------------------------------------------------------------------
# colorize_request

@pytest.mark.parametrize("kind", ["path", "bytes", "pil", "array"])
def test_good_sketch_gives_one_image_per_prompt(colorizer, sketch, sketch_png, kind):
    source = {"path": str(sketch_png), "bytes": sketch_png.read_bytes(),
              "pil": Image.fromarray(sketch), "array": sketch}[kind]
    images, msg = colorize_request(colorizer, source, f"{HIBIKI}\n{AKATSUKI}", 1.0, False)
    assert msg.startswith("✓") and "2 colorizations" in msg, msg
    assert [im.size for im in images] == [(SIZE, SIZE)] * 2
    assert all(im.mode == "RGB" for im in images)
    assert [im.info["prompt"] for im in images] == [HIBIKI, AKATSUKI]


def test_colour_input_with_xdog_and_strength(colorizer, sample):
    images, msg = colorize_request(colorizer, sample.image, HIBIKI, 0.5, True)
    assert len(images) == 1 and images[0].size == (SIZE, SIZE), msg
    assert "XDoG" in msg and "strength 0.5" in msg


@pytest.mark.parametrize("data, reason", [
    (b"", "empty"),
    (b"<html><body>404 Not Found</body></html>", "not an image"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not an image"),
    (b"\x00\xff" * 1000, "not an image"),
])
def test_bad_bytes_give_a_message(colorizer, data, reason):
    images, msg = colorize_request(colorizer, data, HIBIKI, 1.0, False)
    assert images == [] and msg.startswith("⚠") and reason in msg, msg
    assert "\n" not in msg and "textcolor-upload" not in msg       # one line, no temp path


def test_bad_file_names_only_the_upload(colorizer, tmp_path):
    path = tmp_path / "deep" / "dir" / "notes.png"
    path.parent.mkdir(parents=True)
    path.write_text("meeting notes, not a picture")
    images, msg = colorize_request(colorizer, str(path), HIBIKI, 1.0, False)
    assert images == [] and "notes.png: not an image" in msg, msg
    assert str(path.parent) not in msg


def test_huge_image_is_refused_before_decoding(colorizer, tmp_path):
    w, h = 10_000, MAX_PIXELS // 10_000 + 1
    path = tmp_path / "huge.png"
    path.write_bytes(png_header_only(w, h))
    t0 = time.perf_counter()
    images, msg = colorize_request(colorizer, str(path), HIBIKI, 1.0, False)
    assert images == [] and "megapixel" in msg and f"{w}x{h}" in msg, msg
    assert time.perf_counter() - t0 < 1.0
    images, msg = colorize_request(colorizer, path.read_bytes(), HIBIKI, 1.0, False)
    assert images == [] and "megapixel" in msg, msg


def test_no_image_asks_for_one(colorizer):
    images, msg = colorize_request(colorizer, None, HIBIKI, 1.0, False)
    assert images == [] and "Upload" in msg


@pytest.mark.parametrize("prompts", [
    "", None, "   \n\t\n", ",,, ,\n,", "\x00\x01\x1b\x07\x7f", "\u200b\u200e\ufeff",
    "x" * 10_000, "a," * 5_000, "\n".join(["y" * (MAX_PROMPT_CHARS + 1)] * 3), "b\n" * 1_000_000,
])
def test_unusable_prompts_give_a_message(colorizer, sketch, prompts):
    images, msg = colorize_request(colorizer, sketch, prompts, 1.0, False)
    assert images == [] and msg.startswith("⚠ Nothing to colour"), msg
    assert "\n" not in msg and len(msg) < 500


def test_odd_prompts_colour_what_they_can(colorizer, sketch):
    text = (f"  {HIBIKI.upper()}:1.5 ,\r\n"            # case, weight, padding, CRLF
            "\x00\x01,,\n"                               # nothing left: reported
            f"{'z' * (MAX_PROMPT_CHARS + 1)}\n"          # too long: reported
            "<script>alert(1)</script>, 🎨 漢字\t**bold** `tick`\u200b\n")
    images, msg = colorize_request(colorizer, sketch, text, 1.0, False)
    assert len(images) == 2 and msg.startswith("✓"), msg
    assert images[0].info["prompt"] == f"{HIBIKI}:1.5"
    assert "line 2 has no tags" in msg and "line 3 is 1,001 characters" in msg
    assert "<script>" not in msg


def test_prompts_are_capped(colorizer, sketch):
    text = "\n".join(f"{HIBIKI}:{1 + i / 10:g}" for i in range(MAX_PROMPTS + 2))
    images, msg = colorize_request(colorizer, sketch, text, 1.0, False)
    assert len(images) == MAX_PROMPTS and f"only the first {MAX_PROMPTS}" in msg, msg
    assert split_prompts(text)[0] == [im.info["prompt"] for im in images]


@pytest.mark.parametrize("strength, ok", [
    (0, True), (2, True), ("1.25", True), (float("nan"), False), (-0.1, False), (2.5, False),
    ("strong", False), (None, False), (float("inf"), False),
])
def test_strength(colorizer, sketch, strength, ok):
    images, msg = colorize_request(colorizer, sketch, HIBIKI, strength, False)
    assert (len(images) == 1) == ok and msg.startswith("✓" if ok else "⚠ strength"), msg


def test_internal_errors_become_a_message(sketch):
    class Broken:
        def prepare(self, *a, **k):
            raise RuntimeError("CUDA error: device-side assert triggered\n  at line 1")

    images, msg = colorize_request(Broken(), sketch, HIBIKI, 1.0, False)
    assert images == [] and "Internal error (RuntimeError)" in msg and "\n" not in msg


# ---------------------------------------------------------------------------------------------
# The page in a browser

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.fixture
def server(tmp_path):
    get = 'as .ci/run does: sudo apt-get install chromium, then pip install -e ".[app]"'
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"browser test not run: {CHROMIUM} is absent; {get}")
    pytest.importorskip("playwright.sync_api", reason=f"browser test not run: playwright is not installed; {get}")
    pytest.importorskip("gradio", reason=f"browser test not run: gradio is not installed; {get}")
    port = _free_port()
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1",
               GRADIO_TEMP_DIR=str(tmp_path / "gradio"), TMPDIR=str(tmp_path),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "textcolor.app", "--port", str(port),
                                 "--no-warmup", "--threads", "1"],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the app exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the app did not answer within 60 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.25)
        yield url, proc, log_path
    finally:
        _stop(proc)


def _status(page) -> str:
    return page.locator("#status").inner_text()


@pytest.mark.slow
def test_browser_end_to_end(server, sample, sketch_png, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    url, proc, log_path = server
    outside: list[str] = []
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900}, timeout=30_000)
        try:
            ctx.set_default_timeout(20_000)
            ctx.on("request", lambda r: outside.append(r.url)
                   if not r.url.startswith((url, "data:", "blob:")) else None)

            # a bad upload: a readable message in the page, and the server lives on
            page = ctx.new_page()
            page.goto(url)
            bad = tmp_path / "notes.png"
            bad.write_text("not an image")
            page.locator("#upload input[type=file]").set_input_files(bad)
            page.locator("#prompts textarea").fill(HIBIKI)
            expect(page.locator("#status")).to_contain_text("notes.png: not an image")
            assert "Traceback" not in page.content()
            page.close()

            # the real thing: one sketch, two prompts, two results side by side
            page = ctx.new_page()
            page.goto(url)
            page.locator("#upload input[type=file]").set_input_files(sketch_png)
            page.locator("#prompts textarea").fill(f"{HIBIKI}\n{AKATSUKI}")
            t0 = time.perf_counter()
            page.locator("#run").click()
            expect(page.locator("#status")).to_contain_text(f"2 colorizations of a {SIZE}×{SIZE} sketch")
            imgs = page.locator("#gallery img")
            expect(imgs).to_have_count(2)
            print(f"click to results: {time.perf_counter() - t0:.2f} s; status: {_status(page)}")
            expect(page.locator("#preview img")).to_have_count(1)
            assert imgs.evaluate_all("els => els.map(e => e.alt)") == [HIBIKI, AKATSUKI]
            results = []
            for src in imgs.evaluate_all("els => els.map(e => e.src)"):
                resp = page.request.get(src)
                assert resp.ok, src
                results.append(np.asarray(Image.open(io.BytesIO(resp.body())).convert("RGB")))
            page.wait_for_timeout(300)                   # let the thumbnails finish painting
            (ROOT / "docs").mkdir(exist_ok=True)
            page.screenshot(path=str(ROOT / "docs" / "app.png"), full_page=True)
        finally:
            ctx.close()

    assert proc.poll() is None, log_path.read_text()[-3000:]
    assert "Traceback" not in log_path.read_text()
    assert outside == [], f"the page reached outside localhost: {outside}"
    assert [r.shape for r in results] == [(SIZE, SIZE, 3)] * 2
    hair = sample.mask == vocab.HAIR
    assert hair.sum() > 100
    light, dark = (float(luma(r)[hair].mean()) for r in results)
    print(f"hair luma: {HIBIKI} {light:.1f}, {AKATSUKI} {dark:.1f}")
    # white vs dark navy hair; the shipped model gives luma about 147 vs 106 here (seed 0, a 128 px
    # sketch: steering is weaker away from the 64 px working size, README "Results")
    assert light > dark + 20, f"{HIBIKI} hair luma {light:.1f} should be well above {AKATSUKI}'s {dark:.1f}"
