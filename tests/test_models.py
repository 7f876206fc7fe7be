"""Model contracts: shapes, range, conditioning layouts, receptive field, gradients."""
import pytest
import torch

from textcolor.config import DiscriminatorConfig, GeneratorConfig, TagConfig, load_config
from textcolor.models import FiLMNorm, Generator, PatchDiscriminator, TagConditioning, receptive_field

E = 12


def small_g(layout="tile", k=4, **kw):
    return Generator(GeneratorConfig(base=8, depth=3, max_ch=32, **kw), TagConfig(layout=layout, k=k), E)


@pytest.mark.parametrize("size", [(32, 32), (64, 48), (16, 80)])
def test_unet_shapes_any_divisible_size(size):
    torch.manual_seed(0)
    g = small_g().eval()
    out = g(torch.rand(2, 3, *size) * 2 - 1, torch.randn(2, E))
    assert out.shape == (2, 3, *size)
    assert out.abs().max() <= 1 and torch.isfinite(out).all()


def test_unet_refuses_indivisible_size():
    with pytest.raises(ValueError, match="divisible by 8"):
        small_g()(torch.zeros(1, 3, 36, 36), torch.zeros(1, E))


def test_tile_equals_explicit_constant_planes():
    torch.manual_seed(0)
    cond = TagConditioning(E, TagConfig(layout="tile", k=5))
    sketch, emb = torch.randn(3, 3, 8, 6), torch.randn(3, E)
    c = cond.vector(emb)
    planes = [torch.full((3, 1, 8, 6), 0.0) + c[:, i].view(3, 1, 1, 1) for i in range(5)]
    expected = torch.cat([sketch] + planes, dim=1)
    assert torch.equal(cond(sketch, emb), expected)


def test_plane_layout_is_one_channel_stretching_the_vector():
    cond = TagConditioning(E, TagConfig(layout="plane", k=4))
    out = cond(torch.zeros(2, 3, 4, 8), torch.randn(2, E))
    assert out.shape == (2, 4, 4, 8)
    plane = out[:, 3]
    assert torch.equal(plane[:, 0], plane[:, 3])               # constant down columns
    assert torch.equal(plane[:, :, 0], plane[:, :, 1])         # each value spans 8/4 = 2 columns


def test_none_layout_is_plain_pix2pix():
    g = small_g(layout="none")
    assert g.stem[0].in_channels == 3
    out = g(torch.zeros(1, 3, 16, 16), None)
    assert out.shape == (1, 3, 16, 16)


def test_changing_tags_changes_output_and_null_is_deterministic():
    torch.manual_seed(0)
    g = small_g().eval()
    s = torch.rand(1, 3, 16, 16)
    a, b = g(s, torch.randn(1, E)), g(s, torch.randn(1, E))
    assert (a - b).abs().max() > 1e-4
    assert torch.equal(g(s, torch.zeros(1, E)), g(s, torch.zeros(1, E)))


@pytest.mark.parametrize("norm,act,film", [("batch", "relu", False), ("instance", "lrelu", False),
                                           ("none", "selu", False), ("instance", "lrelu", True)])
def test_every_parameter_gets_a_gradient(norm, act, film):
    torch.manual_seed(0)
    g = small_g(norm=norm, act=act, dropout=0.5, film=film, film_hidden=6)
    if film:  # from their zero start, FiLM layers pass no gradient to the mapping: move them off it
        for m in g.modules():
            if isinstance(m, FiLMNorm):
                torch.nn.init.normal_(m.film.weight, std=0.1)
    d = PatchDiscriminator(DiscriminatorConfig(base=8, layers=2))
    s = torch.rand(2, 3, 32, 32)
    out = g(s, torch.randn(2, E))
    (d(s, out).mean() + out.mean()).backward()
    for name, p in list(g.named_parameters()) + list(d.named_parameters()):
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_patchgan_receptive_field_and_output():
    assert receptive_field(DiscriminatorConfig(layers=3)) == 70
    d = PatchDiscriminator(DiscriminatorConfig(base=8, layers=3))
    assert d(torch.zeros(2, 3, 256, 256), torch.zeros(2, 3, 256, 256)).shape == (2, 1, 30, 30)
    # empirical RF (without instance norm, whose statistics are global): one output patch depends
    # on a window of exactly 70 input columns
    d = PatchDiscriminator(DiscriminatorConfig(base=8, layers=3, norm="none"))
    x = torch.rand(1, 3, 128, 128, requires_grad=True)
    out = d(torch.rand(1, 3, 128, 128), x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    cols = (x.grad.abs().sum((0, 1, 2)) > 0).nonzero()
    assert cols.max() - cols.min() + 1 == 70


def test_batchnorm_in_discriminator_is_refused():
    with pytest.raises(ValueError, match="per-sample"):
        PatchDiscriminator(DiscriminatorConfig(norm="batch"))
    from textcolor.config import ConfigError
    with pytest.raises(ConfigError, match="disc.norm=batch is refused"):
        load_config(None, ["disc.norm=batch"])


def test_spectral_norm_discriminator_runs():
    d = PatchDiscriminator(DiscriminatorConfig(base=8, layers=2, norm="spectral"))
    assert torch.isfinite(d(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32))).all()


def test_film_starts_as_the_plain_unet_and_then_follows_the_tag():
    """Zero-initialised FiLM is the identity: with the plain U-Net's weights copied in, both give
    the same image; once FiLM weights move, a tag change alters the output beyond the input tiling."""
    torch.manual_seed(0)
    film = small_g(norm="instance", act="lrelu", film=True, film_hidden=6).eval()
    plain = small_g(norm="instance", act="lrelu").eval()
    state = {k.replace(".norm.", "."): v for k, v in film.state_dict().items()
             if ".film." not in k and not k.startswith("mapping.")}
    plain.load_state_dict(state)                       # strict: the names map one to one
    s, e = torch.rand(2, 3, 32, 32), torch.randn(2, E)
    torch.testing.assert_close(film(s, e), plain(s, e), rtol=0, atol=1e-6)
    norms = [m for m in film.modules() if isinstance(m, FiLMNorm)]
    assert len(norms) == sum(isinstance(m, torch.nn.InstanceNorm2d) for m in plain.modules())
    for m in norms:
        torch.nn.init.normal_(m.film.weight, std=0.5)
    with torch.no_grad():
        film.cond.proj.weight.zero_()                  # input tiles no longer see the tag ...
    a, b = film(s, e), film(s, torch.randn(2, E))
    assert (a - b).abs().max() < 1e-6                  # ... and with proj zeroed, neither does FiLM
    with torch.no_grad():
        film.cond.proj.weight.normal_()
        film.stem[0].weight[:, 3:].zero_()             # tiles cut at the stem: only FiLM carries the tag
    assert (film(s, e) - film(s, torch.randn(2, E))).abs().max() > 1e-3


def test_film_without_tags_is_refused():
    from textcolor.config import ConfigError
    with pytest.raises(ConfigError, match="gen.film"):
        load_config("configs/demo.yaml", ["gen.film=true", "tags.layout=none"])


def test_film_eval_fold_equals_norm_then_affine():
    """In eval mode FiLMNorm folds batch norm's running statistics into FiLM's scale and shift (one
    pass over the activation): same numbers as the norm followed by the affine, in either layout."""
    torch.manual_seed(0)
    m = FiLMNorm("batch", 5, code_dim=3)
    with torch.no_grad():
        m.norm.running_mean.normal_()
        m.norm.running_var.uniform_(0.5, 2.0)
        m.norm.weight.normal_()
        m.norm.bias.normal_()
        m.film.weight.normal_()
        m.film.bias.normal_()
    m.eval()
    x, code = torch.randn(2, 5, 6, 7), torch.randn(2, 3)
    gamma, beta = m.film(code)[:, :, None, None].chunk(2, dim=1)
    want = m.norm(x) * (1 + gamma) + beta
    torch.testing.assert_close(m(x, code), want, rtol=1e-5, atol=1e-5)
    got_cl = m(x.contiguous(memory_format=torch.channels_last), code)
    torch.testing.assert_close(got_cl, want, rtol=1e-5, atol=1e-5)
    m.train()                                          # training uses the batch's own statistics
    torch.testing.assert_close(m(x, code), m.norm(x) * (1 + gamma) + beta, rtol=1e-5, atol=1e-5)


# --- the unshuffle stem: the whole full-resolution input, the U-Net at size / f ---------------------

def unshuffle_g(k=4, pool="mean", f=4, heads=1, tag_mlp=0, depth=2, **kw):
    return Generator(GeneratorConfig(base=16, depth=depth, max_ch=32, stem="unshuffle", stem_factor=f, head_ch=4, **kw),
                     TagConfig(layout="tile", k=k, pool=pool, attn_hidden=8, heads=heads, tag_mlp=tag_mlp), E)


@pytest.mark.parametrize("f, depth, multiple", [(4, 2, 16), (2, 3, 16), (2, 2, 8)])
@pytest.mark.parametrize("size", [(64, 64), (32, 96), (128, 80)])
def test_unshuffle_stem_shapes_at_several_sizes(size, f, depth, multiple):
    """stem_factor 4 (the shipped 64-px grid at 256) and 2 with one more level (recipe v3's 128-px grid)."""
    torch.manual_seed(0)
    g = unshuffle_g(f=f, depth=depth).eval()
    assert g.multiple == multiple
    out = g(torch.rand(2, 3, *size) * 2 - 1, torch.randn(2, E))
    assert out.shape == (2, 3, *size) and out.abs().max() <= 1 and torch.isfinite(out).all()
    with pytest.raises(ValueError, match=f"divisible by {multiple}"):
        g(torch.zeros(1, 3, 60, 64), torch.zeros(1, E))


def test_unshuffle_stem_loses_no_line_pixel():
    """Space-to-depth is a bijection, and the stem's 1×1 conv maps the f² sketch pixels of a block
    through a matrix of full column rank: any single line pixel, anywhere, changes the stem output."""
    torch.manual_seed(0)
    g = unshuffle_g(f=4)
    x = torch.arange(2 * 7 * 32 * 32, dtype=torch.float32).reshape(2, 7, 32, 32)
    torch.testing.assert_close(torch.nn.functional.pixel_shuffle(g.stem[0](x), 4), x, rtol=0, atol=0)
    conv = g.stem[1]
    # the sketch is grey ×3: its effective matrix sums the 3 copies -> [C0, f²]
    w = conv.weight[:, :3 * 16, 0, 0].reshape(conv.out_channels, 3, 16).sum(1)
    assert torch.linalg.matrix_rank(w) == 16
    paper, emb = torch.ones(1, 3, 32, 32), torch.zeros(1, E)
    base = g.stem(g.cond(paper, emb))
    with torch.no_grad():
        for y in range(32):
            for x_ in range(32):
                s = paper.clone()
                s[..., y, x_] = -1                     # one line pixel
                assert (g.stem(g.cond(s, emb)) - base).abs().max() > 1e-6, (y, x_)


@pytest.mark.parametrize("f", [2, 4])
def test_unshuffle_stem_on_the_tiled_input_equals_its_per_sample_bias_form(f):
    """encode_input skips the constant tag channels (a per-sample bias): same values and gradients
    as the stem run on the explicit [B, 3+k, H, W] input."""
    torch.manual_seed(0)
    g = unshuffle_g(k=5, f=f, depth=2)
    sketch = torch.rand(3, 3, 32, 48) * 2 - 1
    c = torch.randn(3, 5, requires_grad=True)
    fast = g.encode_input(sketch, c)
    slow = g.stem(g.cond.tile(sketch, c))
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-5)
    weights = [c, g.stem[1].weight, g.stem[1].bias]
    target = torch.randn_like(slow)
    grads_fast = torch.autograd.grad((fast * target).sum(), weights)
    grads_slow = torch.autograd.grad((slow * target).sum(), weights)
    for a, b in zip(grads_fast, grads_slow):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_unshuffle_head_sees_the_full_resolution_sketch():
    """Colour edges follow lines finer than the U-Net's grid: the head reads the sketch at full size."""
    torch.manual_seed(0)
    g = unshuffle_g().eval()
    paper = torch.ones(1, 3, 64, 64)
    line = paper.clone()
    line[..., 10, :] = -1
    a, b = g(paper, torch.zeros(1, E)), g(line, torch.zeros(1, E))
    assert (a - b).abs().max() > 1e-4


def test_unshuffle_every_parameter_gets_a_gradient_with_attention_pooling():
    torch.manual_seed(0)
    g = unshuffle_g(pool="attention", film=True, film_hidden=6, norm="instance", act="lrelu")
    for m in g.modules():
        if isinstance(m, FiLMNorm):
            torch.nn.init.normal_(m.film.weight, std=0.1)
    torch.nn.init.normal_(g.cond.score[2].weight, std=0.5)   # off its zero start, as after a step
    tokens = torch.randn(2, 3, E + 1)
    tokens[..., -1] = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.5, 2.0]])
    out = g(torch.rand(2, 3, 32, 32), tokens)
    out.mean().backward()
    for name, p in g.named_parameters():
        if name == "cond.score.2.bias":   # one constant added to every score cancels in the softmax
            assert p.grad is None or p.grad.abs().max() < 1e-6
            continue
        assert p.grad is not None and p.grad.abs().sum() > 0, name


# --- attention pooling over per-tag vectors -------------------------------------------------------

def attention_cond(k=6):
    torch.manual_seed(0)
    cond = TagConditioning(E, TagConfig(layout="tile", k=k, pool="attention", attn_hidden=8))
    torch.nn.init.normal_(cond.score[2].weight, std=1.0)
    return cond


def tokens_of(vectors, weights):
    """[T, E] vectors and [T] weights -> one prompt [1, T, E+1] (as TagEncoder.embed_tokens gives)."""
    return torch.cat([vectors, torch.as_tensor(weights, dtype=torch.float32)[:, None]], 1)[None]


def test_attention_pool_at_zero_score_is_mean_pooling():
    from textcolor.tags import pool_vectors
    cond = TagConditioning(E, TagConfig(layout="tile", k=5, pool="attention"))     # zero start
    v, w = torch.randn(4, E), torch.tensor([1.0, 2.0, 0.5, 1.0])
    torch.testing.assert_close(cond.vector(tokens_of(v, w)), cond.vector(pool_vectors(v, w)[None]))


def test_attention_pool_empty_prompt_padding_and_weights():
    cond = attention_cond()
    v = torch.randn(3, E)
    # the empty prompt (all padding) is the projection's bias: the null conditioning
    torch.testing.assert_close(cond.vector(torch.zeros(1, 1, E + 1)), cond.proj.bias[None])
    torch.testing.assert_close(cond.vector(torch.zeros(2, 5, E + 1)), cond.proj.bias[None].expand(2, -1))
    # padding changes nothing
    padded = torch.cat([tokens_of(v, [1, 1, 1]), torch.zeros(1, 4, E + 1)], 1)
    torch.testing.assert_close(cond.vector(padded), cond.vector(tokens_of(v, [1, 1, 1])))
    # a weight of 2 is the tag written twice
    twice = tokens_of(torch.stack([v[0], v[0], v[1]]), [1, 1, 1])
    torch.testing.assert_close(cond.vector(tokens_of(v[:2], [2, 1])), cond.vector(twice))
    # a lone tag gets all the attention, whatever its score
    torch.testing.assert_close(cond.vector(tokens_of(v[:1], [1])), cond.proj(v[:1] * cond.scale))
    a = cond.attention(tokens_of(v, [1, -1, 1]))
    assert torch.isclose(a.abs().sum(), torch.tensor(1.0)) and a[0, 1] < 0


def test_attention_pool_lets_a_tag_outweigh_many():
    """With mean pooling a tag is 1/10 of a ten-tag prompt; a learned score can give it most of it."""
    cond = attention_cond()
    v = torch.eye(E)[:10]                                       # ten orthonormal tag vectors
    with torch.no_grad():
        cond.score[0].weight.zero_(); cond.score[0].bias.zero_(); cond.score[2].weight.zero_()
        cond.score[0].weight[0] = v[3] * 2 / cond.scale         # hidden unit 0 fires on tag 3 only
        cond.score[2].weight[0, 0] = 8.0
    a = cond.attention(tokens_of(v, [1] * 10))[0]
    assert a.argmax() == 3 and a[3] > 0.5


def test_attention_pool_handles_a_200_tag_prompt_and_huge_weights():
    cond = attention_cond()
    out = cond.vector(tokens_of(torch.randn(200, E), torch.linspace(-100, 100, 200)))
    assert out.shape == (1, 6) and torch.isfinite(out).all()


# --- several attention heads ----------------------------------------------------------------------

def heads_cond(heads=3, k=6):
    torch.manual_seed(0)
    return TagConditioning(E, TagConfig(layout="tile", k=k, pool="attention", attn_hidden=8, heads=heads))


def test_extra_heads_start_as_the_single_head_model():
    """Extra heads begin silent (W_h = 0): a trained one-head model fine-tuned into H heads starts
    exactly where it was."""
    one, three = heads_cond(heads=1), heads_cond(heads=3)
    three.load_state_dict(one.state_dict(), strict=False)
    tokens = tokens_of(torch.randn(4, E), [1, 2, 0.5, 1])
    torch.testing.assert_close(three.vector(tokens), one.vector(tokens))
    assert three.head_attention(tokens).shape == (1, 3, 4)


def test_heads_weigh_the_tags_independently_and_sum():
    cond = heads_cond(heads=2)
    v = torch.eye(E)[:4]
    with torch.no_grad():
        cond.extra_proj.normal_()
        for score, tag in ((cond.score, 1), (cond.extra_score, 3)):   # head 0 hears tag 1, head 1 tag 3
            score[0].weight.zero_(); score[0].bias.zero_(); score[2].weight.zero_()
            score[0].weight[0] = v[tag] * 2 / cond.scale
            score[2].weight[:, 0] = 12.0
    tokens = tokens_of(v, [1, 1, 1, 1])
    a = cond.head_attention(tokens)[0]                                # [H, T]
    assert a[0].argmax() == 1 and a[1].argmax() == 3 and a[0, 1] > 0.9 and a[1, 3] > 0.9
    torch.testing.assert_close(a.abs().sum(-1), torch.ones(2))
    # c = b + W_0 Σ a_0i e_i + W_1 Σ a_1i e_i, computed by hand
    s = cond.scale
    want = cond.proj((a[0] @ v) * s) + cond.extra_proj[0] @ ((a[1] @ v) * s)
    torch.testing.assert_close(cond.vector(tokens), want[None])
    torch.testing.assert_close(cond.attention(tokens), a[None, 0])   # the first head, as notebooks read it


def test_heads_empty_prompt_weights_padding_and_a_200_tag_prompt():
    cond = heads_cond(heads=4)
    with torch.no_grad():
        cond.extra_proj.normal_()
    v = torch.randn(3, E)
    torch.testing.assert_close(cond.vector(torch.zeros(2, 5, E + 1)), cond.proj.bias[None].expand(2, -1))
    padded = torch.cat([tokens_of(v, [1, 1, 1]), torch.zeros(1, 4, E + 1)], 1)
    torch.testing.assert_close(cond.vector(padded), cond.vector(tokens_of(v, [1, 1, 1])))
    twice = tokens_of(torch.stack([v[0], v[0], v[1]]), [1, 1, 1])
    torch.testing.assert_close(cond.vector(tokens_of(v[:2], [2, 1])), cond.vector(twice))
    out = cond.vector(tokens_of(torch.randn(200, E), torch.linspace(-100, 100, 200)))
    assert out.shape == (1, 6) and torch.isfinite(out).all()


def test_heads_generator_trains_every_head():
    torch.manual_seed(0)
    g = unshuffle_g(pool="attention", heads=3, film=True, film_hidden=6)
    tokens = torch.randn(2, 3, E + 1)
    tokens[..., -1] = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.5, 2.0]])
    g(torch.rand(2, 3, 32, 32), tokens).mean().backward()
    assert g.cond.extra_proj.grad.abs().sum() > 0
    with torch.no_grad():
        g.cond.extra_proj.normal_()
    g.zero_grad()
    g(torch.rand(2, 3, 32, 32), tokens).mean().backward()
    assert g.cond.extra_score[2].weight.grad.abs().sum() > 0


def test_detached_tag_rows_train_the_network_not_the_pooling():
    torch.manual_seed(0)
    # instance norm: under batch norm, rows also meet through the batch statistics
    g = unshuffle_g(pool="attention", heads=2, film=True, film_hidden=6, norm="instance")
    with torch.no_grad():
        g.cond.extra_proj.normal_()
        for m in g.modules():
            if isinstance(m, FiLMNorm):                                  # off FiLM's zero start
                m.film.weight.normal_(std=0.1)
    tokens = torch.randn(4, 3, E + 1)
    tokens[..., -1] = 1.0
    x = torch.rand(4, 3, 32, 32)
    torch.testing.assert_close(g(x, tokens, detach_tags_from=2), g(x, tokens))   # same values
    g(x, tokens, detach_tags_from=2)[2:].mean().backward()                      # a loss on rows 2, 3 only
    cond = [p.grad for n, p in g.named_parameters() if n.startswith("cond.")]
    assert all(grad is None or grad.abs().max() == 0 for grad in cond)
    assert g.mapping[0].weight.grad.abs().sum() > 0 and g.stem[1].weight.grad.abs().sum() > 0
    g.zero_grad()
    g(x, tokens, detach_tags_from=2)[:2].mean().backward()                      # rows before: as ever
    assert g.cond.proj.weight.grad.abs().sum() > 0


# --- per-tag MLP before pooling ----------------------------------------------------------------

def mlp_cond(tag_mlp=10, k=6, pool="attention"):
    torch.manual_seed(0)
    return TagConditioning(E, TagConfig(layout="tile", k=k, pool=pool, attn_hidden=8, tag_mlp=tag_mlp))


def test_tag_mlp_starts_as_the_linear_model():
    """U = 0 at the start: a trained linear-projection model fine-tuned into the MLP starts where it was."""
    linear, mlp = mlp_cond(tag_mlp=0), mlp_cond(tag_mlp=10)
    mlp.load_state_dict(linear.state_dict(), strict=False)
    tokens = tokens_of(torch.randn(4, E), [1, 2, 0.5, 1])
    torch.testing.assert_close(mlp.vector(tokens), linear.vector(tokens))


def test_tag_mlp_maps_each_tag_before_pooling():
    """c = b + Σ a_i (W e_i + MLP(e_i)): computed by hand; not the MLP of the pooled vector, so
    swapping which tag carries which colour ("red + hair, blue + eyes" vs "blue + hair, red + eyes")
    can change c even where the tag vectors are exactly additive."""
    cond = mlp_cond()
    with torch.no_grad():
        cond.tag_mlp[2].weight.normal_()
        cond.score[2].weight.normal_()
    v = torch.randn(3, E)
    tokens = tokens_of(v, [1, 0.5, 2])
    a = cond.attention(tokens)[0]                                       # [T]
    s = cond.scale
    want = cond.proj((a @ v) * s) + a @ cond.tag_mlp(v * s)
    torch.testing.assert_close(cond.vector(tokens), want[None])
    red, blue, hair, eyes = torch.randn(4, E)
    linear = mlp_cond(tag_mlp=0)
    linear.load_state_dict({k: t for k, t in cond.state_dict().items() if not k.startswith("tag_mlp")})
    with torch.no_grad():
        linear.score[2].weight.zero_()                                  # equal shares: the linear codes coincide
        cond.score[2].weight.zero_()
    one_l = linear.vector(tokens_of(torch.stack([red + hair, blue + eyes]), [1, 1]))
    other_l = linear.vector(tokens_of(torch.stack([blue + hair, red + eyes]), [1, 1]))
    torch.testing.assert_close(one_l, other_l)
    one = cond.vector(tokens_of(torch.stack([red + hair, blue + eyes]), [1, 1]))
    other = cond.vector(tokens_of(torch.stack([blue + hair, red + eyes]), [1, 1]))
    assert (one - other).abs().max() > 1e-2


def test_tag_mlp_empty_prompt_pooled_vectors_and_training():
    cond = mlp_cond()
    torch.testing.assert_close(cond.vector(torch.zeros(2, 5, E + 1)), cond.proj.bias[None].expand(2, -1))
    pooled = mlp_cond(pool="mean")                                       # a pooled [B, E] input: W e + MLP(e)
    with torch.no_grad():
        pooled.tag_mlp[2].weight.normal_()
    e = torch.randn(2, E)
    torch.testing.assert_close(pooled.vector(e), pooled.proj(e * pooled.scale) + pooled.tag_mlp(e * pooled.scale))
    g = unshuffle_g(pool="attention", film=True, film_hidden=6, tag_mlp=7)
    tokens = torch.randn(2, 3, E + 1)
    tokens[..., -1] = 1.0
    g(torch.rand(2, 3, 32, 32), tokens).mean().backward()
    assert g.cond.tag_mlp[2].weight.grad.abs().sum() > 0               # the zero start still learns


def test_tag_mlp_width_is_validated():
    from textcolor.config import ConfigError
    with pytest.raises(ConfigError, match="tag_mlp"):
        load_config(None, ["tags.tag_mlp=-1"])


# --- per-pixel attention over the tags (gen.tag_attn_levels) ---------------------------------------

def attn_g(levels=(0, 1), **kw):
    return unshuffle_g(pool="attention", film=True, film_hidden=6, tag_attn_levels=list(levels), tag_attn_dim=5, **kw)


def test_tag_attention_starts_as_the_model_without_it():
    """O = 0 at the start: a trained model fine-tuned into tag attention begins exactly where it was."""
    torch.manual_seed(0)
    plain, with_attn = unshuffle_g(pool="attention", film=True, film_hidden=6), attn_g()
    missing, unexpected = with_attn.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith("tag_attn.") for k in missing)
    plain.eval(), with_attn.eval()
    tokens = tokens_of(torch.randn(3, E), [1, 2, 0.5])
    x = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(with_attn(x, tokens), plain(x, tokens))


def test_tag_attention_weights_padding_empty_prompt_and_pooled_input():
    from textcolor.models import TagCrossAttention
    torch.manual_seed(0)
    attn = TagCrossAttention(4, E, 5)
    with torch.no_grad():
        attn.none_key.normal_()
    x = torch.randn(2, 4, 3, 3)
    tokens = torch.cat([tokens_of(torch.randn(3, E), [1, 1, 0]), tokens_of(torch.randn(3, E), [1, 0.5, 2])])
    a = attn.attention(x, tokens)                                           # [B, HW, T+1]
    assert a.shape == (2, 9, 4)
    torch.testing.assert_close(a.sum(-1), torch.ones(2, 9))
    assert (a[0, :, 2] == 0).all() and (a[1, :, :3] > 0).all()            # padding is never heard
    empty = attn.attention(x, torch.zeros(2, 4, E + 1))
    torch.testing.assert_close(empty[..., -1], torch.ones(2, 9))           # the empty prompt hears "none"
    g = attn_g()                                                           # a pooled [B, E] prompt is one tag
    with torch.no_grad():
        for m in g.tag_attn.values():
            m.out.weight.normal_(std=0.1)
    g.eval()
    e = torch.randn(2, E)
    x32 = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(g(x32, e), g(x32, torch.cat([e, torch.ones(2, 1)], 1)[:, None]))


def test_tag_attention_a_pixel_hears_the_tag_its_query_matches():
    """Analytic case: pixels whose channel 0 is high have a query along the first tag's key, the
    others along the second's; with O = identity each pixel gains exactly its tag's weighted value."""
    from textcolor.models import TagCrossAttention
    attn = TagCrossAttention(2, E, 2)
    a_vec, b_vec = torch.zeros(E), torch.zeros(E)
    a_vec[0], b_vec[1] = 1.0, 1.0
    with torch.no_grad():
        attn.query.weight.zero_(), attn.query.bias.zero_()
        attn.query.weight[:, :, 0, 0] = torch.tensor([[100.0, 0.0], [0.0, 100.0]])   # q = 100·x
        attn.key.weight.zero_(), attn.key.bias.zero_()
        attn.key.weight[0, 0] = attn.key.weight[1, 1] = 1.0 / attn.scale             # k(a) = e1, k(b) = e2
        attn.none_key.fill_(-100.0)
        attn.value.weight.zero_(), attn.value.bias.zero_()
        attn.value.weight[0, 0] = attn.value.weight[1, 1] = 1.0 / attn.scale         # V a = (1, 0), V b = (0, 1)
        attn.out.weight[:, :, 0, 0] = torch.eye(2)
    x = torch.zeros(1, 2, 1, 2)
    x[0, 0, 0, 0] = 1.0                       # pixel 0 asks for tag a
    x[0, 1, 0, 1] = 1.0                       # pixel 1 asks for tag b
    tokens = tokens_of(torch.stack([a_vec, b_vec]), [2.0, 1.0])
    heard = attn(x, tokens) - x
    torch.testing.assert_close(heard[0, :, 0, 0], torch.tensor([2.0, 0.0]))        # a's value × its weight 2
    torch.testing.assert_close(heard[0, :, 0, 1], torch.tensor([0.0, 1.0]))


def test_tag_attention_trains_on_detached_rows_too():
    torch.manual_seed(0)
    g = attn_g(norm="instance")
    tokens = torch.randn(4, 3, E + 1)
    tokens[..., -1] = 1.0
    x = torch.rand(4, 3, 32, 32)
    g(x, tokens).mean().backward()
    assert g.tag_attn["0"].out.weight.grad.abs().sum() > 0 and g.tag_attn["1"].out.weight.grad.abs().sum() > 0
    with torch.no_grad():
        for m in g.tag_attn.values():
            m.out.weight.normal_(std=0.1)
    g.zero_grad()
    g(x, tokens, detach_tags_from=2)[2:].mean().backward()
    # the tokens are inputs: detaching them cuts no parameter; the layers still train on those rows
    assert g.tag_attn["0"].value.weight.grad.abs().sum() > 0


def test_tag_attention_levels_are_validated():
    from textcolor.config import ConfigError
    with pytest.raises(ConfigError, match="tag_attn_levels"):
        load_config(None, ["gen.depth=3", "gen.tag_attn_levels=[3]"])
    with pytest.raises(ConfigError, match="tag_attn_levels"):
        load_config(None, ["tags.layout=none", "gen.tag_attn_levels=[0]"])
    with pytest.raises(ConfigError, match="tag_attn_dim"):
        load_config(None, ["gen.tag_attn_dim=0"])
