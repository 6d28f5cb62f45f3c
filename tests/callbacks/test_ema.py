"""`weight_averaging=ema`'s update: the same average as torch's EMA, without reading its counter on
the host at every update."""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_avg_fn

from src.callbacks.ema import DeviceEMA


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(2))


def train_a_little(net: nn.Module) -> None:
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.add_(torch.randn_like(parameter))
    net.train()
    net(torch.randn(2, 3, 8, 8))  # moves BatchNorm's statistics and counts a batch


def test_the_average_is_torchs_ema() -> None:
    net = small_net()
    net(torch.randn(1, 3, 8, 8))  # materialises the lazy layer
    ours = DeviceEMA(net, device=None, use_buffers=True, decay=0.9)
    torchs = AveragedModel(net, use_buffers=True, avg_fn=get_ema_avg_fn(0.9))
    for _ in range(4):
        train_a_little(net)
        ours.update_parameters(net)
        torchs.update_parameters(net)
    for (name, mine), theirs in zip(
        ours.module.state_dict().items(), torchs.module.state_dict().values(), strict=True
    ):
        if mine.dtype.is_floating_point:
            torch.testing.assert_close(mine, theirs, msg=name)
        else:  # BatchNorm's batch counter: the model's, not an average of counts
            assert mine.item() == net.state_dict()[name].item()
    assert int(ours.n_averaged) == 4


def test_an_average_restored_from_a_checkpoint_goes_on_averaging() -> None:
    net = small_net()
    net(torch.randn(1, 3, 8, 8))
    first = DeviceEMA(net, device=None, use_buffers=True, decay=0.5)
    train_a_little(net)
    first.update_parameters(net)
    saved = first.state_dict()

    restored = DeviceEMA(small_net(), device=None, use_buffers=True, decay=0.5)
    restored.module(torch.randn(1, 3, 8, 8))
    restored.load_state_dict(saved)
    train_a_little(net)
    restored.update_parameters(net)  # an average of both, not a copy of the second
    weight = net[0].weight.detach()
    expected = 0.5 * saved["module.0.weight"] + 0.5 * weight
    torch.testing.assert_close(restored.module[0].weight.detach(), expected)
    assert int(restored.n_averaged) == 2
