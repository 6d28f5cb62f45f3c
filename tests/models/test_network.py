"""Building any torchvision classifier with a new head, and where its starting weights come from
(timm's models: tests/networks/test_timm.py)."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import pytest
import torch
import torchvision

from src.networks.source import build_network
from src.networks.sources.torchvision import find_head
from src.networks.weights import WeightsError, read_weights_file
from src.utils.errors import UserError
from tests.helpers import build_classifier


@pytest.mark.parametrize(
    ("name", "head"),
    [("resnet34", "fc"), ("efficientnet_b0", "classifier.1"), ("convnext_tiny", "classifier.2")],
)
def test_head_replaced_with_one_sized_to_the_classes(name: str, head: str) -> None:
    net, description = build_network({"name": name}, 5, 64)
    assert description.head == head
    assert net.get_submodule(head).out_features == 5
    assert net(torch.zeros(1, 3, 64, 64)).shape == (1, 5)


def test_unknown_model_name_lists_the_choices() -> None:
    with pytest.raises(UserError, match=r"model.name='resnet35'.*resnet34"):
        build_network({"name": "resnet35"}, 2, 64)


def test_local_imagenet_style_file_loads_backbone_and_keeps_new_head(tmp_path: Path) -> None:
    """A torchvision-format file (1000-class head, float16 like the shared stand-in) loads."""
    reference = torchvision.models.resnet18(num_classes=1000)
    path = tmp_path / "resnet18.pth"
    torch.save({k: v.half() for k, v in reference.state_dict().items()}, path)
    model = build_classifier(model={"pretrained": True, "weights_path": str(path)})
    head_before = model.net.fc.weight.clone()
    model.load_starting_weights()
    expected = reference.layer3[0].conv1.weight.half().float()
    assert torch.equal(model.net.layer3[0].conv1.weight, expected)
    assert model.net.layer3[0].conv1.weight.dtype == torch.float32
    assert torch.equal(model.net.fc.weight, head_before)


def test_project_checkpoint_as_weights_file_includes_head(tmp_path: Path) -> None:
    trained = build_classifier()
    path = tmp_path / "run.ckpt"
    torch.save({"state_dict": trained.state_dict(), "epoch": 3}, path)
    fresh = build_classifier(model={"weights_path": str(path)})
    fresh.load_starting_weights()
    assert torch.equal(fresh.net.fc.weight, trained.net.fc.weight)


def test_weights_for_another_architecture_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "resnet34.pth"
    torch.save(torchvision.models.resnet34().state_dict(), path)
    with pytest.raises(WeightsError, match="do not fit"):
        build_classifier(model={"weights_path": str(path)}).load_starting_weights()


def test_missing_or_unsafe_weights_file(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="does not exist"):
        read_weights_file(tmp_path / "nope.pth")
    path = tmp_path / "evil.pth"
    torch.save({"payload": Path("x")}, path)  # an object weights_only refuses to unpickle
    with pytest.raises(WeightsError, match="cannot be loaded"):
        read_weights_file(path)


def test_unobtainable_imagenet_weights_name_both_ways_out(monkeypatch) -> None:
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(
        torchvision.models.ResNet18_Weights.IMAGENET1K_V1.__class__, "get_state_dict", offline
    )
    with pytest.raises(WeightsError) as info:
        build_classifier(model={"pretrained": True}).load_starting_weights()
    assert "model.weights_path=" in str(info.value) and "model.pretrained=false" in str(info.value)


def test_random_init_when_not_pretrained(caplog) -> None:
    model = build_classifier(model={"pretrained": False})
    before = model.net.conv1.weight.clone()
    model.load_starting_weights()
    assert torch.equal(model.net.conv1.weight, before)
    assert find_head(model.net) == "fc"
