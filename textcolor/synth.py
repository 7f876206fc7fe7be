"""Procedural, tagged anime-character busts: the project's embedded default data set.

    s = render(7, 256, character="hibiki_(kantai_collection)")
    s.image, s.mask, s.tags

Each sample is a cel-shaded bust on a white background, drawn with PIL at 2× and box-downscaled.
Shapes are painted as palette *indices* on one canvas; the colour image and the label mask are
both looked up from that canvas, so they are aligned by construction. Every shape carries a black
ink outline, which is what makes XDoG line art independent of fill colours: white hair and navy
hair give the same sketch, and only the tags can tell them apart.

Randomness comes from separate streams keyed by (seed, stream): geometry (pose, face, shape
jitter) never reads the identity stream, so `render(s, character=A)` and `render(s, character=B)`
differ only in colours, hair style and accessory.

Pure drawing: the vocabulary lives in textcolor.vocab, the training dataset in textcolor.data
(SynthDataset), the folder writer in textcolor.synthfolder (CLI: python -m textcolor.synth --out DIR).
"""
from __future__ import annotations

import math
import sys
import zlib
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageDraw

from textcolor.vocab import (ACCESSORIES, ACCESSORY, ACCESSORY_TAGS, EYES, HAIR, HAIR_STYLES, LINE,
                             MAX_HAIRBAND_DROP, MONO_TAGS, OUTFIT, SKIN, STYLE_TAGS, Character, default_colors,
                             default_roster, hex_to_rgb, resolve_color, rgb_to_hex)

# Cel shade = colour × SHADE: a fixed luma *ratio*, so the shade edge gets the same XDoG response
# on white hair as on navy hair.
SHADE = 0.8
HIGHLIGHT = 0.4
SKIN_RGB = (253, 231, 218)
SKIN_SHADE_RGB = (242, 200, 188)  # pinkish, as anime skin shadows are; the same for everyone
MOUTH_RGB = (200, 90, 96)

# Outfit (main, accent) and accessory colours for "original" characters.
ORIGINAL_OUTFITS = (("#f4f4f8", "#27306a"), ("#27306a", "#f4f4f8"), ("#38363f", "#d02a3a"),
                    ("#d8363e", "#f6f6f6"), ("#3e6ad0", "#f6f6f6"), ("#4aa45e", "#f6f6f6"),
                    ("#f6dce4", "#c8303a"), ("#a4a8b0", "#2fb3aa"), ("#f2e4c8", "#8a5a3a"))
ORIGINAL_ACCESSORY_COLORS = ("#34343e", "#d8363e", "#f6f6f6", "#3a62c4", "#e8609a", "#f2c84a")
ORIGINAL_COLOR_JITTER = 8.0  # ± RGB levels, so originals of one colour tag are not all identical

# ---------------------------------------------------------------- roster and colour tags

@dataclass
class Sample:
    image: np.ndarray      # uint8 [H, W, 3]
    mask: np.ndarray       # uint8 [H, W], values from MASK_LABELS
    tags: list[str]
    character: str         # roster tag or "original"
    hair_color: str        # hex
    eye_color: str         # hex
    monochrome: bool
    seed: int
    accessory: str         # the kind worn (vocab.ACCESSORIES; "none"), whether or not a tag names it


# ---------------------------------------------------------------- random streams

GEOMETRY, IDENTITY, TAGGING, MONO, COSTUME, DETAIL, HAIRBAND = range(7)


def _stream(seed: int, stream: int, *key: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream, *key])


def sample_rng(seed: int) -> np.random.Generator:
    """The stream a training sample draws its draw size, line style and line jitter from (fixed per
    seed, apart from every stream the drawing reads)."""
    return _stream(seed, DETAIL, 2)


def _shape_rng(seed: int, name: str) -> np.random.Generator:
    """Jitter for one named shape: which other shapes a style draws never shifts its numbers."""
    return _stream(seed, GEOMETRY, zlib.crc32(name.encode()))


# ---------------------------------------------------------------- identity

def _jitter_hex(h: str, d: np.ndarray) -> str:
    return rgb_to_hex(np.clip(np.array(hex_to_rgb(h)) + d, 0, 255).round())


def pick_accessory(draw: int, weights: dict[str, float] | None = None) -> str:
    """The accessory for one uniform draw in [0, 2**30). No weights: ACCESSORIES[draw % 8], each
    kind equally likely (the draw every older dataset used). weights: {kind: weight}, kinds left
    out weigh 1, a zero weight is never drawn; the draw's fraction of 2**30 walks the cumulative weights."""
    if not weights:
        return ACCESSORIES[draw % len(ACCESSORIES)]
    w = np.array([float(weights.get(kind, 1.0)) for kind in ACCESSORIES])
    cumulative = np.cumsum(w) / w.sum()
    return ACCESSORIES[min(int(np.searchsorted(cumulative, draw / (1 << 30), side="right")), len(ACCESSORIES) - 1)]


def _choose_identity(seed: int, roster: tuple[Character, ...], character: str | None,
                     original_frac: float, alt_style_frac: float, costume_frac: float = 0.0,
                     accessory_weights: dict[str, float] | None = None) -> Character:
    rng = _stream(seed, IDENTITY)
    # A fixed sequence of draws whatever is chosen or overridden, so that e.g. the alternate-style
    # decision for hibiki and akatsuki (same base style) comes out the same at the same seed.
    u_original, u_alt = rng.random(2)
    roster_i, alt_i, style_i, acc_i, acc_color_i, outfit_i = rng.integers(0, 1 << 30, 6)
    u_costume = _stream(seed, COSTUME).random()  # its own stream: older draws keep their values
    colors = default_colors()
    hair_tags, eye_tags = sorted(colors["hair"]), sorted(colors["eyes"])
    hair_i, eye_i = rng.integers(0, 1 << 30, 2)
    jitter = rng.uniform(-ORIGINAL_COLOR_JITTER, ORIGINAL_COLOR_JITTER, 6)

    if character is None:
        pick_original = u_original < original_frac or not roster
        character = "original" if pick_original else roster[roster_i % len(roster)].tag
    if character == "original":
        hair_tag, eye_tag = hair_tags[hair_i % len(hair_tags)], eye_tags[eye_i % len(eye_tags)]
        outfit, accent = ORIGINAL_OUTFITS[outfit_i % len(ORIGINAL_OUTFITS)]
        return Character("original", "", _jitter_hex(colors["hair"][hair_tag], jitter[:3]), hair_tag,
                         HAIR_STYLES[style_i % len(HAIR_STYLES)],
                         _jitter_hex(colors["eyes"][eye_tag], jitter[3:]), eye_tag, outfit, accent,
                         pick_accessory(int(acc_i), accessory_weights),
                         ORIGINAL_ACCESSORY_COLORS[acc_color_i % len(ORIGINAL_ACCESSORY_COLORS)])
    by_tag = {c.tag: c for c in roster}
    if character not in by_tag:
        raise ValueError(f"unknown character {character!r}; roster: {', '.join(by_tag)} or 'original'")
    c = by_tag[character]
    style = c.hair_style
    if u_alt < alt_style_frac:
        others = [s for s in HAIR_STYLES if s != style]
        style = others[alt_i % len(others)]
    # fan art dresses characters up: another accessory, so the look does not give away who it is
    accessory = pick_accessory(int(acc_i), accessory_weights) if u_costume < costume_frac else c.accessory
    return replace(c, hair_style=style, accessory=accessory)


def _make_tags(seed: int, ident: Character, mono: bool, attr_drop: float) -> list[str]:
    rng = _stream(seed, TAGGING)
    u = rng.random(6)
    mono_tag = MONO_TAGS[int(rng.integers(0, len(MONO_TAGS)))]
    original = ident.tag == "original"
    tags = ["1girl", "solo"]
    if not original:
        tags.append(ident.tag)
        if u[0] >= attr_drop:
            tags.append(ident.series)
    # Colour tags name colours a monochrome image does not have. For originals they are the only
    # way to ask for a colour: hair is always kept, eyes dropped only rarely.
    if not mono:
        if original or u[1] >= attr_drop:
            tags.append(ident.hair_tag)
        if u[2] >= (attr_drop / 3 if original else attr_drop):
            tags.append(ident.eye_tag)
    if u[3] >= attr_drop:
        tags.append(STYLE_TAGS[ident.hair_style])
    if u[4] >= attr_drop:
        tags += ACCESSORY_TAGS[ident.accessory]
    if u[5] >= attr_drop:
        tags.append("sailor_collar")
    tags += ["upper_body", "white_background"]
    if mono:
        tags.append(mono_tag)
    return tags


# ---------------------------------------------------------------- palette canvas

# Palette indices painted on the canvas; each maps to one colour and one mask label.
(I_BG, I_SKIN, I_SKIN_SHADE, I_MOUTH, I_HAIR, I_HAIR_SHADE, I_IRIS, I_IRIS_SHADE, I_HIGHLIGHT,
 I_OUTFIT, I_OUTFIT_SHADE, I_ACCENT, I_ACCENT_SHADE, I_ACC, I_ACC_SHADE, I_INK, I_HAIR_LIGHT) = range(17)
_LABEL_OF = np.zeros(256, np.uint8)
_LABEL_OF[[I_SKIN, I_SKIN_SHADE, I_MOUTH]] = SKIN
_LABEL_OF[[I_HAIR, I_HAIR_SHADE, I_HAIR_LIGHT]] = HAIR
_LABEL_OF[[I_IRIS, I_IRIS_SHADE, I_HIGHLIGHT]] = EYES
_LABEL_OF[[I_OUTFIT, I_OUTFIT_SHADE, I_ACCENT, I_ACCENT_SHADE]] = OUTFIT
_LABEL_OF[[I_ACC, I_ACC_SHADE]] = ACCESSORY
_LABEL_OF[I_INK] = LINE


def _shade(rgb) -> tuple[int, ...]:
    return tuple(int(round(v * SHADE)) for v in rgb)


def _light(rgb) -> tuple[int, ...]:
    """Hair highlight: the colour taken 40% of the way to white (a sheen, not a new colour)."""
    return tuple(int(round(v + HIGHLIGHT * (255 - v))) for v in rgb)


def _palette(ident: Character) -> list[int]:
    hair, iris = hex_to_rgb(ident.hair_color), hex_to_rgb(ident.eye_color)
    outfit, accent = hex_to_rgb(ident.outfit_color), hex_to_rgb(ident.outfit_accent)
    acc = hex_to_rgb(ident.accessory_color)
    colors = [(255, 255, 255), SKIN_RGB, SKIN_SHADE_RGB, MOUTH_RGB, hair, _shade(hair), iris,
              _shade(iris), (255, 255, 255), outfit, _shade(outfit), accent, _shade(accent), acc,
              _shade(acc), (0, 0, 0), _light(hair)]
    return [v for c in colors for v in c]


class _Frame:
    """Local shape coordinates (unit: head radius, y down) → canvas pixels."""

    def __init__(self, origin: tuple[float, float], unit: float, angle: float, mirror: float):
        c, s = math.cos(angle) * unit, math.sin(angle) * unit
        self.m = np.array([[c * mirror, -s], [s * mirror, c]])
        self.o = np.asarray(origin, dtype=np.float64)

    def __call__(self, pts: np.ndarray) -> list[float]:
        return (np.asarray(pts, dtype=np.float64) @ self.m.T + self.o).ravel().tolist()

    def point(self, x: float, y: float) -> np.ndarray:
        return self.m @ np.array([x, y]) + self.o


class _Canvas:
    def __init__(self, px: int, ink: float):
        self.im = Image.new("P", (px, px), I_BG)
        self.draw = ImageDraw.Draw(self.im)
        self.ink = ink

    def shape(self, xy: list[float], index: int, outline: float = 1.0) -> None:
        """A filled polygon with a round-jointed ink outline centred on its edge."""
        self.draw.polygon(xy, fill=index)
        if outline > 0:
            self.line(xy + xy[:2], outline)

    def line(self, xy: list[float], width: float = 1.0) -> None:
        w = max(1, int(round(self.ink * width)))
        self.draw.line(xy, fill=I_INK, width=w, joint="curve")
        if w > 2:  # round the open ends too, as a pen would
            r = w / 2 - 0.5
            for x, y in (xy[:2], xy[-2:]):
                self.draw.ellipse((x - r, y - r, x + r, y + r), fill=I_INK)

    def clip(self, xy: list[float], inside: tuple[int, ...], index: int) -> None:
        """Paint index over the pixels of the polygon that currently hold one of `inside`."""
        xs, ys = xy[0::2], xy[1::2]
        w, h = self.im.size
        x0, y0 = max(0, int(min(xs))), max(0, int(min(ys)))
        x1, y1 = min(w, int(max(xs)) + 2), min(h, int(max(ys)) + 2)
        if x1 <= x0 or y1 <= y0:
            return
        box = (x0, y0, x1, y1)
        region = np.asarray(self.im.crop(box))
        sel = Image.new("1", (x1 - x0, y1 - y0), 0)
        ImageDraw.Draw(sel).polygon([v - (x0 if i % 2 == 0 else y0) for i, v in enumerate(xy)], fill=1)
        hit = np.asarray(sel) & np.isin(region, inside)
        self.im.paste(Image.fromarray(np.where(hit, index, region).astype(np.uint8), "P"), box)


# ---------------------------------------------------------------- shape helpers

def _smooth(pts, sharp=None, iterations: int = 2) -> np.ndarray:
    """Closed Chaikin corner cutting; vertices flagged sharp stay as corners (hair tips)."""
    p = np.asarray(pts, dtype=np.float64)
    s = np.zeros(len(p), bool) if sharp is None else np.asarray(sharp, bool)
    for _ in range(iterations):
        prev, nxt = np.roll(p, 1, 0), np.roll(p, -1, 0)
        a, b = 0.25 * prev + 0.75 * p, 0.75 * p + 0.25 * nxt
        out = np.where(s[:, None, None], np.stack([p, p], 1), np.stack([a, b], 1)).reshape(-1, 2)
        keep = np.repeat(~s, 2) | np.tile([True, False], len(p))  # one copy of each sharp vertex
        p, s = out[keep], np.repeat(s, 2)[keep]
    return p


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 24, a0: float = 0.0,
             a1: float = 2 * math.pi) -> np.ndarray:
    t = np.linspace(a0, a1, n, endpoint=(a1 - a0) < 2 * math.pi - 1e-9)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], 1)


def _arc(r: float, a0: float, a1: float, n: int, cy: float = 0.0) -> np.ndarray:
    """Points on a circle about (0, cy), angles in degrees (0 = right, 270 = top, y down)."""
    t = np.radians(np.linspace(a0, a1, n))
    return np.stack([r * np.cos(t), cy + r * np.sin(t)], 1)


def _jitter(rng: np.random.Generator, pts: np.ndarray, scale: float) -> np.ndarray:
    return pts + rng.normal(0.0, scale, pts.shape)


# ---------------------------------------------------------------- geometry

@dataclass
class _Pose:
    neck: tuple[float, float]   # neck base, canvas px
    unit: float                 # head radius, canvas px
    body_angle: float
    head_angle: float
    mirror: float
    neck_len: float
    shoulder: float
    eye_x: float
    eye_y: float
    eye_rx: float
    eye_ry: float
    mouth_open: bool
    strands: int
    side_len: float             # multiplier on the style's side-lock length


def _pose(seed: int, px: int) -> _Pose:
    rng = _stream(seed, GEOMETRY)
    u = rng.random(15)
    eye_rx = 0.15 + 0.04 * u[9]
    return _Pose(neck=(px * (0.42 + 0.16 * u[0]), px * (0.70 + 0.08 * u[1])),
                 unit=px * (0.21 + 0.05 * u[2]),
                 body_angle=math.radians(-4 + 8 * u[3]), head_angle=math.radians(-14 + 28 * u[4]),
                 mirror=1.0 if u[5] < 0.5 else -1.0, neck_len=1.25 + 0.12 * u[6],
                 shoulder=1.65 + 0.3 * u[7], eye_x=0.36 + 0.06 * u[8], eye_y=0.24 + 0.08 * u[13],
                 eye_rx=eye_rx, eye_ry=eye_rx * (1.2 + 0.25 * u[10]), mouth_open=bool(u[11] < 0.35),
                 strands=4 + int(3 * u[12]), side_len=0.9 + 0.2 * u[14])


# Side-lock length (head radii below the head centre) and back-hair reach per style.
_SIDE_LOCK = {"long": 2.6, "twintails": 1.0, "short": 0.8, "ponytail": 0.9, "bob": 1.15}


def _back_hair(style: str, rng: np.random.Generator) -> list[np.ndarray]:
    """Hair behind the head, in the head frame."""
    cap = _arc(1.22, 160, 380, 13)
    if style == "long":
        sides = [(1.25, 0.9), (1.4, 2.2), (1.45, 3.2), (0.5, 3.4), (-0.5, 3.4), (-1.45, 3.2),
                 (-1.4, 2.2), (-1.25, 0.9)]
    elif style == "bob":
        sides = [(1.36, 0.5), (1.3, 1.25), (0.6, 1.3), (-0.6, 1.3), (-1.3, 1.25), (-1.36, 0.5)]
    else:  # short, ponytail, twintails: a short back, spiky at the nape
        sides = [(1.32, 0.35), (1.25, 1.0), (1.02, 0.72), (0.85, 1.1), (-0.85, 1.1), (-1.02, 0.72),
                 (-1.25, 1.0), (-1.32, 0.35)]
    pts = _jitter(rng, np.vstack([cap, sides]), 0.025)
    sharp = np.zeros(len(pts), bool)
    if style not in ("long", "bob"):
        sharp[len(cap) + np.array([1, 3, 4, 6])] = True
    out = [_smooth(pts, sharp)]
    if style == "ponytail":
        tail = [(0.35, -1.1), (1.0, -1.05), (1.65, -0.55), (1.85, 0.4), (1.7, 1.5), (1.45, 2.4),
                (1.3, 1.4), (1.2, 0.4), (1.0, -0.4)]
        sharp = np.zeros(len(tail), bool)
        sharp[5] = True
        out.append(_smooth(_jitter(rng, np.array(tail), 0.03), sharp))
    return out


def _twintails(rng: np.random.Generator) -> list[np.ndarray]:
    """Two tails from the sides of the head, drawn over the shoulders."""
    tail = np.array([(0.85, -0.75), (1.35, -0.7), (1.75, -0.1), (1.85, 1.0), (1.8, 2.2),
                     (1.55, 3.3), (1.4, 2.3), (1.3, 1.1), (1.05, 0.1), (0.8, -0.35)])
    sharp = np.zeros(len(tail), bool)
    sharp[5] = True
    out = []
    for side in (1.0, -1.0):
        pts = _jitter(rng, tail, 0.03) * np.array([side, 1.0])
        out.append(_smooth(pts, sharp))
    return out


def _bangs(style: str, pose: _Pose, rng: np.random.Generator) -> tuple[np.ndarray, list[np.ndarray]]:
    """Front hair (top cap, fringe, side locks) and its strand lines, in the head frame."""
    side = _SIDE_LOCK[style] * (pose.side_len if style != "long" else 1.0)
    # side locks hang over the shoulders for long hair, so they widen downwards
    spread = 0.25 if style == "long" else 0.0
    top = _arc(1.12, 182, 358, 11)
    right = [(1.12 + spread, 0.5 * side), (0.98 + spread, side), (0.74 + spread * 0.6, 0.55 * side),
             (0.72, 0.1)]
    n = pose.strands
    xs = np.linspace(0.72, -0.72, 2 * n + 1)[1:-1]
    fringe = [(x, (-0.32 if k % 2 else 0.02) + rng.uniform(-0.08, 0.04)) for k, x in enumerate(xs)]
    left = [(-0.72, 0.1), (-0.74 - spread * 0.6, 0.55 * side), (-0.98 - spread, side),
            (-1.12 - spread, 0.5 * side)]
    pts = np.vstack([top, right, fringe, left])
    pts = _jitter(rng, pts, 0.02)
    # lock tips, the corners where the fringe meets the locks, and every fringe point are sharp
    sharp = np.zeros(len(pts), bool)
    a, b = len(top) + len(right), len(top) + len(right) + len(fringe)
    sharp[[a - 3, a - 1, b, b + 2]] = True
    sharp[a:b] = True
    strands = []
    for k in range(1, len(fringe), 2):  # from each notch up towards the crown
        x, y = fringe[k]
        strands.append(np.array([(x, y), (x * 0.75, y - 0.35 - 0.1 * rng.random())]))
    return _smooth(pts, sharp), strands


def _face() -> np.ndarray:
    t = np.radians(np.linspace(180, 360, 13))
    top = np.stack([0.92 * np.cos(t), 0.95 * np.sin(t)], 1)
    jaw = np.array([(0.92, 0.15), (0.85, 0.5), (0.55, 0.85), (0.0, 1.04), (-0.55, 0.85), (-0.85, 0.5),
                    (-0.92, 0.15)])
    pts = np.vstack([top, jaw])
    sharp = np.zeros(len(pts), bool)
    sharp[len(top) + 3] = True  # chin
    return _smooth(pts, sharp, 3)


def _body(pose: _Pose) -> dict[str, np.ndarray]:
    """Torso, neckline and sailor collar, in the body frame (origin: neck base)."""
    sw = pose.shoulder
    torso = np.array([(-0.34, -0.15), (-0.9, 0.02), (-sw + 0.25, 0.25), (-sw, 0.75), (-sw - 0.1, 3.2),
                      (sw + 0.1, 3.2), (sw, 0.75), (sw - 0.25, 0.25), (0.9, 0.02), (0.34, -0.15)])
    sharp = np.zeros(len(torso), bool)
    sharp[[0, 4, 5, 9]] = True
    neckline = np.array([(-0.34, -0.2), (0.34, -0.2), (0.0, 0.55)])
    collar = np.array([(-0.34, -0.15), (-1.05, 0.1), (-0.75, 1.0), (0.0, 0.82), (0.75, 1.0), (1.05, 0.1),
                       (0.34, -0.15), (0.0, 0.55)])
    csharp = np.array([1, 0, 1, 1, 1, 0, 1, 1], bool)
    stripe = np.array([(-0.93, 0.17), (-0.68, 0.86), (0.0, 0.7), (0.68, 0.86), (0.93, 0.17)])
    knot = _ellipse(0.0, 0.82, 0.16, 0.12, 12)
    tails = np.array([(-0.1, 0.86), (-0.32, 1.55), (-0.05, 1.45), (0.0, 0.92), (0.05, 1.45), (0.32, 1.55),
                      (0.1, 0.86)])
    shade = np.array([(0.55 * sw, 0.2), (sw + 0.3, 0.2), (sw + 0.3, 3.3), (0.75 * sw, 3.3),
                      (0.6 * sw, 1.2)])
    return {"torso": _smooth(torso, sharp), "neckline": neckline, "collar": _smooth(collar, csharp, 1),
            "stripe": stripe, "knot": knot, "tails": tails, "shade": shade}


def _accessory(kind: str, rng: np.random.Generator, band_drop: float = 0.0) -> list[tuple[np.ndarray, int, float]]:
    """(polygon, palette index, outline width) in the head frame, drawn in order. band_drop: how
    far a hairband's top sits below the skull's outline, as a fraction of its height (0: on the
    outline, as every older dataset drew it)."""
    def j(pts, scale: float = 0.02) -> np.ndarray:
        return _jitter(rng, np.asarray(pts, dtype=np.float64), scale)

    if kind in ("flat_cap", "beret"):
        lift = 0.1 if kind == "beret" else 0.0
        # a flat crown seen from slightly below, a band hugging the head, a short visor in front
        crown = _ellipse(0.08, -1.0 - lift, 1.22 + lift, 0.42 + lift, 24)
        band = np.vstack([_arc(1.1, 205, 335, 9, cy=0.05), _arc(0.9, 335, 205, 9, cy=0.05)])
        visor = np.vstack([_arc(0.92, 235, 305, 7, cy=0.05), _arc(0.72, 305, 235, 7, cy=0.05)])
        return [(_smooth(j(crown), iterations=1), I_ACC, 1.0), (j(band, 0.01), I_ACC_SHADE, 1.0),
                (j(visor, 0.01), I_ACC, 1.0)]
    if kind == "witch_hat":
        brim = _ellipse(0.0, -0.78, 1.75, 0.38, 24)
        cone = np.array([(-0.8, -0.85), (-0.45, -1.7), (0.1, -2.4), (0.75, -2.75), (0.45, -2.05),
                         (0.8, -0.85), (0.0, -0.7)])
        band = np.array([(-0.78, -0.95), (0.79, -0.95), (0.74, -1.22), (-0.68, -1.22)])
        sharp = np.array([1, 0, 0, 1, 0, 1, 0], bool)
        return [(_smooth(j(brim), iterations=1), I_ACC, 1.0), (_smooth(j(cone), sharp), I_ACC, 1.0),
                (j(band, 0.01), I_ACC_SHADE, 0.8)]
    if kind == "mob_cap":
        dome = np.vstack([_ellipse(0.0, -0.8, 1.2, 0.62, 13, math.pi, 2 * math.pi),
                          [(1.22, -0.6)],
                          [(x, -0.55 + 0.1 * (k % 2)) for k, x in enumerate(np.linspace(1.1, -1.1, 11))],
                          [(-1.22, -0.6)]])
        bow = _ellipse(0.85, -0.75, 0.22, 0.14, 10)
        return [(_smooth(j(dome), iterations=1), I_ACC, 1.0), (j(bow, 0.01), I_ACC_SHADE, 0.8)]
    if kind == "hair_bow":
        x, y = 0.55 + rng.uniform(-0.1, 0.1), -1.0
        left = [(x, y), (x - 0.75, y - 0.45), (x - 0.6, y + 0.3)]
        right = [(x, y), (x + 0.75, y - 0.45), (x + 0.6, y + 0.3)]
        knot = _ellipse(x, y, 0.15, 0.14, 10)
        return [(_smooth(j(left), [1, 0, 0], 1), I_ACC, 1.0), (_smooth(j(right), [1, 0, 0], 1), I_ACC, 1.0),
                (j(knot, 0.01), I_ACC_SHADE, 1.0)]
    if kind == "hairclip":
        out = []
        for k in range(2):
            x = -0.7 + 0.16 * k
            clip = np.array([(x - 0.05, -0.55), (x + 0.05, -0.58), (x + 0.22, -0.05), (x + 0.12, -0.02)])
            out.append((j(clip, 0.01), I_ACC, 0.8))
        return out
    if kind == "hairband":
        # Worn further back, a band is seen tilted: the same width, a flatter arc, the crown's hair
        # above it. Its thickness (0.18 head radii at the top) stays.
        outer, inner, cy = 1.16, 0.98, 0.05
        band = np.vstack([_arc(outer, 195, 345, 13, cy=cy), _arc(inner, 345, 195, 13, cy=cy)])
        if band_drop:
            band[:13, 1] = cy + (band[:13, 1] - cy) * (1.0 - band_drop)
            band[13:, 1] = cy + (band[13:, 1] - cy) * (1.0 - band_drop * outer / inner)
        return [(j(band, 0.01), I_ACC, 1.0)]
    return []


# ---------------------------------------------------------------- rendering

def _draw_eye(cv: _Canvas, f: _Frame, x: float, pose: _Pose, side: float) -> None:
    y, rx, ry = pose.eye_y, pose.eye_rx, pose.eye_ry
    iris = _ellipse(x, y, rx, ry, 24)
    cv.shape(f(iris), I_IRIS, 0.6)
    upper = [(x - 2 * rx, y - 2 * ry), (x + 2 * rx, y - 2 * ry), (x + 2 * rx, y - 0.15 * ry),
             (x - 2 * rx, y - 0.15 * ry)]
    cv.clip(f(upper), (I_IRIS,), I_IRIS_SHADE)  # the lid's shadow on the upper iris
    cv.draw.polygon(f(_ellipse(x, y + 0.15 * ry, 0.42 * rx, 0.45 * ry, 16)), fill=I_INK)
    cv.draw.polygon(f(_ellipse(x - 0.4 * rx, y - 0.4 * ry, 0.3 * rx, 0.24 * ry, 12)), fill=I_HIGHLIGHT)
    cv.draw.polygon(f(_ellipse(x + 0.35 * rx, y + 0.45 * ry, 0.15 * rx, 0.12 * ry, 10)), fill=I_HIGHLIGHT)
    # upper lash: a thick crescent over the iris with a flick at the outer corner
    outer = _ellipse(x, y + 0.05, rx * 1.25, ry * 1.08, 12, math.radians(195), math.radians(345))
    inner = _ellipse(x, y + 0.05, rx * 1.15, ry * 0.95, 12, math.radians(345), math.radians(195))
    flick = np.array([(x + side * rx * 1.45, y - 0.05 * ry)])
    lash = np.vstack([outer, inner])
    lash = np.vstack([flick, lash]) if side < 0 else np.vstack([lash[:12], flick, lash[12:]])
    cv.draw.polygon(f(lash), fill=I_INK)
    cv.line(f(_ellipse(x, y, rx * 0.9, ry * 1.0, 6, math.radians(60), math.radians(120))), 0.6)


def _draw_face(cv: _Canvas, head: _Frame, pose: _Pose) -> None:
    cv.shape(head(_face()), I_SKIN)
    for side in (-1.0, 1.0):
        _draw_eye(cv, head, side * pose.eye_x, pose, side)
    cv.line(head([(0.03, 0.52), (0.0, 0.57)]), 0.7)
    if pose.mouth_open:
        cv.shape(head(_ellipse(0.0, 0.76, 0.1, 0.07, 12, 0.0, math.pi)), I_MOUTH, 0.7)
    else:
        cv.line(head(_ellipse(0.0, 0.68, 0.09, 0.06, 6, math.radians(30), math.radians(150))), 0.7)


def _draw(seed: int, px: int, ink: float, ident: Character, detail: bool = False,
          band_drop: float = 0.0) -> _Canvas:
    pose = _pose(seed, px)
    cv = _Canvas(px, ink)
    body = _Frame(pose.neck, pose.unit, pose.body_angle, pose.mirror)
    head_angle = pose.body_angle + pose.head_angle
    centre = body.point(0.0, 0.0) + pose.unit * np.array(
        [math.sin(head_angle) * pose.neck_len, -math.cos(head_angle) * pose.neck_len])
    head = _Frame(tuple(centre), pose.unit, head_angle, pose.mirror)
    style = ident.hair_style

    for poly in _back_hair(style, _shape_rng(seed, f"back_{style}")):
        cv.shape(head(poly), I_HAIR)
    cv.clip(head(_ellipse(0.0, 0.9, 1.3, 1.05, 16)), (I_HAIR,), I_HAIR_SHADE)  # behind the face

    cv.shape(head([(-0.27, 0.5), (0.27, 0.5), (0.3, 1.9), (-0.3, 1.9)]), I_SKIN)
    cv.clip(head(_ellipse(0.0, 0.92, 0.6, 0.35, 12)), (I_SKIN,), I_SKIN_SHADE)  # under the chin

    b = _body(pose)
    cv.shape(body(b["torso"]), I_OUTFIT)
    cv.clip(body(b["shade"]), (I_OUTFIT,), I_OUTFIT_SHADE)
    cv.shape(body(b["neckline"]), I_SKIN_SHADE)
    cv.shape(body(b["collar"]), I_ACCENT)
    cv.line(body(b["stripe"]), 0.5)
    cv.shape(body(b["tails"]), I_ACCENT_SHADE)
    cv.shape(body(b["knot"]), I_ACCENT_SHADE)

    if style == "twintails":
        for poly in _twintails(_shape_rng(seed, "twintails")):
            cv.shape(head(poly), I_HAIR)

    _draw_face(cv, head, pose)

    bangs, strands = _bangs(style, pose, _shape_rng(seed, "bangs"))
    cv.shape(head(bangs), I_HAIR)
    for s in strands:
        cv.line(head(s), 0.6)
    away_from_light = [(0.35, -1.4), (1.6, -1.4), (1.9, 3.5), (0.7, 3.5), (0.6, 0.3)]
    cv.clip(head(away_from_light), (I_HAIR,), I_HAIR_SHADE)

    if detail:
        _draw_detail(cv, head, _stream(seed, DETAIL))
    for poly, index, width in _accessory(ident.accessory, _shape_rng(seed, f"acc_{ident.accessory}"), band_drop):
        cv.shape(head(poly), index, width)
    return cv


def _draw_detail(cv: _Canvas, head: _Frame, rng: np.random.Generator) -> None:
    """What real illustrations have and flat cel renders lack: a sheen band across the crown and
    thin strand lines in the hair, so the XDoG of a real drawing's hair is in distribution."""
    a0, a1 = 200 + 25 * rng.random(), 315 + 25 * rng.random()
    r_out, r_in = 0.9 + 0.1 * rng.random(), 0.7 + 0.1 * rng.random()
    n = 9
    inner = _arc(r_in, a1, a0, n) + rng.normal(0, 0.04, (n, 2))   # ragged lower edge of the sheen
    band = np.vstack([_arc(r_out, a0, a1, n), inner])
    cv.clip(head(band), (I_HAIR, I_HAIR_SHADE), I_HAIR_LIGHT)
    for _ in range(int(rng.integers(3, 8))):
        a = math.radians(200 + 140 * rng.random())
        r0, r1 = 1.05 - 0.1 * rng.random(), 0.55 + 0.2 * rng.random()
        bend = rng.normal(0, 0.06)
        pts = [(r * math.cos(a + bend * t), r * math.sin(a + bend * t))
               for t, r in ((0.0, r0), (0.5, (r0 + r1) / 2), (1.0, r1))]
        cv.line(head(np.array(pts)), 0.35 + 0.25 * rng.random())


def _downscale(cv: _Canvas, palette: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """2× palette canvas → (RGB box-averaged, labels). A pixel whose 2×2 block holds any ink is
    LINE, so every other label covers pure fill colour only."""
    cv.im.putpalette(palette)
    rgb = np.array(cv.im.convert("RGB").reduce(2))
    idx = np.asarray(cv.im)
    h, w = idx.shape[0] // 2, idx.shape[1] // 2
    labels = _LABEL_OF[idx]
    inked = (labels == LINE).reshape(h, 2, w, 2).any(axis=(1, 3))
    mask = np.where(inked, LINE, labels[::2, ::2]).astype(np.uint8)
    return rgb, mask


def _grey(rgb: np.ndarray) -> np.ndarray:
    luma = np.asarray(Image.fromarray(rgb).convert("L"))  # BT.601, what textcolor.xdog uses
    return np.repeat(luma[..., None], 3, axis=2)


def _identity(seed, character, hair_color, eye_color, monochrome, mono_frac, original_frac, alt_style_frac,
              costume_frac, roster, accessory_weights=None) -> tuple[Character, bool]:
    ros = tuple(roster) if roster is not None else default_roster()
    ident = _choose_identity(seed, ros, character, original_frac, alt_style_frac, costume_frac, accessory_weights)
    if hair_color is not None:
        hex_, tag = resolve_color(hair_color, "hair")
        ident = replace(ident, hair_color=hex_, hair_tag=tag)
    if eye_color is not None:
        hex_, tag = resolve_color(eye_color, "eyes")
        ident = replace(ident, eye_color=hex_, eye_tag=tag)
    if monochrome is None:
        monochrome = bool(_stream(seed, MONO).random() < mono_frac)
    return ident, monochrome


def render_tags(seed: int, *, character: str | None = None, monochrome: bool | None = None, mono_frac: float = 0.1,
                original_frac: float = 0.25, alt_style_frac: float = 0.2, attr_drop: float = 0.3,
                costume_frac: float = 0.0, roster: list[Character] | None = None,
                accessory_weights: dict[str, float] | None = None) -> tuple[Character, list[str]]:
    """The identity and tags render(seed, ...) gives with the same arguments, without drawing: for
    statistics over a training set's prompts (textcolor.promptstats)."""
    ident, monochrome = _identity(seed, character, None, None, monochrome, mono_frac, original_frac,
                                  alt_style_frac, costume_frac, roster, accessory_weights)
    return ident, _make_tags(seed, ident, monochrome, attr_drop)


def render(seed: int, size: int = 256, *, character: str | None = None, hair_color: str | None = None,
           eye_color: str | None = None, monochrome: bool | None = None, mono_frac: float = 0.1,
           original_frac: float = 0.25, alt_style_frac: float = 0.2, attr_drop: float = 0.3,
           costume_frac: float = 0.0, detail: float = 0.0, roster: list[Character] | None = None,
           accessory_weights: dict[str, float] | None = None, hairband_drop: float = 0.0) -> Sample:
    """One tagged bust, deterministic in all arguments. Geometry depends on `seed` only.

    character: a roster tag or "original" (None: drawn at random). hair_color / eye_color: a hex
    colour or a colour tag ("red_hair", "blue_eyes"); the colour tag in `tags` is then the one
    given, or the nearest in CIELAB to the hex. monochrome: None draws it with mono_frac.
    detail: probability of a hair sheen and strand lines (drawn from their own random stream).
    accessory_weights: {kind: weight} for the accessories originals and costumes draw (pick_accessory).
    hairband_drop: a hairband sits up to this fraction of its height below the skull's outline, the
    crown's hair above it (uniform, from its own random stream; 0: on the outline, every older dataset).
    """
    if size < 16:
        raise ValueError(f"size must be ≥ 16, got {size}")
    if not 0.0 <= hairband_drop <= MAX_HAIRBAND_DROP:
        raise ValueError(f"hairband_drop must be in [0, {MAX_HAIRBAND_DROP}], got {hairband_drop}")
    ident, monochrome = _identity(seed, character, hair_color, eye_color, monochrome, mono_frac, original_frac,
                                  alt_style_frac, costume_frac, roster, accessory_weights)

    # Outline width in output pixels: ≈ size/100, but at least 3. XDoG's wide Gaussian (k·σ = 1.8
    # px) reaching across a thinner outline would thicken the line on the dark side of an edge, so
    # navy hair would get heavier outlines than white hair and leak its colour into the sketch.
    ink = 2 * max(3.0, size / 100)
    band_drop = hairband_drop * _stream(seed, HAIRBAND).random()
    cv = _draw(seed, 2 * size, ink, ident, bool(_stream(seed, DETAIL, 1).random() < detail), band_drop)
    image, mask = _downscale(cv, _palette(ident))
    if monochrome:
        image = _grey(image)
    return Sample(image=image, mask=mask, tags=_make_tags(seed, ident, monochrome, attr_drop),
                  character=ident.tag, hair_color=ident.hair_color, eye_color=ident.eye_color,
                  monochrome=monochrome, seed=seed, accessory=ident.accessory)


if __name__ == "__main__":  # python -m textcolor.synth --out DIR: the folder writer's CLI
    from textcolor.synthfolder import main
    sys.exit(main())
