"""What the training prompts say: of the synthetic set's prompts after the config's cuts (tag_drop,
short_prompt, color_prompt; colour tags not reworded), how many name a hair colour but no character,
and whose they are.

    python -m textcolor.promptstats --config shipped_stage4
    python -m textcolor.promptstats --config shipped_stage4 tags.keep_roster=true

A nameless "purple_hair" cut from a roster character's prompt has that character's eyes and outfit
as its target; where such prompts are a large share, a colour tag learns to stand for a character.
Reads the tags as the data loader's renders would give them (synth.render_tags: nothing is drawn)
and draws the cuts with the prompt sampler train.py uses, seeded by --seed.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from textcolor import cli


def nameless_stats(cfg, n: int, seed: int = 0) -> dict:
    """Counts over the first n training samples (render seeds data.synth_seed + i) of cfg."""
    import torch

    from textcolor import synth
    from textcolor.prompts import PromptSampler
    from textcolor.tags import parse_prompt, tag_text
    from textcolor.vocab import load_colors

    d = cfg.data
    hair = {tag_text(t) for t in load_colors()["hair"]}
    drawn = [synth.render_tags(d.synth_seed + i, mono_frac=d.mono_frac, alt_style_frac=d.alt_style_frac,
                               costume_frac=d.costume_frac, accessory_weights=dict(d.accessory_weights))
             for i in range(n)]
    # the cuts decide whose prompt is nameless; rewording a colour tag would only hide it from the count
    sampler = PromptSampler(replace(cfg, tags=replace(cfg.tags, paraphrase=0.0)), torch.Generator().manual_seed(seed))
    prompts, _ = sampler([parse_prompt(", ".join(tags)) for _, tags in drawn], torch.device("cpu"), swaps=False)
    said = [{tag_text(t) for t, _ in p} for p in prompts]
    nameless = [ident for (ident, _), words in zip(drawn, said) if words & hair and not words & sampler.characters]
    roster = [i for i in nameless if i.tag != "original"]
    return {"samples": n, "nameless_hair_prompts": len(nameless), "from_roster": len(roster),
            "roster_share": len(roster) / len(nameless) if nameless else 0.0,
            "roster_eyes_match_hair": sum(i.eye_tag.split("_")[0] == i.hair_tag.split("_")[0] for i in roster)}


def main(argv: list[str] | None = None) -> int:
    p = cli.parser("textcolor-promptstats", __doc__)
    p.add_argument("--config", required=True, help="a training config (YAML file or bundled name)")
    p.add_argument("overrides", nargs="*", help="dotted key=value overrides, as train.py takes them")
    p.add_argument("--n", type=int, default=6000, help="training samples to read (default 6000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the prompt cuts")
    p.add_argument("--json", type=Path, help="also write the counts here")
    args = p.parse_args(argv)
    if args.n < 1:
        print("error: --n must be ≥ 1", file=sys.stderr)
        return 2
    return cli.run(lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from textcolor.config import load_config

    cfg = load_config(args.config, args.overrides)
    if cfg.data.source != "synth":
        raise cli.UsageError(f"data.source={cfg.data.source!r}: promptstats reads the synthetic set's tags")
    s = nameless_stats(cfg, args.n, args.seed)
    print(f"{s['nameless_hair_prompts']} of {s['samples']} training prompts name a hair colour and no character; "
          f"{s['from_roster']} ({100 * s['roster_share']:.0f}%) are a roster character's "
          f"({s['roster_eyes_match_hair']} of those with eyes of the hair's colour word)")
    if args.json:
        args.json.write_text(json.dumps(s, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
