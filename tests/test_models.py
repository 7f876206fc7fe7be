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
