"""Known-value tests of the adversarial losses and gradient penalties."""
import math

import pytest
import torch

from textcolor import losses


def linear_critic(w):
    """D(x) = <w, x> per sample: its gradient is w everywhere, so ‖∇D‖² = ‖w‖² for every x̂."""
    return lambda x: (x * w).flatten(1).sum(1)


def test_zero_mixed_equals_squared_weight_norm_for_linear_d():
    torch.manual_seed(0)
    w = torch.randn(3, 8, 8)
    real, fake = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)
    gp = losses.zero_mixed(linear_critic(w), real, fake)
    assert gp.item() == pytest.approx(w.pow(2).sum().item(), rel=1e-5)


def test_one_mixed_and_r1_for_linear_d():
    w = torch.full((1, 2, 2), 0.25)  # ‖w‖ = 0.5
    real, fake = torch.randn(3, 1, 2, 2), torch.randn(3, 1, 2, 2)
    assert losses.one_mixed(linear_critic(w), real, fake).item() == pytest.approx(0.25, rel=1e-5)  # (0.5−1)²
    assert losses.r1(linear_critic(w), real, fake).item() == pytest.approx(0.25, rel=1e-5)        # 0.5²


def test_quadratic_critic_penalty_depends_on_the_mixing_point():
    # D(x) = ½‖x‖² -> ∇D = x̂; with real == fake == c, x̂ = c whatever ε is
    c = torch.full((2, 1, 3, 3), 2.0)
    gp = losses.zero_mixed(lambda x: 0.5 * x.pow(2).flatten(1).sum(1), c, c)
    assert gp.item() == pytest.approx(9 * 4.0)


def test_mixing_is_per_sample_and_between_real_and_fake():
    real, fake = torch.ones(64, 1, 2, 2), torch.zeros(64, 1, 2, 2)
    x = losses.mix(real, fake, torch.Generator().manual_seed(0))
    per_sample = x.flatten(1)
    assert torch.allclose(per_sample, per_sample[:, :1].expand_as(per_sample))  # one ε per sample
    assert per_sample.min() >= 0 and per_sample.max() <= 1 and per_sample[:, 0].std() > 0.1


def test_penalty_gradcheck_float64():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(2, 1, 3, padding=1).double()
    real, fake = torch.randn(2, 2, 5, 5, dtype=torch.float64), torch.randn(2, 2, 5, 5, dtype=torch.float64)

    def penalty_of_weight(weight):
        critic = lambda x: torch.nn.functional.conv2d(torch.tanh(x), weight, conv.bias, padding=1)  # noqa: E731
        return losses.zero_mixed(critic, real, fake, torch.Generator().manual_seed(1))

    w = conv.weight.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(penalty_of_weight, (w,), eps=1e-6, atol=1e-5)


def test_adversarial_known_values():
    zero = torch.zeros(5)
    assert losses.d_nonsat(zero, zero).item() == pytest.approx(2 * math.log(2))
    assert losses.g_nonsat(zero).item() == pytest.approx(math.log(2))
    assert losses.d_hinge(torch.ones(3), -torch.ones(3)).item() == 0
    assert losses.d_lsgan(torch.ones(3), torch.zeros(3)).item() == 0
    assert losses.d_wgan(torch.tensor([2.0]), torch.tensor([-1.0])).item() == -3
    for name in losses.D_LOSSES:
        assert name in losses.G_LOSSES


def test_registry_error_lists_valid_names():
    with pytest.raises(ValueError, match="zero_mixed, one_mixed, r1"):
        losses.get(losses.PENALTIES, "bogus", "penalty")


def test_patch_critic_is_penalised_through_its_patch_mean():
    # a patch map of P identical linear critics: the mean has gradient w, whatever P is
    w = torch.randn(1, 4, 4)
    critic = lambda x: (x * w).flatten(1).sum(1).view(-1, 1, 1, 1).expand(-1, 1, 5, 5)  # noqa: E731
    gp = losses.zero_mixed(critic, torch.randn(2, 1, 4, 4), torch.randn(2, 1, 4, 4))
    assert gp.item() == pytest.approx(w.pow(2).sum().item(), rel=1e-5)


def test_masked_l1_is_a_per_sample_mean_inside_the_region():
    a = torch.zeros(3, 2, 4, 4, requires_grad=True)
    b = torch.zeros(3, 2, 4, 4)
    b[0, :, :2] = 1.0          # sample 0: differs by 1 on its top half, which is its region
    b[1] = 0.5                 # sample 1: differs by 0.5 everywhere; region one pixel
    b[2] = 9.0                 # sample 2: empty region, must count for nothing
    region = torch.zeros(3, 4, 4, dtype=torch.bool)
    region[0, :2] = True
    region[1, 0, 0] = True
    loss = losses.masked_l1(a, b, region)
    assert loss.item() == pytest.approx((1.0 + 0.5) / 2)
    loss.backward()
    # d/da of mean over (sample, its region's pixels × channels) of |a - b|, a < b: -1 / (2 · area · C)
    assert a.grad[0, 0, 0, 0].item() == pytest.approx(-1 / (2 * 8 * 2))
    assert a.grad[1, 1, 0, 0].item() == pytest.approx(-1 / (2 * 1 * 2))
    assert a.grad[0, :, 2:].abs().sum() == 0 and a.grad[2].abs().sum() == 0
    assert losses.masked_l1(a, b, torch.zeros_like(region)).item() == 0.0


def test_region_mean_l1_weighs_every_region_once():
    b = torch.zeros(2, 1, 4, 4)
    a = torch.zeros(2, 1, 4, 4)
    labels = torch.zeros(2, 4, 4, dtype=torch.long)
    labels[:, 0, 0] = 3                    # a one-pixel "iris" in both samples
    labels[:, 3] = 6                       # outlines: never counted
    a[:, :, 0, 0] = 1.0                    # differs by 1 on the iris only
    a[:, :, 3] = 5.0
    skip = torch.tensor([2, 3])            # sample 1 may change its iris (its swapped tag's region)
    # regions: background (0 in both samples) and the iris (1, in sample 0 only) -> (0 + 1) / 2
    assert losses.region_mean_l1(a, b, labels, skip, line=6).item() == pytest.approx(0.5)
    # the pixel mean would drown the iris in the background: 1 / 12 in sample 0
    assert losses.masked_l1(a, b, (labels != skip[:, None, None]) & (labels != 6)).item() == pytest.approx(1 / 24)
    assert losses.region_mean_l1(a, b, torch.full_like(labels, 6), skip, line=6).item() == 0.0


def test_region_mean_l1_weights_scale_one_region_and_leave_the_others():
    b = torch.zeros(1, 1, 2, 2)
    a = torch.tensor([[[[1.0, 2.0], [0.0, 0.0]]]])
    labels = torch.tensor([[[4, 5], [0, 6]]])     # outfit differs by 1, accessory by 2, background 0
    skip = torch.tensor([2])
    assert losses.region_mean_l1(a, b, labels, skip, line=6).item() == pytest.approx((1 + 2 + 0) / 3)
    weighted = losses.region_mean_l1(a, b, labels, skip, line=6, weights={5: 4.0})
    assert weighted.item() == pytest.approx((1 + 4 * 2 + 0) / 3)
    a.requires_grad_(True)
    losses.region_mean_l1(a, b, labels, skip, line=6, weights={5: 4.0, 4: 0.0}).backward()
    assert a.grad[0, 0, 0, 1].item() == pytest.approx(4 / 3) and a.grad[0, 0, 0, 0].item() == 0.0


def test_locality_weights_by_region_name_from_config():
    from textcolor.config import ConfigError, load_config
    cfg = load_config("shipped_stage4", ["loss.locality_weights={accessory: 3, outfit: 2}"])
    assert losses.Objective.from_config(cfg.loss).locality_weights == {5: 3.0, 4: 2.0}
    with pytest.raises(ConfigError, match="not a region"):
        load_config("shipped_stage4", ["loss.locality_weights={hat: 3}"])
    with pytest.raises(ConfigError, match="needs loss.locality_average=regions"):
        load_config("shipped_stage4", ["loss.locality_weights={outfit: 3}", "loss.locality_average=pixels"])


def test_region_shift_hinge_value_gradient_and_empty_regions():
    held = torch.zeros(3, 3, 4, 4)
    moved = held.clone()
    moved[0, 0, :2] = 0.3            # region 0 (top half): mean moves (0.3, 0, 0): 0.2 short of 0.5
    moved[1] = 0.4                   # region 1 (all): mean moves 0.4·√3 ≈ 0.69 > 0.2: no loss
    region = torch.zeros(3, 4, 4, dtype=torch.bool)
    region[0, :2] = True
    region[1] = True                 # sample 2: empty region, left out
    moved.requires_grad_(True)
    loss = losses.region_shift_hinge(moved, held, region, torch.tensor([0.5, 0.2, 9.0]))
    assert loss.item() == pytest.approx(0.1)            # (0.2 + 0) / 2
    loss.backward()
    # only the short sample's region pixels get a gradient, pushing its mean further along (1, 0, 0)
    g = moved.grad
    assert g[1].abs().max() == 0 and g[2].abs().max() == 0 and g[0, :, 2:].abs().max() == 0
    assert torch.allclose(g[0, 0, :2], torch.full((2, 4), -1 / 2 / 8)) and g[0, 1:].abs().max() == 0
    empty = torch.zeros(1, 4, 4, dtype=torch.bool)
    assert losses.region_shift_hinge(moved[:1], held[:1], empty, torch.tensor([1.0])).item() == 0.0


@pytest.mark.parametrize("region, old, new, seed", [("hair", "red_hair", "blue_hair", 5), ("hair", "orange_hair", "red_hair", 11),
                                                     ("eyes", "brown_eyes", "green_eyes", 5), ("eyes", "brown_eyes", "green_eyes", 11),
                                                     ("hair", "white_hair", "black_hair", 5), ("hair", "black_hair", "pink_hair", 11)])
def test_recolored_target_equals_the_render_in_the_new_colour(region, old, new, seed):
    """Recolouring a render's region gives the render drawn in the new colour: for a chromatic fill
    every pixel to rounding (fill, shade, highlight, strands and their blends); for a grey fill
    (white, black) the palette colours, and blends of highlight with shade approximately. Every
    pixel outside the region is untouched."""
    from textcolor import synth
    from textcolor.vocab import EYES, HAIR, hex_to_rgb, load_colors
    label = {"hair": HAIR, "eyes": EYES}[region]
    key = "hair_color" if region == "hair" else "eye_color"
    a = synth.render(seed, 96, character="original", monochrome=False, detail=1.0, **{key: old})
    b = synth.render(seed, 96, character="original", monochrome=False, detail=1.0, **{key: new})
    to_t = lambda s: torch.from_numpy(s.image).permute(2, 0, 1)[None].float() / 127.5 - 1  # noqa: E731
    colors = load_colors()[region]
    rgb = lambda tag: torch.tensor([hex_to_rgb(colors[tag])]) / 127.5 - 1  # noqa: E731
    labels = torch.from_numpy(a.mask)[None]
    out = losses.recolored(to_t(a), labels, torch.tensor([label]), rgb(old), rgb(new))
    inside = (labels == label)[:, None].expand_as(out)
    err = (out - to_t(b))[inside].abs() * 127.5   # in levels
    assert inside.sum() > 0 and not torch.equal(to_t(a)[inside], to_t(b)[inside])
    grey = old in ("white_hair", "black_hair")
    if grey:
        assert err.mean() < 3 and (err > 2.5).float().mean() < 0.2
    else:
        assert err.max() <= 2.5
    assert torch.equal(out[~inside], to_t(a)[~inside])
