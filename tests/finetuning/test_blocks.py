"""Freezing by depth (`freeze.trainable_blocks=N`): every model family's backbone as ordered
blocks, so that "the last N blocks train" means the same for each."""

from __future__ import annotations

import pytest
import torch

from src.finetuning.finetuner import FineTuner
from src.networks.blocks import within
from src.networks.description import NetworkDescription
from src.networks.source import architecture, build_network, network_source
from src.train import train
from src.utils.errors import UserError
from tests.helpers import NO_DATA, run_module
from tests.helpers.probe import assert_trained

#: A model of each family the README offers, and one without an entry in the table.
FAMILIES = [
    "resnet18",
    "efficientnet_b0",
    "convnext_tiny",
    "mobilenet_v3_small",
    "regnet_y_400mf",
    "vit_b_16",
    "swin_t",
    "densenet121",
    "mnasnet0_5",
    "maxvit_t",
    "shufflenet_v2_x0_5",
]

#: Parameters of the blocks' containers: they train only when everything does.
EMBEDDINGS = {"vit_b_16": {"class_token", "encoder.pos_embedding"}}


@pytest.fixture(scope="module", params=FAMILIES)
def network(request) -> tuple[str, torch.nn.Module, NetworkDescription]:
    """The structure alone, as the config check builds it (no memory for weights where
    torchvision allows it), and its description."""
    options = {"name": request.param}
    net = architecture(options, 224)
    return request.param, net, network_source("torchvision").describe(net, options)


def trainable(net: torch.nn.Module) -> set[str]:
    return {name for name, p in net.named_parameters() if p.requires_grad}


def inside(name: str, modules: tuple[str, ...]) -> bool:
    return any(name == m or name.startswith(m + ".") for m in modules)


def test_the_blocks_cover_the_backbone(network) -> None:
    name, net, description = network
    blocks, head = description.blocks, description.head
    assert len(blocks) >= 3, blocks
    outside = {
        p for p, _ in net.named_parameters()
        if not within(p, head) and not any(inside(p, block) for block in blocks)
    }  # fmt: skip
    assert outside == EMBEDDINGS.get(name, set())


def test_the_last_blocks_train_and_nothing_before_them(network) -> None:
    name, net, description = network
    blocks, head = description.blocks, description.head
    for count in (0, 1, 2):
        FineTuner.from_config(net, description, {"trainable_blocks": count})
        last = tuple(module for block in blocks[len(blocks) - count :] for module in block)
        expected = {p for p, _ in net.named_parameters() if within(p, head) or inside(p, last)}
        assert trainable(net) == expected, (name, count)
    everything = FineTuner.from_config(net, description, {"trainable_blocks": len(blocks)})
    frozen = {p for p, _ in net.named_parameters()} - trainable(everything.net)
    assert frozen == EMBEDDINGS.get(name, set())


def test_discriminative_learning_rates_follow_the_blocks() -> None:
    with torch.device("meta"):
        net, description = build_network({"name": "efficientnet_b0"}, 2, 224)
    optimizer = {"backbone_lr_mult": 0.1}
    tuner = FineTuner.from_config(net, description, {"trainable_blocks": 1}, optimizer)
    groups = {group["name"]: group for group in tuner.parameter_groups(0.01)}
    assert groups["backbone"]["lr"] == pytest.approx(0.001) and groups["head"]["lr"] == 0.01
    last = dict(net.named_parameters())
    in_last = {id(p) for n, p in last.items() if n.startswith("features.8.")}
    assert {id(p) for p in groups["backbone"]["params"]} == in_last


def test_too_many_blocks_are_refused_before_any_image_is_read(tmp_path) -> None:
    result = run_module(
        "src.train", *NO_DATA, "model.name=efficientnet_b0", "freeze=last_blocks",
        "freeze.trainable_blocks=12", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert "freeze.trainable_blocks=12: EfficientNet has 9 blocks" in result.stderr
    with pytest.raises(UserError, match="has 5 blocks"):
        with torch.device("meta"):
            net, description = build_network({"name": "resnet18"}, 2, 224)
        FineTuner.from_config(net, description, {"trainable_blocks": -1})


@pytest.mark.slow
def test_a_non_resnet_trains_its_last_blocks(make_config, folder_overrides, probe) -> None:
    """MobileNetV3's last two blocks (features.11, and features.12 with the Linear layer before
    the head) and its head train, the backbone's part at a tenth of the head's rate; nothing
    else of the network changes."""
    overrides = [
        "model.name=mobilenet_v3_small",
        "freeze=last_blocks",
        "optimizer.backbone_lr_mult=0.1",
    ]
    train(make_config([*folder_overrides, *overrides]))
    last_two = ("features.11.", "features.12.", "classifier.0.", "classifier.3.")
    # at a backbone rate of 0.1 x 0.001, some updates are below float32's resolution
    assert_trained(probe, last_two, last_two, every_one_moves=False)
    (head, head_lr), (backbone, backbone_lr) = probe.groups[0]
    assert (head, backbone, backbone_lr) == ("head", "backbone", pytest.approx(head_lr * 0.1))
