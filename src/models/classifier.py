"""The LightningModule: a torchvision network fine-tuned under a freeze policy."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from src.finetuning.freeze import FreezePolicy, UnfreezeStep, count_parameters
from src.finetuning.gradual_unfreezing import GradualUnfreezing
from src.finetuning.param_groups import named_groups, optimizer_factory, scale_per_group
from src.models.network import (
    build_network,
    imagenet_state_dict,
    load_starting_weights,
    read_weights_file,
)
from src.utils.errors import UserError

log = logging.getLogger(__name__)


class ImageClassifier(L.LightningModule):
    """Classifies uint8 image batches; normalisation happens here, on the device.

    Every constructor argument is a plain value (no network, no optimizer object), so the
    checkpoint's hyper-parameters alone rebuild the model for `evaluate` and `predict`;
    `data_config` records the data it was trained on, so `evaluate` can rebuild the same split.
    """

    def __init__(
        self,
        class_names: list[str],
        model: dict[str, Any],
        freeze: dict[str, Any],
        optimizer: dict[str, Any],
        scheduler: dict[str, Any] | None = None,
        image_size: int = 224,
        label_smoothing: float = 0.0,
        data_config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        # The run's whole config goes to the loggers from train.py; here only the checkpoint.
        self.save_hyperparameters(logger=False)
        self.class_names = list(class_names)
        self.net, self.head_name = build_network(model["name"], len(self.class_names))
        self.freeze_policy = FreezePolicy.from_config(
            freeze.get("trainable"), freeze.get("train_bn", False), freeze.get("unfreeze_at")
        )
        self.freeze_policy.validate(self.net)
        #: Entries of `freeze.unfreeze_at` unfrozen so far, in order; saved in checkpoints.
        self.unfrozen: list[str] = []
        self.frozen_batchnorms: list[_BatchNorm] = []
        self._apply_freeze()
        #: Set while training on cached backbone features (`freeze.cache_features`): batches
        #: then hold the head's inputs instead of images.
        self.inputs_are_features = False
        self.channels_last = bool(model.get("channels_last", False))
        if self.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        mean = torch.tensor(model["mean"], dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(model["std"], dtype=torch.float32).view(1, -1, 1, 1)
        self.register_buffer("mean", mean * 255.0, persistent=False)
        self.register_buffer("std", std * 255.0, persistent=False)

        self.criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        num_classes = len(self.class_names)
        self.train_acc = MulticlassAccuracy(num_classes=num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes=num_classes, average="micro")
        self.train_loss = MeanMetric()
        self.val_loss = MeanMetric()
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)  # survives a resume from checkpoint

    # ----------------------------------------------------------------- set-up
    def load_starting_weights(self) -> None:
        """ImageNet weights or `model.weights_path`, as configured; called before training only."""
        model = self.hparams.model
        if model.get("weights_path"):
            state = read_weights_file(model["weights_path"])
            source = str(model["weights_path"])
        elif model.get("pretrained"):
            state = imagenet_state_dict(model["name"])
            source = f"torchvision ImageNet weights of {model['name']}"
        else:
            log.info("Starting from random weights (model.pretrained=false)")
            return
        load_starting_weights(self.net, self.head_name, state, source)

    def parameter_counts(self) -> tuple[int, int]:
        return count_parameters(self.net)

    # ------------------------------------------------------- gradual unfreezing
    def _apply_freeze(self) -> None:
        policy = self.freeze_policy.unfrozen(self.net, self.unfrozen)
        policy.apply(self.net, self.head_name)
        self.frozen_batchnorms = policy.frozen_batchnorms(self.net, self.head_name)
        # Lightning restores each submodule's recorded mode after validation, so frozen
        # BatchNorm must already be in eval mode before the first mode is recorded, and
        # unfrozen BatchNorm back in train mode.
        self.train(self.training)

    def due_unfreezing(self, epoch: int) -> list[UnfreezeStep]:
        """Scheduled steps up to `epoch` that have not been taken yet, in schedule order."""
        steps = self.freeze_policy.unfreeze_steps(self.net)
        return [step for step in steps if step.epoch <= epoch and step.name not in self.unfrozen]

    def unfreeze(self, step: UnfreezeStep) -> list[nn.Parameter]:
        """Let the step's children train (BatchNorm included); returns the parameters that
        now train and did not before, for the optimizer."""
        before = {id(p) for p in self.net.parameters() if p.requires_grad}
        self.unfrozen.append(step.name)
        self._apply_freeze()
        return [p for p in self.net.parameters() if p.requires_grad and id(p) not in before]

    def configure_callbacks(self) -> list[L.Callback]:
        return [GradualUnfreezing()]

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["unfrozen"] = list(self.unfrozen)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Runs before `configure_optimizers` on resume, which then rebuilds every group that
        the checkpoint's optimizer state holds."""
        unfrozen = list(checkpoint.get("unfrozen", []))
        scheduled = {name for name, _ in self.freeze_policy.unfreeze_at}
        if not set(unfrozen) <= scheduled:
            raise UserError(
                f"the checkpoint has unfrozen {unfrozen}, but freeze.unfreeze_at schedules "
                f"{sorted(scheduled)}; resume with the freeze config it was trained with"
            )
        self.unfrozen = unfrozen
        self._apply_freeze()

    def train(self, mode: bool = True) -> ImageClassifier:
        """Keep BatchNorm of frozen parts in eval mode whenever the module is set to train."""
        super().train(mode)
        if mode:
            for module in self.frozen_batchnorms:
                module.eval()
        return self

    # ---------------------------------------------------------------- compute
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits for a batch of uint8 images [B, 3, H, W]."""
        x = (images.float() - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x)

    def _shared_step(self, batch: tuple[torch.Tensor, torch.Tensor]):
        inputs, targets = batch
        if self.inputs_are_features:
            logits = self.net.get_submodule(self.head_name)(inputs)
        else:
            logits = self(inputs)
        loss = self.criterion(logits, targets)
        return loss, logits.argmax(dim=1), targets

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss, preds, targets = self._shared_step(batch)
        self.train_loss(loss)
        self.train_acc(preds, targets)
        self.log("train/loss", self.train_loss, on_step=True, on_epoch=True, prog_bar=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def on_validation_epoch_start(self) -> None:
        self.val_loss.reset()
        self.val_acc.reset()

    def validation_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        loss, preds, targets = self._shared_step(batch)
        self.val_loss(loss)
        self.val_acc(preds, targets)
        self.log("val/loss", self.val_loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log("val/acc", self.val_acc, on_step=False, on_epoch=True, prog_bar=True)
        return {"preds": preds.detach(), "targets": targets.detach()}

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        self.val_acc_best(self.val_acc.compute())
        self.log("val/acc_best", self.val_acc_best.compute(), sync_dist=True)

    def predict_step(self, batch, batch_idx: int) -> torch.Tensor:
        images = batch[0] if isinstance(batch, (list, tuple)) else batch
        return self(images).softmax(dim=1)

    # -------------------------------------------------------------- optimiser
    def trainable_parameters(self) -> list[nn.Parameter]:
        return [parameter for parameter in self.parameters() if parameter.requires_grad]

    @property
    def backbone_lr_mult(self) -> float:
        return float(self.hparams.optimizer.get("backbone_lr_mult", 1.0))

    def parameter_groups(self) -> list[nn.Parameter] | list[dict[str, Any]]:
        """One group of trainable parameters; or, with `optimizer.backbone_lr_mult` or gradual
        unfreezing, named groups: `head` at `lr`, `backbone` and one group per unfrozen step
        at `lr * backbone_lr_mult` (LearningRateMonitor logs them as `lr-<Optimizer>/<name>`)."""
        if self.backbone_lr_mult == 1.0 and not self.freeze_policy.unfreeze_at:
            return self.trainable_parameters()
        steps = [("backbone", self.freeze_policy.trainable_names(self.net, self.head_name))]
        for index, name in enumerate(self.unfrozen):
            policy = self.freeze_policy.unfrozen(self.net, self.unfrozen[: index + 1])
            steps.append((name, policy.trainable_names(self.net, self.head_name)))
        lr = float(self.hparams.optimizer["lr"])
        return named_groups(self.net, self.head_name, steps, lr, self.backbone_lr_mult)

    def configure_optimizers(self) -> dict[str, Any]:
        """The optimizer holds only trainable parameters; the scheduler config is optional."""
        optimizer = optimizer_factory(dict(self.hparams.optimizer))(self.parameter_groups())
        scheduler_config = self.hparams.scheduler or {}
        scheduler_kwargs = dict(scheduler_config.get("scheduler") or {})
        if not scheduler_kwargs:
            return {"optimizer": optimizer}
        if "total_steps" in scheduler_kwargs and scheduler_kwargs["total_steps"] is None:
            scheduler_kwargs["total_steps"] = int(self.trainer.estimated_stepping_batches)
        lr = float(self.hparams.optimizer["lr"])
        scheduler_kwargs = scale_per_group(scheduler_kwargs, optimizer.param_groups, lr)
        scheduler = instantiate(scheduler_kwargs, optimizer=optimizer, _convert_="all")
        return {
            "optimizer": optimizer,
            "lr_scheduler": {
                "scheduler": scheduler,
                "interval": scheduler_config.get("interval", "epoch"),
            },
        }
