"""Freeze semantics: which parameters train, frozen BatchNorm stays in eval mode, frozen weights
do not move, and the optimizer holds only trainable parameters."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from torch.nn.modules.batchnorm import _BatchNorm

from src.data.sources.folder import ImageFolderDataModule
from src.finetuning.freeze import FreezePolicy
from src.models.classifier import ImageClassifier
from src.networks.source import build_network
from src.utils.errors import UserError
from tests.helpers import build_classifier

PRESETS = {
    "none": None,
    "all": [],
    "layer4": ["layer4"],
    "layer3_4": ["layer3", "layer4"],
}
#: Every model here: SGD with momentum, on 32 px images.
SGD_32PX = {"lr": 0.05, "momentum": 0.9, "image_size": 32}


def trainable_children(model: ImageClassifier) -> set[str]:
    return {name.split(".")[0] for name, p in model.net.named_parameters() if p.requires_grad}


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        ("none", {"conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "fc"}),
        ("all", {"fc"}),
        ("layer4", {"layer4", "fc"}),
        ("layer3_4", {"layer3", "layer4", "fc"}),
    ],
)
def test_exactly_the_named_parts_train(preset: str, expected: set[str]) -> None:
    model = build_classifier(PRESETS[preset], **SGD_32PX)
    assert trainable_children(model) == expected
    frozen = [n for n, p in model.net.named_parameters() if not p.requires_grad]
    assert all(n.split(".")[0] not in expected for n in frozen)


def test_head_always_trains_for_other_architectures() -> None:
    net, description = build_network({"name": "efficientnet_b0"}, 3, 224)
    head = description.head
    FreezePolicy(trainable=()).apply(net, head)
    trainable = {n for n, p in net.named_parameters() if p.requires_grad}
    assert trainable == {f"{head}.weight", f"{head}.bias"}
    assert net.get_submodule(head).out_features == 3


def test_unknown_child_is_refused_with_the_valid_names() -> None:
    with pytest.raises(UserError, match=r"layer9.*valid names: conv1, bn1, relu, maxpool, layer1"):
        build_classifier(["layer9"], **SGD_32PX)


def test_optimizer_holds_only_trainable_parameters() -> None:
    model = build_classifier(["layer4"], **SGD_32PX)
    optimizer = model.configure_optimizers()[0][0]
    in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert in_optimizer == trainable
    assert len(trainable) < len(list(model.parameters()))


def test_train_bn_makes_frozen_batchnorm_train() -> None:
    model = build_classifier([], train_bn=True, **SGD_32PX)
    bn_params = [
        p for m in model.net.modules() if isinstance(m, _BatchNorm) for p in m.parameters()
    ]
    assert bn_params and all(p.requires_grad for p in bn_params)
    assert not model.net.layer1[0].conv1.weight.requires_grad
    model.train()
    assert model.net.layer1[0].bn1.training


class RecordBatchNormModes(Callback):
    """Records, at every training batch, whether any frozen-part BatchNorm was in train mode."""

    def __init__(self) -> None:
        self.frozen_bn_training: list[bool] = []
        self.trainable_bn_training: list[bool] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        frozen = [
            pl_module.net.bn1,
            *pl_module.net.layer1.modules(),
            *pl_module.net.layer3.modules(),
        ]
        self.frozen_bn_training.append(any(m.training for m in frozen if isinstance(m, _BatchNorm)))
        self.trainable_bn_training.append(pl_module.net.layer4[0].bn1.training)


def test_frozen_parts_do_not_change_over_epochs(stripes_root) -> None:
    """BN statistics and weights of frozen layers are bit-identical after several epochs,
    validation included (Lightning switches modes around it), while trained parts move."""
    L.seed_everything(0)
    model = build_classifier(["layer4"], **SGD_32PX)
    before = {k: v.clone() for k, v in model.net.state_dict().items()}
    datamodule = ImageFolderDataModule(
        str(stripes_root), image_size=32, batch_size=4, num_workers=0
    )
    recorder = RecordBatchNormModes()
    trainer = L.Trainer(
        max_epochs=3,
        limit_train_batches=3,
        limit_val_batches=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        callbacks=[recorder],
    )
    trainer.fit(model, datamodule=datamodule)
    after = model.net.state_dict()
    for key, value in before.items():
        if key.startswith(("layer4.", "fc.")):
            continue
        assert torch.equal(after[key], value), f"{key} changed although frozen"
    assert not torch.equal(after["layer4.0.bn1.running_mean"], before["layer4.0.bn1.running_mean"])
    assert not torch.equal(after["fc.weight"], before["fc.weight"])
    assert len(recorder.frozen_bn_training) == 9
    assert not any(recorder.frozen_bn_training)
    assert all(recorder.trainable_bn_training)


def saved_for_backward(model: ImageClassifier) -> int:
    """Elements autograd keeps from one training forward pass, to compute gradients later."""
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(
        lambda t: saved.append(t.numel()) or t, lambda t: t
    ):
        model(torch.randint(0, 255, (2, 3, 32, 32), dtype=torch.uint8)).sum().backward()
    return sum(saved)


def test_frozen_layers_cost_no_backward_work_or_memory() -> None:
    """Autograd keeps no activations of frozen layers and computes no gradients for them."""
    head_only = build_classifier([], **SGD_32PX).train()
    kept = saved_for_backward(head_only)
    assert kept <= 2 * 512 + 2 * 512  # the head's input (2 x 512 features) and its weight
    assert all(
        p.grad is None for n, p in head_only.net.named_parameters() if not n.startswith("fc.")
    )
    assert head_only.net.fc.weight.grad is not None
    everything = build_classifier(None, **SGD_32PX).train()
    assert saved_for_backward(everything) > 50 * kept
