"""Grad-CAM shows where a trained model looks: on images whose class is decided by a patch in
one corner, the heat peaks on that patch and is far denser there than elsewhere."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from src.data.images import read_rgb_tensor
from src.data.transforms import eval_pipeline
from src.evaluation.attribution import gradcam, gradcam_explainer
from src.models.checkpoint import load_classifier
from src.networks.description import NetworkDescription
from src.train import train
from tests.helpers import build_classifier

pytestmark = pytest.mark.slow

SIZE = 160  # ResNet's last block is then 5x5: fine enough to point at a corner
PATCH = 53  # the top-left third: 1/9 of the image
COLORS = {"blue": (20, 40, 230), "red": (230, 30, 20)}


def write_corner_patch_images(root: Path, per_class: int) -> Path:
    """Noise everywhere; the class is the colour of the top-left patch and nothing else."""
    rng = np.random.default_rng(0)
    for name, color in COLORS.items():
        (root / name).mkdir(parents=True)
        for index in range(per_class):
            pixels = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
            pixels[:PATCH, :PATCH] = color
            Image.fromarray(pixels).save(root / name / f"{index:03d}.png")
    return root


def test_the_heat_of_a_trained_model_sits_on_the_deciding_patch(make_config, tmp_path) -> None:
    root = write_corner_patch_images(tmp_path / "patches", per_class=48)
    cfg = make_config(
        [
            "data=folder",
            f"data.root={root}",
            "model.name=resnet18",
            "model.pretrained=false",
            f"data.image_size={SIZE}",
            "data.augment.enabled=false",  # the patch stays in its corner
            "data.batch_size=16",
            "data.num_workers=0",
            "data.persistent_workers=false",
            "optimizer=adamw",
            "scheduler=none",
            "trainer.max_epochs=5",  # 20 steps: 4 full batches of 16 an epoch
            "callbacks=none",
            "+callbacks.best._target_=lightning.pytorch.callbacks.ModelCheckpoint",
            f"+callbacks.best.dirpath={tmp_path / 'checkpoints'}",
            "+callbacks.best.monitor=val/acc",
            "+callbacks.best.mode=max",
            "+callbacks.best.filename=best",
            "logger=none",
        ]
    )
    assert train(cfg) >= 0.9  # the model learned the patch
    model = load_classifier(tmp_path / "checkpoints" / "best.ckpt")

    # as the model saw them in validation
    transform, draft_size = eval_pipeline(SIZE, model.hparams.crop_pct)
    paths = sorted(root.rglob("*.png"))[::6]  # both classes
    images = torch.stack([transform(read_rgb_tensor(p, 10**8, draft_size)) for p in paths])
    with torch.inference_mode():
        predicted = model(images).argmax(dim=1).tolist()
    assert set(predicted) == {0, 1}
    assert model.description.gradcam.name == "layer4"
    heat = gradcam(model.net, model.normalise, model.description.gradcam, images, predicted)
    assert heat.shape == (len(images), SIZE, SIZE) and heat.min() >= 0 and heat.max() <= 1
    for one in heat:
        row, column = np.unravel_index(one.argmax(), one.shape)
        assert row < PATCH and column < PATCH  # the hottest point is on the patch
        on_patch = one[:PATCH, :PATCH].mean()
        elsewhere = (one.sum() - one[:PATCH, :PATCH].sum()) / (SIZE * SIZE - PATCH * PATCH)
        assert on_patch > 2 * elsewhere


def test_a_network_without_a_gradcam_layer_gets_a_note_not_a_crash() -> None:
    model = build_classifier(image_size=32)
    explain, note = gradcam_explainer(model.net, model.normalise, model.description)
    assert note == "on layer4" and explain(torch.zeros(1, 3, 32, 32), [0]).shape == (1, 32, 32)
    without = NetworkDescription("fc", (), gradcam_unavailable="an MLP has no feature map")
    explain, note = gradcam_explainer(model.net, model.normalise, without)
    assert explain is None and note == "not available for this model (an MLP has no feature map)"


@pytest.mark.parametrize(
    ("source", "name", "size"),
    [
        ("torchvision", "vit_b_16", 224),  # tokens with a class token
        ("torchvision", "swin_t", 64),  # channels-last stages, turned channels-first
        ("torchvision", "efficientnet_b0", 64),
        ("timm", "vit_tiny_patch16_224", 32),
        ("timm", "swin_tiny_patch4_window7_224", 64),
        ("timm", "convnext_atto", 64),
    ],
)
def test_every_layout_gives_a_heat_map(source: str, name: str, size: int) -> None:
    """Whatever the layer's output looks like, the map has the image's size and some heat: a
    layer after which no gradient reaches the head would give zeros."""
    model = build_classifier(name=name, model={"source": source}, image_size=size, seed=0)
    explain, note = gradcam_explainer(model.net, model.normalise, model.description)
    images = torch.randint(0, 256, (2, 3, size, size), dtype=torch.uint8)
    heat = explain(images, [0, 1])
    assert note.startswith("on ") and heat.shape == (2, size, size)
    assert np.isfinite(heat).all() and (heat.reshape(2, -1).max(axis=1) > 0).all()
