"""A local web page for the colorizer: upload a sketch, type prompts, compare the colorizations.

    pip install -e ".[app]"
    python -m textcolor.app [--port 7860] [--checkpoint CKPT] [--host 127.0.0.1]

Why Gradio: it is the ML community's standard for model demos (it is what Hugging Face Spaces
run), so the page looks familiar to our users and can be published as a Space with little change.
Its ready-made components (file upload, a gallery with per-image and download-all buttons, a
slider, status text and warning toasts) give this whole page in well under a hundred lines of
Python with no HTML or JavaScript to maintain, and its request queue runs one colorization at a
time, which is what a single CPU- or GPU-bound model wants. The price is a large dependency tree
(FastAPI, uvicorn, and pillow<13), so it is an optional extra (`app`) rather than a core
dependency, and its API changes between major versions, hence the pinned range. A hand-written
page on `http.server` would be lighter but would need its own multipart parsing, live-update
JavaScript and download links: more code than the demo itself.

Structure: `colorize_request` is the pure function the page calls (tests call it directly); it
never raises and answers bad input with a one-line message. The Colorizer is loaded once, at
start-up, before the server accepts requests. Nothing phones home: Gradio analytics are off, no
share link is made, and the server binds 127.0.0.1 unless told otherwise.
"""
from __future__ import annotations

import logging
import math
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any

# Before anything imports gradio or huggingface_hub: no analytics, no version check, no telemetry.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import numpy as np
import torch
from PIL import Image

from textcolor import cli
from textcolor.checkpoint import CheckpointError
from textcolor.colorize import BudgetError, Colorizer
from textcolor.imageio import BadImageError, open_rgb
from textcolor.memory import keep_freed_memory
from textcolor.tags import EncoderUnavailable, parse_prompt, tags_to_prompt
from textcolor.xdog import sketch_array

log = logging.getLogger("textcolor.app")

MAX_PROMPTS = 8              # colorizations per request (one generator batch)
MAX_PROMPT_CHARS = 1000      # per prompt line; a Danbooru tag list is rarely over 300
MAX_TEXT_CHARS = 100_000     # the whole prompt box: a paste of a whole file is refused unread
STRENGTH_RANGE = (0.0, 2.0)
PREVIEW_SIZE = 512           # the input preview is a thumbnail; results keep the input's size
# One request holds the single model slot; these bound what it may cost (an 8000×8000 upload with
# 8 prompts once held it 58 s at 7.9 GB) and how many may wait behind it.
MAX_INPUT_PIXELS = 16_000_000     # per upload (4000×4000), checked from the header before decoding
MAX_REQUEST_PIXELS = 32_000_000   # output pixels per request: input pixels × prompts
MAX_QUEUE = 8                     # requests waiting for the slot; Gradio answers the next "queue full"
MAX_UPLOAD = "50mb"               # a 16-megapixel PNG is well under this
EXAMPLE = "hibiki_(kantai_collection)\nakatsuki_(kantai_collection)"


# ---------------------------------------------------------------------------------------------
# The request: pure Python, no gradio

def _md(text: str, limit: int = 60) -> str:
    """User text made safe to show inside a Markdown message: one line, short, escaped."""
    text = "".join(ch if ch.isprintable() else " " for ch in str(text))
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([\\`*_\[\]#|~])", r"\\\1", text)


def _bad_image_message(err: BadImageError, path: str | None, name: str) -> str:
    """BadImageError's 'path: what is wrong' with the server-side path replaced by a short name."""
    msg = str(err)
    if path:
        msg = msg.replace(path, name)
    return msg


def load_source(image: Any, max_pixels: int = MAX_INPUT_PIXELS) -> Image.Image:
    """A path (what the upload widget hands over), raw bytes, a PIL image or an array -> RGB.
    Raises BadImageError with a one-line message naming the upload by its file name only."""
    if image is None:
        raise BadImageError("no image: upload a sketch or a colour image", "missing")
    if isinstance(image, (bytes, bytearray, memoryview)):
        # via a file, so that the same header checks (size limit before decoding) apply
        fd, tmp = tempfile.mkstemp(prefix="textcolor-upload-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(bytes(image))
            try:
                return open_rgb(tmp, max_pixels)
            except BadImageError as e:
                raise BadImageError(_bad_image_message(e, tmp, "uploaded data"), e.reason) from None
        finally:
            os.unlink(tmp)
    if isinstance(image, (str, os.PathLike)):
        path = os.fspath(image)
        try:
            return open_rgb(path, max_pixels)
        except BadImageError as e:
            raise BadImageError(_bad_image_message(e, path, Path(path).name), e.reason) from None
    if isinstance(image, (Image.Image, np.ndarray)):
        return open_rgb(image, max_pixels)
    raise BadImageError(f"unsupported input of type {type(image).__name__}", "not an image")


def split_prompts(prompts_text: Any) -> tuple[list[str], list[str]]:
    """One prompt per line -> (usable prompts, problems). Blank lines are skipped; lines that are
    too long or hold no tag after cleaning are reported, not coloured. Never raises."""
    text = "" if prompts_text is None else str(prompts_text)
    if len(text) > MAX_TEXT_CHARS:
        return [], [f"the prompt box holds {len(text):,} characters (the limit is {MAX_TEXT_CHARS:,})"]
    prompts, problems = [], []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if len(line) > MAX_PROMPT_CHARS:
            problems.append(f"line {n} is {len(line):,} characters long (the limit is "
                            f"{MAX_PROMPT_CHARS:,}); shorten it")
            continue
        tags = parse_prompt(line)
        if not tags:
            problems.append(f"line {n} has no tags (only separators, spaces or control characters)")
            continue
        prompts.append(tags_to_prompt(tags))
    if len(prompts) > MAX_PROMPTS:
        problems.append(f"only the first {MAX_PROMPTS} of {len(prompts)} prompts are coloured")
        prompts = prompts[:MAX_PROMPTS]
    return prompts, problems


def _strength(value: Any) -> float:
    try:
        s = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"strength must be a number, got “{_md(value, 20)}”") from None
    if not math.isfinite(s):
        raise ValueError(f"strength must be a finite number, got {s}")
    lo, hi = STRENGTH_RANGE
    if not lo <= s <= hi:
        raise ValueError(f"strength must be between {lo:g} and {hi:g}, got {s:g}")
    return s


def colorize_request(colorizer, image: Any, prompts_text: Any, strength: Any = 1.0,
                     from_color: Any = False) -> tuple[list[Image.Image], str]:
    """What the page does on every change: -> (one image per usable prompt, Markdown message).

    image: a path, bytes, PIL image or array. prompts_text: one prompt per line. Never raises:
    bad input gives ([], a one-line reason); each image carries its prompt in `img.info["prompt"]`
    and keeps the input's size.
    """
    try:
        prompts, problems = split_prompts(prompts_text)
        try:
            s = _strength(strength)
        except ValueError as e:
            return [], f"⚠ {e}"
        if image is None:
            return [], "Upload a sketch (or a colour image and tick the XDoG box) to begin."
        t0 = time.perf_counter()
        try:
            rgb = load_source(image)
        except BadImageError as e:
            return [], f"⚠ Bad image — {_md(e, 200)}"
        if not prompts:
            hint = "; ".join(problems) if problems else "the prompt box is empty"
            return [], (f"⚠ Nothing to colour: {hint}. Type one prompt per line, "
                        f"e.g. `hibiki_(kantai_collection)`.")
        w, h = rgb.size
        if w * h * len(prompts) > MAX_REQUEST_PIXELS:
            fit = MAX_REQUEST_PIXELS // (w * h)
            return [], (f"⚠ {w}×{h} with {len(prompts)} prompts is {w * h * len(prompts) / 1e6:.0f} megapixels of "
                        f"output; the page colours at most {MAX_REQUEST_PIXELS / 1e6:g} per request: use at most "
                        f"{fit} prompt{'s' * (fit != 1)} or a smaller image.")
        try:
            prepared = colorizer.prepare(rgb, from_color=bool(from_color))
        except BudgetError as e:
            return [], f"⚠ Too large — {_md(str(e).split('; pass')[0], 200)}; use a smaller image."
        images = colorizer.colorize_prepared([prepared] * len(prompts), prompts, s)
        for img, prompt in zip(images, prompts):
            img.info["prompt"] = prompt
        n = len(images)
        msg = (f"✓ {n} colorization{'s' * (n != 1)} of a {w}×{h} "
               f"{'colour image (XDoG sketch)' if from_color else 'sketch'} at strength {s:g} "
               f"in {time.perf_counter() - t0:.2f} s.")
        if problems:
            msg += " ⚠ " + "; ".join(problems) + "."
        return images, msg
    except EncoderUnavailable as e:
        return [], f"⚠ The tag encoder is unavailable: {_md(e, 300)}"
    except MemoryError:
        return [], "⚠ Out of memory for this image; try a smaller one."
    except Exception as e:  # the page must get a message, never a traceback; the log gets both
        log.exception("colorize_request failed")
        return [], f"⚠ Internal error ({type(e).__name__}); see the server log."


def preview_image(image: Any, from_color: bool = False, size: int = PREVIEW_SIZE) -> Image.Image | None:
    """A thumbnail of the upload (XDoG lines when from_color) for the page; None if unusable."""
    try:
        rgb = load_source(image)
    except BadImageError:
        return None
    except Exception:
        log.exception("preview failed")
        return None
    rgb.thumbnail((size, size))
    if from_color:
        return Image.fromarray(sketch_array(np.asarray(rgb)))
    return rgb


# ---------------------------------------------------------------------------------------------
# Results on disk, so downloads get PNG files named after their prompts

class ResultFiles:
    """Writes each request's PNGs to its own folder; keeps the last `keep` requests."""

    def __init__(self, keep: int = 64):
        self.root = Path(tempfile.mkdtemp(prefix="textcolor-app-"))
        self._dirs: deque[Path] = deque()
        self._keep = keep
        self._lock = threading.Lock()

    @staticmethod
    def slug(prompt: str) -> str:
        s = re.sub(r"[^A-Za-z0-9_()\-]+", "_", prompt).strip("_")
        return s[:60] or "untagged"

    def save(self, images: list[Image.Image]) -> list[str]:
        d = self.root / uuid.uuid4().hex[:12]
        d.mkdir()
        paths = []
        for i, img in enumerate(images, 1):
            p = d / f"{i:02d}-{self.slug(img.info.get('prompt', ''))}.png"
            img.save(p, format="PNG")
            paths.append(str(p))
        with self._lock:
            self._dirs.append(d)
            while len(self._dirs) > self._keep:
                shutil.rmtree(self._dirs.popleft(), ignore_errors=True)
        return paths

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# The page

CSS = "#status { min-height: 2.5em; }"


def build_ui(colorizer, results: ResultFiles | None = None, title: str = "textcolor"):
    import gradio as gr

    results = results or ResultFiles()

    def run(file, prompts_text, strength, from_color):
        images, message = colorize_request(colorizer, file, prompts_text, strength, from_color)
        if file is not None and not images and message.startswith("⚠ Bad image"):
            gr.Warning(re.sub(r"\\(.)", r"\1", message.removeprefix("⚠ ")))  # toasts are plain text
        if not images:
            return [], message
        try:
            paths = results.save(images)
        except OSError as e:
            log.error("cannot write results: %s", e)
            return [(img, img.info.get("prompt", "")) for img in images], message
        return [(p, img.info.get("prompt", "")) for p, img in zip(paths, images)], message

    def preview(file, from_color):
        return None if file is None else preview_image(file, bool(from_color))

    # uploads and results older than 30 min are deleted every 10 min, and all of them at shutdown
    with gr.Blocks(title=title, analytics_enabled=False, delete_cache=(600, 1800)) as demo:
        gr.Markdown("## textcolor — tag-conditioned line-art colorization\n"
                    "Upload a sketch, type one prompt per line (comma-separated Danbooru tags, "
                    "`tag:1.5` for weights), and compare the colorizations side by side.")
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                file = gr.File(label="Sketch or colour image (PNG, JPEG, WebP, …)",
                               type="filepath", elem_id="upload", height=120)
                from_color = gr.Checkbox(label="input is a colour image — extract the sketch with XDoG",
                                         value=False, elem_id="from-color")
                source = gr.Image(label="Input", interactive=False, height=260, format="png",
                                  elem_id="preview", buttons=[])
                prompts = gr.Textbox(label="Prompts — one per line", lines=4, max_lines=12,
                                     placeholder=EXAMPLE, elem_id="prompts")
                strength = gr.Slider(*STRENGTH_RANGE, value=1.0, step=0.05, elem_id="strength",
                                     label="Strength (0 = ignore the tags, 1 = as trained, 2 = exaggerate)")
                button = gr.Button("Colorize", variant="primary", elem_id="run")
            with gr.Column(scale=2, min_width=400):
                status = gr.Markdown("Upload a sketch to begin.", elem_id="status")
                gallery = gr.Gallery(label="Colorizations", columns=4, height="auto", format="png",
                                     object_fit="contain", elem_id="gallery", interactive=False,
                                     buttons=["download", "download_all", "fullscreen"])

        inputs = [file, prompts, strength, from_color]
        gr.on([file.change, from_color.change, strength.release, prompts.change, button.click],
              run, inputs, [gallery, status], trigger_mode="always_last",
              show_progress="minimal", api_name="colorize")
        gr.on([file.change, from_color.change], preview, [file, from_color], source,
              trigger_mode="always_last", show_progress="hidden", api_visibility="private")
    demo.queue(default_concurrency_limit=1, max_size=MAX_QUEUE)
    return demo


# ---------------------------------------------------------------------------------------------
# Command line

def _warm_up(colorizer) -> None:
    """One small request (kernels, allocator) and the text encoder loaded, so that the first real
    request, or a prompt with a tag the checkpoint does not know, is answered at full speed."""
    t0 = time.perf_counter()
    colorize_request(colorizer, np.full((256, 256), 255, np.uint8), "1girl", 1.0, False)
    encoder = colorizer.encoder
    if encoder is not None and not encoder.loaded:
        try:
            # TagEncoder loads lazily, on the first tag missing from memory and disk; load it now
            # (an encode() of a dummy tag would not: its vector would be cached on disk after once)
            encoder._load()
        except EncoderUnavailable as e:
            log.warning("%s (tags outside the checkpoint's vocabulary will fail)", e)
    log.info("warm-up: %.1f s", time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    ap = cli.parser("textcolor-app", __doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    ap.add_argument("--host", default="127.0.0.1",
                    help="address to bind (default 127.0.0.1, this machine only; 0.0.0.0 = everyone)")
    ap.add_argument("--checkpoint", default=None,
                    help="train.py checkpoint, run dir or exported .safetensors (default: the shipped model)")
    ap.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    ap.add_argument("--threads", type=int, default=max(1, min(4, (os.cpu_count() or 2) // 2)),
                    help="CPU threads for torch (default: half the cores, at most 4)")
    ap.add_argument("--no-warmup", action="store_true",
                    help="skip the start-up warm-up (faster start, slower first request)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)   # gradio's own start-up checks
    # `kill` ends the server like Ctrl-C does, so the result files are removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    keep_freed_memory()
    torch.set_num_threads(max(1, args.threads))
    t0 = time.perf_counter()
    try:
        colorizer = Colorizer.from_checkpoint(args.checkpoint, device=args.device)
    except (CheckpointError, EncoderUnavailable, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    log.info("model loaded in %.1f s on %s", time.perf_counter() - t0, colorizer.device)
    if not args.no_warmup:
        _warm_up(colorizer)

    try:
        import gradio  # noqa: F401
    except ImportError:
        print('error: the web page needs Gradio: pip install -e ".[app]"', file=sys.stderr)
        return 2
    results = ResultFiles()
    try:
        demo = build_ui(colorizer, results)
        demo.launch(server_name=args.host, server_port=args.port, share=False, inbrowser=False,
                    show_error=False, max_file_size=MAX_UPLOAD, footer_links=[], css=CSS)
    except OSError as e:  # port in use, cannot bind
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        results.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
