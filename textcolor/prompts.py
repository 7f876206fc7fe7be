"""Training prompts as users type them, and the colour-swapped prompts of the locality term.

A prompt here is parsed once, per batch, into `Tags` (a list of (tag, weight) pairs from
textcolor.tags.parse_prompt); every function below takes and returns parsed prompts, and the tag
encoder embeds them as they are. Every random draw comes from the caller's generator, so a resumed
run sees exactly the prompts of an uninterrupted one.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from textcolor.config import Config
from textcolor.paraphrase import load_paraphrases, paraphrase_prompt
from textcolor.tags import tag_text
from textcolor.vocab import EYES, HAIR, default_roster, hex_to_rgb, load_colors

Tags = list[tuple[str, float]]


def drop_prompts(prompts: Sequence[Tags], p: float, gen: torch.Generator, tag_p: float = 0.0,
                 short_p: float = 0.0, keep: Sequence[str] = (), color_p: float = 0.0,
                 paraphrase_p: float = 0.0, paraphrases: dict[str, list[str]] | None = None) -> list[Tags]:
    """Each prompt becomes empty with probability p (the null vector); a kept prompt is cut to one
    random tag with probability short_p, or to its colour tags alone ("red_hair, blue_eyes") with
    probability color_p, else each of its tags is dropped with probability tag_p. Then each colour
    tag is reworded with probability paraphrase_p from the paraphrase table ("red-haired girl",
    "ruby hair"; textcolor.paraphrase).

    Users type lone tags and short mixes: pooled alone, a tag's vector lies far from a ten-tag
    training prompt, so they must be trained on. Tags in `keep` (monochrome) describe the whole
    target: only the empty prompt drops them, or a grey target would teach that grey comes unasked.
    They are matched as the encoder reads them (`tag_text`), so `hatsune miku` keeps `hatsune_miku`."""
    keep = {tag_text(k) for k in keep}
    colors = {tag_text(t) for t in (paraphrases or {})}
    colors_and_keep = colors | keep   # what a colour-only cut keeps
    flags = (torch.rand(len(prompts), generator=gen) >= p).tolist()
    out = []
    for prompt, k in zip(prompts, flags):
        items = list(prompt) if k else []
        u = torch.rand(1, generator=gen).item() if items and (short_p > 0 or color_p > 0) else 1.0
        if u < short_p:
            lone = items[int(torch.randint(len(items), (1,), generator=gen))]
            items = [it for it in items if it is lone or tag_text(it[0]) in keep]
        elif u < short_p + color_p and any(tag_text(it[0]) in colors for it in items):
            items = [it for it in items if tag_text(it[0]) in colors_and_keep]
        elif tag_p > 0 and items:
            items = [it for it, v in zip(items, torch.rand(len(items), generator=gen).tolist())
                     if v >= tag_p or tag_text(it[0]) in keep]
        if paraphrase_p > 0 and items:
            items = paraphrase_prompt(items, paraphrase_p, gen, paraphrases)
        out.append(items)
    return out


def swap_color_tags(prompts: Sequence[Tags], gen: torch.Generator, colors: dict[str, list[str]]
                    ) -> tuple[list[int], list[Tags], list[str], list[tuple[str, str]]]:
    """Counterfactual prompts for the locality term. In each prompt that holds a colour tag of
    `colors` ({"hair": [red_hair, ...], "eyes": [...]}; written as the tag or spaced), one such tag
    drawn at random is replaced by another colour of the same kind. Returns the indices of the
    prompts changed, their new tags, the kind swapped in each ("hair" | "eyes") and the (old, new)
    colour tag of each, as `colors` spells them. Reworded colours ("crimson-haired girl") are not
    recognised and leave their prompt out."""
    kind_of = {tag_text(t): (kind, t) for kind, tags in colors.items() for t in tags}
    index, swapped, kinds, moves = [], [], [], []
    for i, prompt in enumerate(prompts):
        items = list(prompt)
        spots = [j for j, (name, _) in enumerate(items) if tag_text(name) in kind_of]
        if not spots:
            continue
        j = spots[int(torch.randint(len(spots), (1,), generator=gen))]
        kind, tag = kind_of[tag_text(items[j][0])]
        others = [t for t in colors[kind] if t != tag]
        new = others[int(torch.randint(len(others), (1,), generator=gen))]
        items[j] = (new, items[j][1])
        index.append(i)
        swapped.append(items)
        kinds.append(kind)
        moves.append((tag, new))
    return index, swapped, kinds, moves


def color_distance(a: Sequence[int], b: Sequence[int]) -> float:
    """Euclidean distance of two 0-255 RGB colours in the generator's [-1, 1] units."""
    return float(torch.dist(torch.tensor(a, dtype=torch.float32), torch.tensor(b, dtype=torch.float32)) / 127.5)


@dataclass
class Swap:
    """The locality term's counterfactual half of a batch: rows `index` of the batch again, their
    prompt with one colour tag swapped (embedded after the batch's own), and the mask label of
    the region that colour belongs to (outside it, nothing may change; inside, the mean colour
    must move at least `shift`: loss.lambda_shift)."""
    index: torch.Tensor   # [S] long
    label: torch.Tensor   # [S] uint8 mask label (vocab.HAIR | vocab.EYES)
    shift: torch.Tensor | None = None  # [S] least move of the region's mean colour, [-1, 1] RGB units
    recolor: torch.Tensor | None = None  # [S] int8, loss.lambda_recolor: RECOLOR, UNCHANGED or LEAVE_OUT
    old: torch.Tensor | None = None      # [S, 3] the colour swapped out, [-1, 1] RGB
    new: torch.Tensor | None = None      # [S, 3] the colour swapped in


# Swap.recolor: the swapped prompt's target is the batch's target recoloured in its region; the
# target itself (a monochrome prompt: grey whatever colour is named); no target (a roster
# character, whose own colour its name keeps).
LEAVE_OUT, RECOLOR, UNCHANGED = 0, 1, 2


class PromptSampler:
    """cfg.tags' prompt options and cfg.loss' swap terms, resolved once: batch prompts in, the
    prompts to embed (and the locality term's Swap) out."""

    def __init__(self, cfg: Config, gen: torch.Generator):
        t = cfg.tags
        self.gen = gen
        roster = [c.tag for c in default_roster()]
        keep_in_cuts = [*t.keep_tags, *roster] if t.keep_roster else t.keep_tags
        self.drop = dict(p=t.drop_prob, tag_p=t.tag_drop, short_p=t.short_prompt, keep=keep_in_cuts,
                         color_p=t.color_prompt, paraphrase_p=t.paraphrase,
                         paraphrases=load_paraphrases() if t.paraphrase > 0 or t.color_prompt > 0 else None)
        self.shift_frac = cfg.loss.shift_frac if cfg.loss.lambda_shift > 0 else None
        self.recolor = cfg.loss.lambda_recolor > 0
        self.keep = {tag_text(k) for k in t.keep_tags}
        self.characters = {tag_text(tag) for tag in roster}
        colors = load_colors()
        self.kinds = {kind: sorted(tags) for kind, tags in colors.items()}
        self.rgb = {tag: hex_to_rgb(h) for table in colors.values() for tag, h in table.items()}

    def __call__(self, prompts: Sequence[Tags], device: torch.device, swaps: bool
                 ) -> tuple[list[Tags], Swap | None]:
        """The prompts to embed; with `swaps`, also the colour-swapped copies and their Swap."""
        prompts = drop_prompts(prompts, gen=self.gen, **self.drop)
        if not swaps:
            return prompts, None
        index, swapped, kinds, moves = swap_color_tags(prompts, self.gen, self.kinds)
        if not index:
            return prompts, None
        shift = None
        if self.shift_frac is not None:
            shift = torch.tensor([self.shift_frac * color_distance(self.rgb[a], self.rgb[b]) for a, b in moves],
                                 device=device)
        label = torch.tensor([{"hair": HAIR, "eyes": EYES}[k] for k in kinds], dtype=torch.uint8, device=device)
        recolor = old = new = None
        if self.recolor:
            recolor = torch.tensor([self._recolor_kind(p) for p in swapped], dtype=torch.int8, device=device)
            old, new = (torch.tensor([self.rgb[m[j]] for m in moves], dtype=torch.float32, device=device) / 127.5 - 1
                        for j in (0, 1))
            if self.drop["paraphrase_p"] > 0 and self.drop["paraphrases"]:
                # the swapped-in colour is also asked for in words ("crimson-haired girl")
                swapped = [paraphrase_prompt(p, self.drop["paraphrase_p"], self.gen, self.drop["paraphrases"])
                           for p in swapped]
        return prompts + swapped, Swap(torch.tensor(index, device=device), label, shift, recolor, old, new)

    def _recolor_kind(self, prompt: Tags) -> int:
        names = {tag_text(name) for name, _ in prompt}
        if names & self.keep:
            return UNCHANGED
        return LEAVE_OUT if names & self.characters else RECOLOR
