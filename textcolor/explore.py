"""Helpers for exploring tag vectors: what the text encoder gives, what the model learned from it.

    from textcolor.colorize import Colorizer
    from textcolor import explore
    colorizer = Colorizer.from_checkpoint()
    vocab = explore.vocabulary()                                   # tag, category
    raw = explore.raw_vectors(colorizer.encoder, vocab.tag)        # [N, 384] sentence embeddings
    learned = explore.learned_vectors(colorizer, vocab.tag)        # [N, k] the model's conditioning
    explore.cosine_matrix(raw), explore.pca_2d(learned)
    explore.nearest_tags(colorizer.encoder, "silver-haired girl", vocab.tag)
    explore.interpolate(colorizer, sketch, "hibiki_(kantai_collection)", "akatsuki_(kantai_collection)")
    explore.arithmetic(colorizer.encoder, "hatsune_miku - aqua_hair + red_hair")

Nothing here re-implements the model: vectors come from `TagEncoder`, the learned conditioning
from `Generator.cond.vector`, and images from `Colorizer.colorize_embedded`. The notebook
notebooks/tag_vectors.ipynb and textcolor.projector (TensorBoard's Embedding Projector) use it.
"""
from __future__ import annotations

import re
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import torch
from PIL import Image

from textcolor.colorize import Colorizer, Prepared
from textcolor.grid import labelled_grid
from textcolor.tags import TagEncoder, parse_prompt
from textcolor.vocab import ACCESSORY_TAGS, MONO_TAGS, STYLE_TAGS, load_colors, load_roster

CATEGORIES = ("character", "hair_color", "eye_color", "general")

# General (non-character, non-colour) tags: what textcolor.synth puts on every render, the
# monochrome tags, and the hair-style / accessory tags (those come from synth's own tables).
BASE_GENERAL_TAGS = ("1girl", "solo", "upper_body", "white_background", "sailor_collar")


# ---------------------------------------------------------------------------------------------
# Vocabulary

def vocabulary() -> "pd.DataFrame":
    """The synthetic data set's tags as a DataFrame with columns `tag` and `category`.

    category is one of CATEGORIES: `character` (the roster), `hair_color` / `eye_color` (the
    colour table plus the roster's colour tags), `general` (1girl, solo, monochrome, hair styles,
    accessories, series ...). Each tag appears once, in that order."""
    roster, colors = load_roster(), load_colors()
    groups: list[tuple[str, Iterable[str]]] = [
        ("character", (c.tag for c in roster)),
        ("hair_color", [*colors["hair"], *(c.hair_tag for c in roster)]),
        ("eye_color", [*colors["eyes"], *(c.eye_tag for c in roster)]),
        ("general", [*BASE_GENERAL_TAGS, *MONO_TAGS, *STYLE_TAGS.values(),
                     *(t for tags in ACCESSORY_TAGS.values() for t in tags),
                     *(c.series for c in roster)]),
    ]
    seen: dict[str, str] = {}
    for category, tags in groups:
        for tag in tags:
            seen.setdefault(tag, category)
    return pd.DataFrame({"tag": list(seen), "category": list(seen.values())})


def categories_of(tags: Sequence[str], default: str = "other") -> list[str]:
    """Category of each tag per vocabulary(); tags outside it get `default`."""
    vocab = vocabulary()
    known = dict(zip(vocab["tag"], vocab["category"]))
    return [known.get(t, default) for t in tags]


# ---------------------------------------------------------------------------------------------
# Vectors

def _tag_list(tags) -> list[str]:
    if isinstance(tags, str):
        return [tags]
    return [str(t) for t in tags]


def _need_encoder(encoder) -> None:
    if encoder is None:
        raise ValueError("this model takes no tags (tags.layout none): it has no tag vectors")


def raw_vectors(encoder: "TagEncoder", tags: Iterable[str]) -> np.ndarray:
    """[N, E] float32: the text encoder's (L2-normalised) vector of each tag."""
    _need_encoder(encoder)
    return encoder.encode(_tag_list(tags)).numpy().astype(np.float32, copy=False)


@torch.no_grad()
def learned_vectors(colorizer: "Colorizer", tags: Iterable[str], relative_to_null: bool = False) -> np.ndarray:
    """[N, k] float32: the model's learned conditioning `G.cond.vector(embed(tag))` per tag.

    These are the k values the generator sees tiled over the sketch. `relative_to_null=True`
    subtracts the empty prompt's vector (the projection's bias), which puts "no tags" at the
    origin, as it is for the raw embeddings (the empty prompt embeds to zeros)."""
    _need_encoder(colorizer.encoder)
    tags = _tag_list(tags)
    out = colorizer.G.cond.vector(colorizer.embed(tags))
    if relative_to_null:
        out = out - colorizer.G.cond.vector(colorizer.embed([""]))
    return out.float().cpu().numpy()


def tag_attention(colorizer: "Colorizer", prompt: str) -> list[tuple[str, float]]:
    """[(tag, share)] of one prompt: how much of the pooled conditioning each tag supplies (the
    first head of `head_shares`). With attention pooling the shares are learned (Σ|share| = 1);
    with mean pooling they are w/Σ|w|."""
    table = head_shares(colorizer, prompt)
    return [(name, float(a)) for name, a in zip(table.tag, table.head_0)]


def head_shares(colorizer: "Colorizer", prompt: str) -> "pd.DataFrame":
    """One row per tag of `prompt`, one column per attention head (tags.heads): each head's share of
    the prompt (a column's |shares| sum to 1). With several heads, one can give the hair tag most of
    its share and another the eye tag, which a single head's shares cannot both do."""
    _need_encoder(colorizer.encoder)
    items = parse_prompt(prompt)
    tokens = colorizer.encoder.embed_tokens([prompt]).to(colorizer.device)             # [1, T, E+1]
    shares = colorizer.G.cond.head_attention(tokens)[0].T.float().cpu().numpy() if items else np.zeros((0, 1))
    table = pd.DataFrame(shares, columns=[f"head_{h}" for h in range(shares.shape[1])])
    table.insert(0, "tag", [name for name, _ in items])
    return table


def phrase_similarity(colorizer: "Colorizer", phrases: dict[str, str], tags: Sequence[str]) -> "pd.DataFrame":
    """For each free phrase (→ the colour tag it means): its nearest tag among `tags` and its cosine
    to the intended tag, once in the raw sentence-embedding space and once in the model's learned
    conditioning (relative to the empty prompt). Where the learned space ranks the intended tag
    first more often than the raw one, training has taught the projection what the words mean."""
    tags = list(tags)
    names = list(phrases)
    raw = cosine_matrix(np.vstack([raw_vectors(colorizer.encoder, names), raw_vectors(colorizer.encoder, tags)]))
    learned = cosine_matrix(np.vstack([learned_vectors(colorizer, names, relative_to_null=True),
                                       learned_vectors(colorizer, tags, relative_to_null=True)]))
    rows = []
    for i, phrase in enumerate(names):
        j = tags.index(phrases[phrase])
        row = {"phrase": phrase, "means": phrases[phrase]}
        for space, C in (("raw", raw), ("learned", learned)):
            sims = C[i, len(names):]
            row[f"{space}_nearest"] = tags[int(np.argmax(sims))]
            row[f"{space}_cos"] = float(sims[j])
            row[f"{space}_rank"] = int((sims > sims[j]).sum()) + 1
        rows.append(row)
    return pd.DataFrame(rows)


def cosine_matrix(X) -> np.ndarray:
    """[N, D] → [N, N] cosine similarities (float64); a zero row has similarity 0 to everything."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"expected a 2-D array [N, D], got shape {X.shape}")
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    U = np.divide(X, norms, out=np.zeros_like(X), where=norms > 0)
    return np.clip(U @ U.T, -1.0, 1.0)


def pca_2d(X, return_ratio: bool = False):
    """[N, D] → [N, 2] coordinates on the first two principal components (numpy SVD).

    Deterministic signs (each component's largest loading is positive). With fewer than two
    non-trivial components the missing coordinates are 0. `return_ratio=True` also returns the
    fraction of variance each of the two components explains, shape [2]."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"expected a 2-D array [N, D], got shape {X.shape}")
    coords, ratio = np.zeros((X.shape[0], 2)), np.zeros(2)
    if X.shape[0] and X.shape[1]:
        Xc = X - X.mean(axis=0)
        _, s, vt = np.linalg.svd(Xc, full_matrices=False)
        n = min(2, len(s))
        for i in range(n):
            if vt[i, np.argmax(np.abs(vt[i]))] < 0:
                vt[i] = -vt[i]
        coords[:, :n] = Xc @ vt[:n].T
        total = float((s ** 2).sum())
        if total > 0:
            ratio[:n] = s[:n] ** 2 / total
    return (coords, ratio) if return_ratio else coords


def _query_vector(encoder: "TagEncoder", query) -> np.ndarray:
    if isinstance(query, str):
        return encoder.embed_prompts([query])[0].numpy()
    q = query.detach().cpu().numpy() if isinstance(query, torch.Tensor) else np.asarray(query)
    return q.reshape(-1).astype(np.float64)


def nearest_tags(encoder: "TagEncoder", query, tags: Iterable[str], k: int = 5) -> list[tuple[str, float]]:
    """The k tags whose raw vectors are most cosine-similar to `query`, best first.

    query: free text or a prompt (embedded like any prompt, so "crimson hair" is one tag and
    "a, b" is the mean of two), or a vector [E] such as arithmetic()'s result."""
    _need_encoder(encoder)
    tags = _tag_list(tags)
    if not tags or k <= 0:
        return []
    q = _query_vector(encoder, query)
    V = raw_vectors(encoder, tags)
    if q.shape[0] != V.shape[1]:
        raise ValueError(f"query is {q.shape[0]}-d, tag vectors are {V.shape[1]}-d")
    sims = cosine_matrix(np.vstack([q[None], V]))[0, 1:]
    order = np.argsort(-sims, kind="stable")[:k]
    return [(tags[i], float(sims[i])) for i in order]


# ---------------------------------------------------------------------------------------------
# Tag arithmetic

# An operator is +, - or − (U+2212) at the start or right after whitespace: "a - b + c", "a -b";
# "a+b" is one term.
# Inside a term a hyphen stays part of the tag ("silver-haired girl", "t-shirt").
_OPERATOR_RE = re.compile(r"(?:^|(?<=\s))([+\-\u2212])\s*")


def parse_expression(expr: str) -> tuple[list[str], list[str]]:
    """"hatsune_miku - aqua_hair + red_hair" → (["hatsune_miku", "red_hair"], ["aqua_hair"])."""
    parts = _OPERATOR_RE.split(expr.strip())
    plus: list[str] = []
    minus: list[str] = []
    # parts = [term, op, term, op, term ...]; a leading operator leaves an empty first term
    terms = [("+", parts[0])] + list(zip(parts[1::2], parts[2::2]))
    if not parts[0].strip() and len(parts) > 1:
        terms = terms[1:]
    for op, term in terms:
        term = term.strip()
        if not term:
            raise ValueError(f"empty term in tag expression {expr!r}")
        (plus if op == "+" else minus).append(term)
    return plus, minus


def arithmetic(encoder: "TagEncoder", expr_or_plus: str | Sequence[str],
               minus: Sequence[str] = ()) -> torch.Tensor:
    """Σ plus − Σ minus of raw tag vectors → float32 [E], e.g. "hatsune_miku - aqua_hair + red_hair".

    Pass an expression string, or a list of tags to add and a list to subtract. A term may carry
    a weight ("red_hair:1.5"). The result is not renormalised; colour with it via
    colorizer.colorize_embedded(items, vec[None])."""
    _need_encoder(encoder)
    if isinstance(expr_or_plus, str):
        if minus:
            raise ValueError("pass either an expression string or (plus, minus) lists, not both")
        plus, minus = parse_expression(expr_or_plus)
    else:
        plus, minus = list(expr_or_plus), list(minus)
    if not plus and not minus:
        raise ValueError("tag arithmetic needs at least one tag")
    terms = [*plus, *minus]
    # pool "sum" of a one-tag prompt is weight · vector: each term as the prompt parser reads it
    vecs = encoder.embed_prompts(terms, pool="sum")
    sign = torch.tensor([1.0] * len(plus) + [-1.0] * len(minus))
    return (sign[:, None] * vecs).sum(0)


# ---------------------------------------------------------------------------------------------
# Images

def _prepared(colorizer: "Colorizer", sketch, from_color: bool) -> "Prepared":
    return sketch if isinstance(sketch, Prepared) else colorizer.prepare(sketch, from_color)


def interpolate(colorizer: "Colorizer", sketch, prompt_a: str, prompt_b: str, steps: int = 7,
                from_color: bool = False) -> list[Image.Image]:
    """Colour one sketch along the straight line between two pooled prompt embeddings.

    Image i uses (1 − t)·embed(a) + t·embed(b) with t = i / (steps − 1), so the first and last
    images are exactly the colourings with prompt_a and prompt_b. sketch: any image source
    (sketch image, or a colour image with from_color=True) or a Prepared."""
    if steps < 2:
        raise ValueError(f"steps must be at least 2, got {steps}")
    _need_encoder(colorizer.encoder)
    item = _prepared(colorizer, sketch, from_color)
    a, b = colorizer.embed([prompt_a, prompt_b])
    t = torch.linspace(0.0, 1.0, steps, device=a.device)[:, None]
    if a.dim() == 1:
        emb = (1 - t) * a[None] + t * b[None]              # [steps, E]; rows 0 and -1 are a and b
    else:
        # per-tag vectors (attention pooling): both prompts' tags, a's weights × (1 − t) and b's × t;
        # a weight of 0 is padding, so the ends are exactly a and b
        w = torch.cat([a[None, :, -1] * (1 - t), b[None, :, -1] * t], dim=1)          # [steps, 2T]
        vecs = torch.cat([a[:, :-1], b[:, :-1]])[None].expand(steps, -1, -1)          # [steps, 2T, E]
        emb = torch.cat([vecs, w[..., None]], dim=-1)                                 # [steps, 2T, E+1]
    return colorizer.colorize_embedded([item] * steps, emb)


def colorize_vector(colorizer: "Colorizer", sketch, vector, from_color: bool = False) -> Image.Image:
    """Colour one sketch with an embedding [E] (e.g. arithmetic()'s result)."""
    item = _prepared(colorizer, sketch, from_color)
    vec = torch.as_tensor(np.asarray(vector) if not isinstance(vector, torch.Tensor) else vector)
    return colorizer.colorize_embedded([item], vec.float().reshape(1, -1))[0]


def strip(images: Sequence[Image.Image], labels: Sequence[str]) -> Image.Image:
    """One labelled row of equally sized panels (textcolor.grid.labelled_grid)."""
    images = list(images)
    if not images:
        raise ValueError("strip needs at least one image")
    return labelled_grid([images], [str(label) for label in labels])
