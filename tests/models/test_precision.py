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


def test_bf16_true_trains(make_config, folder_overrides) -> None:
    best = train(make_config([*folder_overrides, "trainer.precision=bf16-true"]))
    assert best is not None


def test_mixed_precision_clipping_of_a_fused_optimizer_is_refused_up_front(
    make_config, folder_overrides
) -> None:
    """Lightning refuses it at the first step, for bf16 as for fp16."""
    clipping = ["trainer.precision=bf16-mixed", "trainer.gradient_clip_val=1.0"]
    with pytest.raises(UserError, match=r"bf16-mixed cannot clip.*set optimizer\.fused=false"):
        train(make_config([*folder_overrides, *clipping]))
    assert train(make_config([*folder_overrides, *clipping, "optimizer.fused=false"])) is not None
