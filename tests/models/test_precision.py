"""Training under every precision the trainer offers on a CPU, and the combinations refused."""

from __future__ import annotations

import pytest
import torch

from src.train import train
from src.utils.errors import UserError
from tests.helpers import build_classifier

pytestmark = pytest.mark.slow


def test_bf16_true_casts_the_batch_to_the_networks_dtype() -> None:
    model = build_classifier(image_size=32).to(torch.bfloat16)  # what bf16-true does
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    assert model(images).dtype == torch.bfloat16
    features = torch.randn(2, model.head.in_features)  # cached features stay float32
    loss, _, _ = model._shared_step((features, torch.tensor([0, 1])))
    assert torch.isfinite(loss)


def test_bf16_true_trains_in_bf16(make_config, folder_overrides, probe) -> None:
    """Every training forward pass, the network's (normalised images in, logits out) and its
    head's, ran in bfloat16."""
    best = train(make_config([*folder_overrides, "trainer.precision=bf16-true"]))
    assert best is not None
    bf16 = torch.bfloat16
    assert probe.dtypes == {("net", bf16, bf16), ("head", bf16, bf16)}
    assert len(probe.steps) == 4


def test_mixed_precision_clipping_of_a_fused_optimizer_is_refused_up_front(
    make_config, folder_overrides, probe
) -> None:
    """Lightning refuses it at the first step, for bf16 as for fp16; unfused, the gradients are
    clipped to the configured norm."""
    clipping = ["trainer.precision=bf16-mixed", "trainer.gradient_clip_val=0.1"]
    with pytest.raises(UserError, match=r"bf16-mixed cannot clip.*set optimizer\.fused=false"):
        train(make_config([*folder_overrides, *clipping]))
    assert train(make_config([*folder_overrides, *clipping, "optimizer.fused=false"])) is not None
    before, after = zip(*probe.grad_norms, strict=True)
    assert len(after) == 4 and min(before) > 0.1  # every step had something to clip
    assert after == pytest.approx([0.1] * 4, rel=1e-3)


def test_bf16_true_trains_the_head_on_cached_features(
    make_config, folder_overrides, probe, tmp_path
) -> None:
    """freeze=all caches features by default: the bf16 backbone computes and stores them (the
    cache is keyed on its bf16 weights), and the head trains on them in bfloat16."""
    cfg = make_config([*folder_overrides, "freeze=all", "trainer.precision=bf16-true"])
    assert train(cfg) is not None
    (stored,) = (tmp_path / "data" / ".cache" / "features").glob("*.pt")
    features = torch.load(stored, weights_only=True)["train_features"]
    assert features.dim() == 2 and torch.equal(features, features.bfloat16().float())
    assert probe.dtypes == {("head", torch.bfloat16, torch.bfloat16)}
    assert {step.inputs[1:] for step in probe.steps} == {tuple(features.shape[1:])}
    assert len(probe.steps) == 4
