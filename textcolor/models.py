"""Networks only: the tag-conditioned U-Net generator and the PatchGAN discriminator.

Shapes follow PyTorch: [B, C, H, W]. The generator sees the sketch (3 channels, grey replicated)
plus the tag conditioning, laid out per `tags.layout`:
    tile  : proj(e) ∈ R^k tiled over H×W            -> [B, 3+k, H, W]   (the mission's layout)
    plane : proj(e) ∈ R^k stretched into one plane   -> [B, 3+1, H, W]   (seed 004's variant)
    none  : plain pix2pix                            -> [B, 3,   H, W]
With `gen.film`, the same k values also pass through a small MLP whose output sets the scale and
shift after every norm of the U-Net (FiLM), so the tag acts at every level, not only at the input.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm

from textcolor.config import DiscriminatorConfig, GeneratorConfig, TagConfig, size_multiple

ACTIVATIONS = {
    "relu": lambda: nn.ReLU(inplace=True),
    "lrelu": lambda: nn.LeakyReLU(0.2, inplace=True),
    "selu": lambda: nn.SELU(inplace=True),
}


def make_norm(kind: str, ch: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(ch)
    if kind == "instance":
        return nn.InstanceNorm2d(ch, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; valid: batch, instance, none")


class FiLMNorm(nn.Module):
    """A norm whose per-channel scale and shift also follow the tag code (FiLM; conditional instance
    norm when the norm is instance). Instance norm subtracts every per-sample constant, so tag
    channels tiled at the input fade level by level; re-applying the tag after each norm keeps it
    in charge of the colour at every resolution."""

    takes_code = True

    def __init__(self, kind: str, ch: int, code_dim: int):
        super().__init__()
        self.norm = make_norm(kind, ch)
        self.film = nn.Linear(code_dim, 2 * ch)
        # zero start: the block begins as the unconditioned one and learns how much the tag moves it
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

    def forward(self, x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.film(code)[:, :, None, None].chunk(2, dim=1)  # [B, 2C] -> 2 × [B, C, 1, 1]
        norm = self.norm
        if not self.training and isinstance(norm, nn.BatchNorm2d) and norm.running_var is not None:
            # Eval-mode batch norm is a per-channel affine too: fold it into FiLM's, so the
            # activation is read and written once. At large sizes these passes are DRAM-bound.
            inv = torch.rsqrt(norm.running_var + norm.eps) * norm.weight                 # [C]
            scale = 1 + gamma                                                            # [B, C, 1, 1]
            shift = (norm.bias - norm.running_mean * inv)[:, None, None] * scale + beta
            return torch.addcmul(shift.to(x.dtype), x, (inv[:, None, None] * scale).to(x.dtype))
        return torch.addcmul(beta.to(x.dtype), norm(x), (1 + gamma).to(x.dtype))


def norm_layer(kind: str, ch: int, code_dim: int = 0) -> nn.Module:
    return FiLMNorm(kind, ch, code_dim) if code_dim else make_norm(kind, ch)


class CondSequential(nn.Sequential):
    """nn.Sequential that hands the tag code to the children that take one (same parameter names
    as nn.Sequential, so checkpoints without FiLM load unchanged)."""

    takes_code = True

    def forward(self, x: torch.Tensor, code: torch.Tensor | None = None) -> torch.Tensor:
        for m in self:
            x = m(x, code) if getattr(m, "takes_code", False) else m(x)
        return x


def conv_norm_act(cin: int, cout: int, norm: str, act: str, kernel: int = 3, stride: int = 1,
                  code_dim: int = 0) -> CondSequential:
    # a conv followed by a norm needs no bias: the norm's shift replaces it
    return CondSequential(
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2 if stride == 1 else (kernel - 1) // 2,
                  bias=norm == "none"),
        norm_layer(norm, cout, code_dim), ACTIVATIONS[act]())


class ResBlock(nn.Module):
    takes_code = True

    def __init__(self, ch: int, norm: str, act: str, dropout: float = 0.0, code_dim: int = 0):
        super().__init__()
        self.body = CondSequential(
            nn.Conv2d(ch, ch, 3, 1, 1, bias=norm == "none"), norm_layer(norm, ch, code_dim), ACTIVATIONS[act](),
            nn.Dropout(dropout) if dropout > 0 else nn.Identity(),
            nn.Conv2d(ch, ch, 3, 1, 1, bias=norm == "none"), norm_layer(norm, ch, code_dim))
        self.act = ACTIVATIONS[act]()

    def forward(self, x: torch.Tensor, code: torch.Tensor | None = None) -> torch.Tensor:
        return self.act(x + self.body(x, code))


class TagConditioning(nn.Module):
    """Tag embeddings -> k learned values -> extra input channels.

    `emb` is either one pooled vector per prompt, [B, E], or the prompt's tags one by one,
    [B, T, E+1], the last channel holding each tag's weight (0 = padding; see TagEncoder.embed_tokens).
    Per tag, the projection gives p_i = W e_i. Pooling (`tags.pool=attention`) weighs the tags by a
    learned score s_i = MLP(e_i): c = b + Σ_i w_i exp(s_i) p_i / Σ_i |w_i| exp(s_i). With s ≡ 0 this is
    the weighted mean of mean pooling; learned, a colour tag can outweigh nine other tags
    (`1girl, solo, long_hair, ...`), which mean pooling averages it with. The empty prompt is b.

    With `tags.heads` = H > 1, H such poolings run side by side, each with its own scores and its own
    projection W_h, and their outputs add up: c = b + Σ_h Σ_i a_hi W_h e_i (multi-head attention
    pooling with one query per head). One head's weights sum to 1 over the prompt, so one head
    cannot hear two colour tags at full strength: the shipped single head gave `red_hair, green_eyes`
    0.79 / 0.21 and the eyes came out blue. The extra heads start with W_h = 0 (the model begins as
    the single-head one, so a trained single-head model can be fine-tuned into H heads) and with
    small random scores (zero would give every extra head the same gradient forever).

    With `tags.tag_mlp` = M > 0, each tag's projection gains a residual MLP before pooling (first head):
    p_i = W e_i + U σ(V e_i). Sentence vectors are nearly additive ("red_hair" ≈ red + hair), so a
    linear W sends "red_hair, brown_eyes" and "brown_hair, red_eyes" to nearby codes, and with a hair
    tag in the prompt the irises took the hair's colour; per tag, a nonlinear map can put a hair
    colour and an eye colour in codes of their own. U starts at 0 (the model begins as the linear one,
    so a trained run can be fine-tuned into it).
    """

    def __init__(self, embed_dim: int, cfg: TagConfig):
        super().__init__()
        self.layout, self.k = cfg.layout, cfg.k
        self.proj = nn.Linear(embed_dim, cfg.k) if cfg.layout != "none" else None
        self.score = None
        if cfg.pool == "attention" and self.proj is not None:
            self.score = nn.Sequential(nn.Linear(embed_dim, cfg.attn_hidden), nn.Tanh(),
                                       nn.Linear(cfg.attn_hidden, 1))
            nn.init.zeros_(self.score[2].weight)  # zero start: begins as the weighted mean
            nn.init.zeros_(self.score[2].bias)  # (a shift of every score: no effect, never learns)
        self.heads = cfg.heads if self.score is not None else 1
        if self.heads > 1:
            self.extra_score = nn.Sequential(nn.Linear(embed_dim, cfg.attn_hidden), nn.Tanh(),
                                             nn.Linear(cfg.attn_hidden, self.heads - 1))
            nn.init.normal_(self.extra_score[2].weight, std=0.1)
            nn.init.zeros_(self.extra_score[2].bias)
            self.extra_proj = nn.Parameter(torch.zeros(self.heads - 1, cfg.k, embed_dim))
        self.tag_mlp = None
        if cfg.tag_mlp > 0 and self.proj is not None:
            self.tag_mlp = nn.Sequential(nn.Linear(embed_dim, cfg.tag_mlp), nn.GELU(), nn.Linear(cfg.tag_mlp, cfg.k))
            nn.init.zeros_(self.tag_mlp[2].weight)
            nn.init.zeros_(self.tag_mlp[2].bias)
        # A unit sentence embedding has coordinates of order 1/√E; scaled to order 1, the projection
        # starts at O(1) outputs and Adam moves them √E times faster. Unscaled, the k values stayed
        # ~0.07 after 6k steps: too faint beside the sketch for the network to read colour tags.
        self.scale = math.sqrt(embed_dim)

    @property
    def channels(self) -> int:
        return {"tile": self.k, "plane": 1, "none": 0}[self.layout]

    def head_attention(self, tokens: torch.Tensor) -> torch.Tensor:
        """[B, T, E+1] -> [B, H, T] signed pooling weights of each head (Σ_t |a| = 1, 0 for padding)."""
        vecs, w = tokens[..., :-1], tokens[..., -1]
        if self.score is None:
            s = torch.zeros_like(w)[:, None]                                         # [B, 1, T]
        else:
            s = self.score(vecs * self.scale)                                        # [B, T, 1]
            if self.heads > 1:
                s = torch.cat([s, self.extra_score(vecs * self.scale)], dim=-1)      # [B, T, H]
            s = s.transpose(1, 2)                                                    # [B, H, T]
        w = w[:, None]                                                               # [B, 1, T]
        s = s.masked_fill(w == 0, float("-inf"))
        top = s.amax(-1, keepdim=True)
        e = torch.exp(s - torch.where(torch.isfinite(top), top, torch.zeros_like(top)))  # 0 on padding
        return w * e / (w.abs() * e).sum(-1, keepdim=True).clamp_min(1e-12)

    def attention(self, tokens: torch.Tensor) -> torch.Tensor:
        """[B, T, E+1] -> [B, T]: the first head's weights (the only head unless tags.heads > 1)."""
        return self.head_attention(tokens)[:, 0]

    def vector(self, emb: torch.Tensor) -> torch.Tensor:
        """[B, E] or [B, T, E+1] -> [B, k]: the learned conditioning (what the notebook explores)."""
        if emb.dim() == 2:
            # one pooled vector: every head pools the same single "tag"
            c = self.proj(emb * self.scale)
            if self.heads > 1:
                c = c + torch.einsum("be,hke->bk", emb * self.scale, self.extra_proj)
            if self.tag_mlp is not None:
                c = c + self.tag_mlp(emb * self.scale)
            return c
        # the projection is linear: pool each head's vectors first, then project (cheap for long prompts)
        attn = self.head_attention(emb)                                              # [B, H, T]
        vecs = emb[..., :-1] * self.scale                                            # [B, T, E]
        pooled = torch.einsum("bht,bte->bhe", attn, vecs)                            # [B, H, E]
        c = self.proj(pooled[:, 0])                                                  # [B, k]
        if self.heads > 1:
            c = c + torch.einsum("bhe,hke->bk", pooled[:, 1:], self.extra_proj)
        if self.tag_mlp is not None:  # nonlinear: each tag through it first, then pooled
            c = c + torch.einsum("bt,btk->bk", attn[:, 0], self.tag_mlp(vecs))
        return c

    def forward(self, sketch: torch.Tensor, emb: torch.Tensor | None) -> torch.Tensor:
        return sketch if self.proj is None else self.tile(sketch, self.vector(emb))

    def planes(self, c: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """The conditioning [B, k] laid out as image planes: [B, k, H, W] (tile) or [B, 1, H, W] (plane)."""
        b = c.shape[0]
        if self.layout == "tile":
            return c[:, :, None, None].expand(b, self.k, h, w)                      # [B, k] -> [B, k, 1, 1] -> [B, k, H, W]
        return F.interpolate(c[:, None, None, :], size=(h, w), mode="nearest")     # [B, k] -> [B, 1, 1, k] -> [B, 1, H, W]

    def tile(self, sketch: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """sketch [B, 3, H, W] and the conditioning [B, k] -> the generator's input."""
        planes = self.planes(c.to(sketch.dtype), *sketch.shape[-2:])
        return torch.cat([sketch, planes], dim=1)                                  # [B, 3+k, H, W] (or 3+1)


class TagCrossAttention(nn.Module):
    """Each pixel of a decoder level reads the prompt's tags one by one: x + O(Σ_t a_t w_t V e_t),
    a_t = softmax_t(q(x) · K e_t / √d) over the prompt's tags and a learned "none" slot.

    The pooled code of TagConditioning reaches every pixel alike, so a hair colour tag can only steer
    the hair by the network telling hair pixels from others, and it moves the outfit and the irises
    with it (the locality and combo measures). Here a pixel picks which tags it hears: the hair can
    listen to `red_hair`, the irises to `blue_eyes`, the outfit to none of them. Padding (weight 0)
    is never heard; a tag's weight scales its value, as it scales its share of the pooled code.
    O starts at zero, so a trained model can be fine-tuned into it and begins unchanged."""

    def __init__(self, ch: int, embed_dim: int, dim: int):
        super().__init__()
        self.query = nn.Conv2d(ch, dim, 1)
        self.key = nn.Linear(embed_dim, dim)
        self.value = nn.Linear(embed_dim, ch)
        self.none_key = nn.Parameter(torch.zeros(dim))
        self.none_value = nn.Parameter(torch.zeros(ch))
        self.out = nn.Conv2d(ch, ch, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.scale = math.sqrt(embed_dim)   # unit sentence vectors -> O(1) inputs, as TagConditioning

    def attention(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """x [B, C, H, W], tokens [B, T, E+1] -> [B, H·W, T+1]: each pixel's weights over the tags
        and, last, the none slot (0 on padding; each pixel's row sums to 1)."""
        vecs, w = tokens[..., :-1] * self.scale, tokens[..., -1]
        q = self.query(x).flatten(2).transpose(1, 2)                                 # [B, HW, d]
        k = torch.cat([self.key(vecs), self.none_key.expand(len(x), 1, -1)], dim=1)  # [B, T+1, d]
        logits = q @ k.transpose(1, 2) / math.sqrt(q.shape[-1])                      # [B, HW, T+1]
        present = torch.cat([w != 0, w.new_ones(len(x), 1, dtype=torch.bool)], dim=1)  # [B, T+1]
        return logits.masked_fill(~present[:, None], float("-inf")).softmax(-1)

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        vecs, w = tokens[..., :-1] * self.scale, tokens[..., -1:]
        v = torch.cat([self.value(vecs) * w, self.none_value.expand(len(x), 1, -1)], dim=1)  # [B, T+1, C]
        a = self.attention(x, tokens).to(x.dtype)
        heard = (a @ v.to(x.dtype)).transpose(1, 2).reshape(x.shape)                 # [B, C, H, W]
        return x + self.out(heard)


class Generator(nn.Module):
    """U-Net with ResBlocks; skips join mirrored levels; nearest upsample -> conv (no transposed conv).

    gen.stem=conv: the U-Net's top level runs at the input resolution (seed 000's layout).
    gen.stem=unshuffle: the whole [B, 3+k, H, W] input is folded space-to-depth by f = stem_factor
    (a lossless rearrangement: every line pixel reaches the network) and the U-Net runs at H/f; its
    output is pixel-shuffled back to H, joined with the full-resolution sketch, and two 3×3 convs
    there draw colour edges on the lines. A 256-px sketch then costs about what a 64-px one did.
    """

    def __init__(self, cfg: GeneratorConfig, tags: TagConfig, embed_dim: int):
        super().__init__()
        self.depth = cfg.depth
        self.multiple = size_multiple(cfg)
        self.embed_dim = embed_dim
        self.cond = TagConditioning(embed_dim, tags)
        chs = [min(cfg.base * 2 ** i, cfg.max_ch) for i in range(cfg.depth + 1)]
        n, a = cfg.norm, cfg.act
        # FiLM: the k tag values -> a small MLP -> a code that sets every norm's scale and shift
        cd = cfg.film_hidden if cfg.film else 0
        self.mapping = nn.Sequential(nn.Linear(tags.k, cd), ACTIVATIONS["lrelu"](),
                                     nn.Linear(cd, cd), ACTIVATIONS["lrelu"]()) if cd else None
        # The stem has no norm: a norm right after it would subtract the per-sample constant that the
        # tiled tag channels contribute (instance norm removes it entirely).
        cin = 3 + self.cond.channels
        f = cfg.stem_factor if cfg.stem == "unshuffle" else 1
        if f > 1:
            self.stem = nn.Sequential(nn.PixelUnshuffle(f), nn.Conv2d(cin * f * f, chs[0], 1), ACTIVATIONS[a]())
        else:
            self.stem = nn.Sequential(nn.Conv2d(cin, chs[0], 3, 1, 1), ACTIVATIONS[a]())
        self.enc = nn.ModuleList(
            CondSequential(*[ResBlock(chs[i], n, a, code_dim=cd) for _ in range(cfg.res_blocks)])
            for i in range(cfg.depth))
        self.down = nn.ModuleList(conv_norm_act(chs[i], chs[i + 1], n, a, 4, 2, cd) for i in range(cfg.depth))
        self.mid = CondSequential(*[ResBlock(chs[-1], n, a, code_dim=cd) for _ in range(cfg.bottleneck_blocks)])
        self.up = nn.ModuleList(conv_norm_act(chs[i + 1], chs[i], n, a, code_dim=cd) for i in range(cfg.depth))
        self.fuse = nn.ModuleList(conv_norm_act(2 * chs[i], chs[i], n, a, 1, code_dim=cd) for i in range(cfg.depth))
        # pix2pix's noise: dropout in the three deepest decoder levels
        self.dec = nn.ModuleList(
            CondSequential(*[ResBlock(chs[i], n, a, cfg.dropout if i >= cfg.depth - 3 else 0.0, cd)
                             for _ in range(cfg.res_blocks)]) for i in range(cfg.depth))
        # decoder levels whose pixels also read the tags one by one (0 = the finest grid)
        self.tag_attn = nn.ModuleDict({str(i): TagCrossAttention(chs[i], embed_dim, cfg.tag_attn_dim)
                                       for i in cfg.tag_attn_levels}) if self.cond.proj is not None else nn.ModuleDict()
        if f > 1:
            h = cfg.head_ch
            self.unfold = nn.Sequential(nn.Conv2d(chs[0], h * f * f, 1), nn.PixelShuffle(f), ACTIVATIONS[a]())
            self.head = nn.Sequential(nn.Conv2d(h + 3, h, 3, 1, 1), ACTIVATIONS[a](), nn.Conv2d(h, 3, 3, 1, 1))
        else:
            self.unfold = None
            self.head = nn.Conv2d(chs[0], 3, 3, 1, 1)

    def forward(self, sketch: torch.Tensor, emb: torch.Tensor | None = None,
                detach_tags_from: int | None = None, return_tags: bool = False):
        """sketch [B, 3, H, W] in [-1, 1], emb [B, E] or [B, T, E+1] -> colour [B, 3, H, W] in [-1, 1].
        Rows from `detach_tags_from` on get their conditioning detached: their losses train the
        network, not the tag pooling and projection (the training's locality rows). With
        `return_tags`, (colour, the conditioning [B, k] or None): the training step shows the same
        values to D without computing them again."""
        if sketch.shape[-1] % self.multiple or sketch.shape[-2] % self.multiple:
            raise ValueError(f"input size {tuple(sketch.shape[-2:])} must be divisible by {self.multiple}")
        c = self.cond.vector(emb) if self.cond.proj is not None else None                # [B, k], once
        if c is not None and detach_tags_from is not None:
            c = torch.cat([c[:detach_tags_from], c[detach_tags_from:].detach()])
        x = self.encode_input(sketch, c)                                                 # [B, C0, H/f, W/f]
        tokens = None
        if len(self.tag_attn):
            # a pooled prompt [B, E] is one tag of weight 1
            tokens = emb if emb.dim() == 3 else F.pad(emb, (0, 1), value=1.0)[:, None]   # [B, T, E+1]
        code = self.mapping(c) if self.mapping is not None else None                     # [B, film_hidden]
        skips = []
        for enc, down in zip(self.enc, self.down):
            x = enc(x, code)
            skips.append(x)
            x = down(x, code)
        x = self.mid(x, code)
        for i in reversed(range(self.depth)):
            x = self.up[i](F.interpolate(x, scale_factor=2, mode="nearest"), code)
            x = self.fuse[i](torch.cat([x, skips[i]], dim=1), code)  # [B, 2·C_i, H_i, W_i] -> [B, C_i, H_i, W_i]
            x = self.dec[i](x, code)
            if str(i) in self.tag_attn:
                x = self.tag_attn[str(i)](x, tokens)
        if self.unfold is not None:
            x = torch.cat([self.unfold(x), sketch.to(x.dtype)], dim=1)  # [B, head_ch + 3, H, W]
        out = torch.tanh(self.head(x))
        return (out, c) if return_tags else out

    def encode_input(self, sketch: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        """The stem on the tiled input [B, 3+k, H, W]. With the unshuffle stem the tiled tag channels
        are constant over each f×f block, so the 1×1 conv over them is a per-sample bias: computed
        as that (the same function, same weights), it skips unshuffling and convolving k·f² constant
        channels at full size (`python -m textcolor.bench --recipe-step CONFIG` times both forms)."""
        if c is None or not isinstance(self.stem[0], nn.PixelUnshuffle) or self.cond.layout != "tile":
            return self.stem(sketch if c is None else self.cond.tile(sketch, c))
        unshuffle, conv = self.stem[0], self.stem[1]
        blocks = unshuffle.downscale_factor ** 2
        w = conv.weight.view(conv.out_channels, 3 + self.cond.k, blocks)            # in-channel = ch · f² + offset
        lines = F.conv2d(unshuffle(sketch), w[:, :3].reshape(conv.out_channels, 3 * blocks, 1, 1), conv.bias)
        tags = c.to(sketch.dtype) @ w[:, 3:].sum(-1).T.to(sketch.dtype)            # [B, C0]
        return self.stem[2:](lines + tags[:, :, None, None])


class PatchDiscriminator(nn.Module):
    """PatchGAN on the (sketch, colour) pair; `layers`=3 gives the 70×70 receptive field."""

    def __init__(self, cfg: DiscriminatorConfig, cond_channels: int = 0):
        super().__init__()
        if cfg.norm == "batch":
            raise ValueError("batch-norm in D is refused: the gradient penalty is per-sample")
        sn = spectral_norm if cfg.norm == "spectral" else (lambda m: m)
        norm = "instance" if cfg.norm == "instance" else "none"
        self.cond_channels = cond_channels
        ch = cfg.base
        layers: list[nn.Module] = [sn(nn.Conv2d(6 + cond_channels, ch, 4, 2, 1)), nn.LeakyReLU(0.2, True)]
        for i in range(1, cfg.layers + 1):
            stride = 2 if i < cfg.layers else 1
            nxt = min(cfg.base * 2 ** i, cfg.base * 8)
            layers += [sn(nn.Conv2d(ch, nxt, 4, stride, 1, bias=norm == "none")), make_norm(norm, nxt),
                       nn.LeakyReLU(0.2, True)]
            ch = nxt
        layers.append(sn(nn.Conv2d(ch, 1, 4, 1, 1)))
        self.net = nn.Sequential(*layers)

    def forward(self, sketch: torch.Tensor, image: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """[B, 3, H, W] ×2 (+ [B, c, H, W]) -> patch logits [B, 1, h, w]."""
        x = [sketch, image] if cond is None else [sketch, image, cond]
        return self.net(torch.cat(x, dim=1))


def receptive_field(cfg: DiscriminatorConfig) -> int:
    """Receptive field of one output patch, in input pixels (70 for layers=3)."""
    rf, jump = 1, 1
    strides = [2] * cfg.layers + [1, 1]
    for s in strides:
        rf += 3 * jump  # kernel 4 -> adds (4-1)·jump
        jump *= s
    return rf


def build_models(cfg, embed_dim: int) -> tuple[Generator, PatchDiscriminator]:
    g = Generator(cfg.gen, cfg.tags, embed_dim)
    cond_ch = g.cond.channels if cfg.disc.cond_tags else 0
    return g, PatchDiscriminator(cfg.disc, cond_ch)
