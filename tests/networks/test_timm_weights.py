"""timm's starting weights without network: a local .safetensors or .pth file in timm's format
(resampled to the run's image size), a checkpoint of this project, and clear refusals."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file

from src.networks.source import build_network
from src.networks.weights import WeightsError
from src.utils.errors import UserError
from tests.helpers import build_classifier


def timm_classifier(name: str, image_size: int = 32, **model) -> torch.nn.Module:
    return build_classifier(
        name=name, model={"source": "timm", **model}, class_names=("a", "b", "c"),
        image_size=image_size,
    )  # fmt: skip


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_a_local_file_loads_the_backbone_and_keeps_a_new_head(suffix: str, tmp_path: Path) -> None:
    reference = timm.create_model("resnet18", pretrained=False)  # 1000 classes, as published
    path = tmp_path / f"resnet18{suffix}"
    state = {key: value.contiguous() for key, value in reference.state_dict().items()}
    save_file(state, path) if suffix == ".safetensors" else torch.save(state, path)
    model = timm_classifier("resnet18", weights_path=str(path))
    head_before = model.net.fc.weight.clone()
    model.load_starting_weights()
    assert torch.equal(model.net.layer3[0].conv1.weight, reference.layer3[0].conv1.weight)
    assert torch.equal(model.net.fc.weight, head_before) and model.net.fc.out_features == 3


def test_a_vit_file_for_224_px_is_resampled_to_the_runs_size(tmp_path: Path) -> None:
    reference = timm.create_model("vit_tiny_patch16_224", pretrained=False)
    path = tmp_path / "vit.safetensors"
    save_file(reference.state_dict(), path)
    model = timm_classifier("vit_tiny_patch16_224", image_size=32, weights_path=str(path))
    model.load_starting_weights()
    assert model.net.pos_embed.shape == (1, 1 + 2 * 2, 192)  # a 2x2 grid and the class token
    assert torch.equal(model.net.blocks[5].mlp.fc1.weight, reference.blocks[5].mlp.fc1.weight)


def test_a_checkpoint_of_this_project_loads_with_its_head(tmp_path: Path) -> None:
    trained = timm_classifier("convnext_atto")
    path = tmp_path / "run.ckpt"
    torch.save({"state_dict": trained.state_dict(), "epoch": 3}, path)
    fresh = timm_classifier("convnext_atto", weights_path=str(path))
    fresh.load_starting_weights()
    assert torch.equal(fresh.net.head.fc.weight, trained.net.head.fc.weight)
    assert torch.equal(fresh.net.stem[0].weight, trained.net.stem[0].weight)


def test_a_file_for_another_architecture_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "resnet34.safetensors"
    save_file(timm.create_model("resnet34", pretrained=False).state_dict(), path)
    with pytest.raises(WeightsError, match=r"does not fit timm's resnet18.*check model\.name"):
        timm_classifier("resnet18", weights_path=str(path)).load_starting_weights()


def test_unobtainable_pretrained_weights_name_both_ways_out_at_once() -> None:
    """The tests run with HF_HUB_OFFLINE=1 (tests/conftest.py), as a machine without network."""
    started = time.perf_counter()
    with pytest.raises(WeightsError) as info:
        timm_classifier("resnet18", pretrained=True).load_starting_weights()
    message = str(info.value)
    assert "model.weights_path=FILE" in message and "model.pretrained=false" in message
    assert time.perf_counter() - started < 30


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("resnet35x", r"model.name='resnet35x' is not a timm model; e.g\. "),
        (
            "resnet18.no_such_tag",
            r"no pretrained tag 'no_such_tag' for resnet18; .*resnet18\.a1_in1k",
        ),
        ("deit_tiny_distilled_patch16_224", r"2 classifier heads \(a distilled model\)"),
    ],
)
def test_names_timm_cannot_serve_are_refused_in_one_line(name: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        build_network({"source": "timm", "name": name}, 3, 224)


def test_an_unknown_source_lists_the_sources() -> None:
    with pytest.raises(UserError, match=r"model.source='keras'.*choose one of: timm, torchvision"):
        build_network({"source": "keras", "name": "resnet18"}, 3, 224)
