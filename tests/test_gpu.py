"""CUDA-only paths: bf16 autocast and channels-last training (skipped, with the reason, without a device)."""
import pytest
import torch

from textcolor.config import GeneratorConfig, TagConfig
from textcolor.models import Generator
from textcolor.training import train

pytestmark = pytest.mark.gpu
E = 12


def test_generator_bf16_autocast_forward_backward_is_finite():
    torch.manual_seed(0)
    g = Generator(GeneratorConfig(base=8, depth=3, max_ch=32), TagConfig(k=4), E).cuda()
    sketch, emb = torch.rand(2, 3, 64, 64, device="cuda") * 2 - 1, torch.randn(2, E, device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = g(sketch, emb)                                   # [2, 3, 64, 64]
    assert out.dtype == torch.bfloat16 and out.shape == (2, 3, 64, 64)
    assert torch.isfinite(out.float()).all()
    out.float().square().mean().backward()
    grads = [p.grad for p in g.parameters() if p.requires_grad]
    assert all(gr is not None and torch.isfinite(gr).all() for gr in grads)
    assert any(gr.abs().sum() > 0 for gr in grads)


@pytest.mark.parametrize("amp", [False, True])
def test_channels_last_training_step_on_cuda(tiny_cfg, tmp_path, amp):
    cfg = tiny_cfg
    cfg.train.device, cfg.train.channels_last, cfg.train.amp = "cuda", True, amp
    cfg.train.steps, cfg.train.ckpt_every = 2, 2
    result = train(cfg, tmp_path / "run")
    assert result.step == 2 and result.checkpoint is not None and result.checkpoint.exists()
    assert result.metrics and all(v == v and abs(v) < float("inf") for v in result.metrics.values())
