"""timm's models through the one network description: for ten families, small variants with
random weights at small image sizes are built for N classes, list their blocks in order, freeze
by depth, train, give the same logits from cached features, decay their learning rates by block,
export to ONNX with the parity check, and take their own normalisation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from src.config.model_input import resolve_model_input
from src.finetuning.feature_cache import compute_features
from src.finetuning.finetuner import FineTuner
from src.networks.blocks import within, within_any
from src.serving.onnx_export import export_verified, serving_metadata
from src.train import build_datamodule, build_model
from tests.helpers import build_classifier

CLASSES = ("a", "b", "c")


@dataclass(frozen=True)
class Family:
    """A small timm model of a family, the size it is tested at, and what its description
    must say: the number of blocks, a module of the first and of the last block."""

    name: str
    size: int
    blocks: int
    first: str
    last: str


FAMILIES = [
    Family("resnet18", 32, 5, "conv1", "layer4"),
    Family("convnext_atto", 32, 6, "stem", "head.norm"),
    Family("efficientnet_b0", 32, 8, "conv_stem", "conv_head"),
    Family("regnetx_002", 32, 5, "stem", "s4"),
    Family("mobilenetv3_small_050", 32, 8, "conv_stem", "conv_head"),
    Family("vit_tiny_patch16_224", 32, 13, "patch_embed", "blocks.11"),
    Family("deit_tiny_patch16_224", 32, 13, "cls_token", "norm"),
    Family("swin_tiny_patch4_window7_224", 64, 6, "patch_embed", "norm"),
    Family("efficientvit_b0", 32, 6, "stem", "head.in_conv"),
    Family("maxvit_pico_rw_256", 64, 5, "stem", "stages.3"),
]
IDS = [family.name for family in FAMILIES]


def build(family: Family, **freeze):
    trainable = freeze.pop("trainable", None)
    return build_classifier(
        trainable,
        name=family.name,
        model={"source": "timm"},
        class_names=CLASSES,
        image_size=family.size,
        seed=0,
        **freeze,
    )


def pixels(family: Family, count: int = 4) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    shape = (count, 3, family.size, family.size)
    return torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)


@pytest.mark.parametrize("family", FAMILIES, ids=IDS)
def test_built_for_the_classes_with_its_blocks_in_order(family: Family) -> None:
    model = build(family).eval()
    with torch.no_grad():
        assert model(pixels(family, 2)).shape == (2, len(CLASSES))
    assert model.head.out_features == len(CLASSES)
    blocks, head = model.description.blocks, model.head_name
    assert len(blocks) == family.blocks, blocks
    assert within_any(family.first, blocks[0]) or family.first in blocks[0]
    assert any(within(family.last, name) or within(name, family.last) for name in blocks[-1])
    for name, _ in model.net.named_parameters():  # the head's in none, every other in one
        holders = [index for index, block in enumerate(blocks) if within_any(name, block)]
        assert len(holders) == (0 if within(name, head) else 1), (name, holders)


@pytest.mark.parametrize("family", FAMILIES, ids=IDS)
def test_the_last_blocks_train_and_the_rest_stays_bit_identical(family: Family) -> None:
    model = build(family)
    model.finetuner = FineTuner.from_config(model.net, model.description, {"trainable_blocks": 2})
    blocks, head = model.description.blocks, model.head_name
    last = [name for block in blocks[-2:] for name in block]
    expected = {
        name
        for name, _ in model.net.named_parameters()
        if within(name, head) or within_any(name, last)
    }
    trainable = {name for name, p in model.net.named_parameters() if p.requires_grad}
    assert trainable == expected
    before = {name: p.detach().clone() for name, p in model.net.named_parameters()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model.train()
    for _ in range(2):
        loss = model.criterion(model(pixels(family)), torch.tensor([0, 1, 2, 0]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert torch.isfinite(loss)
    changed = {name for name, p in model.net.named_parameters() if not torch.equal(p, before[name])}
    assert changed <= expected and f"{head}.weight" in changed


@pytest.mark.parametrize("family", FAMILIES, ids=IDS)
def test_cached_features_give_the_full_networks_logits(family: Family) -> None:
    model = build(family, trainable=[], cache_features=True).eval()
    images = pixels(family)
    loader = DataLoader(TensorDataset(images, torch.zeros(len(images), dtype=torch.long)), 2)
    features, _ = compute_features(model, model.head, loader)
    with torch.inference_mode():
        assert torch.allclose(model.head(features), model(images), atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES, ids=IDS)
def test_layer_decay_gives_each_block_its_rate(family: Family) -> None:
    model = build(family)
    tuner = FineTuner.from_config(model.net, model.description, {}, {"layer_decay": 0.5})
    blocks = model.description.blocks
    groups = tuner.parameter_groups(1.0)
    assert groups[0]["name"] == "head" and groups[0]["lr"] == 1.0
    names = {id(p): name for name, p in model.net.named_parameters()}
    for group in groups[1:]:
        members = [names[id(p)] for p in group["params"]]
        (index,) = {
            next((i for i, block in enumerate(blocks) if within_any(m, block)), 0) for m in members
        }
        assert group["lr"] == pytest.approx(0.5 ** (len(blocks) - index)), group["name"]
    assert sum(len(group["params"]) for group in groups) == len(list(model.net.parameters()))


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES, ids=IDS)
def test_the_onnx_export_passes_its_parity_check(family: Family, tmp_path: Path) -> None:
    model = build(family).eval()
    settings = model.hparams.model
    metadata = serving_metadata(
        list(CLASSES), family.size, 0.9, list(settings["mean"]), list(settings["std"])
    )
    difference = export_verified(model, metadata, pixels(family), tmp_path / "model.onnx")
    assert difference < 1e-3 and (tmp_path / "model.json").is_file()


@pytest.mark.parametrize(
    ("name", "mean", "crop_pct"),
    [
        ("vit_tiny_patch16_224", [0.5, 0.5, 0.5], 0.9),
        ("convnext_atto", [0.485, 0.456, 0.406], 0.875),
        ("resnet18.tv_in1k", [0.485, 0.456, 0.406], 0.875),
    ],
)
def test_the_models_own_normalisation_reaches_the_data_and_the_network(
    name: str, mean: list[float], crop_pct: float, make_config, stripes_root: Path
) -> None:
    cfg = make_config(
        ["model=timm", f"model.name={name}", "data=folder", f"data.root={stripes_root}"]
    )
    filled = resolve_model_input(cfg)
    assert set(filled) == {"data.image_size", "data.crop_pct", "model.mean", "model.std"}
    assert (cfg.data.image_size, list(cfg.model.mean), cfg.data.crop_pct) == (224, mean, crop_pct)
    model = build_model(cfg, ["a", "b"])
    assert torch.allclose(model.mean.flatten(), torch.tensor(mean) * 255)
    assert build_datamodule(cfg).crop_pct == crop_pct
    # what the user sets is kept
    cfg = make_config(["model=timm", f"model.name={name}", "model.mean=[0.1,0.2,0.3]"])
    assert "model.mean" not in resolve_model_input(cfg) and cfg.model.mean == [0.1, 0.2, 0.3]
