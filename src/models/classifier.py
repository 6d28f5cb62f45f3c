"""The LightningModule: a network of any source (torchvision, timm) fine-tuned under a freeze
policy."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.trainer.states import TrainerFn
from torch import nn
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import (
    MulticlassAccuracy,
    MultilabelAveragePrecision,
    MultilabelPrecisionRecallCurve,
)

from src.data.transforms import DEFAULT_CROP_PCT
from src.finetuning.finetuner import FineTuner
from src.finetuning.gradual_unfreezing import GradualUnfreezing
from src.finetuning.optimization import configure_optimization
from src.models.calibration import rescale_thresholds, scaled_probabilities, temperature_size
from src.models.losses import build_loss
from src.models.tasks import (
    MONITORED,
    MULTILABEL,
    best_f1_thresholds,
    check_task,
)
from src.networks.source import build_network, network_source
from src.networks.weights import load_starting_weights

log = logging.getLogger(__name__)

#: Decision thresholds a multi-label run chooses among (0, 0.01, ..., 1).
THRESHOLD_STEPS = 101


class ImageClassifier(L.LightningModule):
    """Classifies uint8 image batches; normalisation happens here, on the device.

    Every constructor argument is a plain value (no network, no optimizer object), so the
    checkpoint's hyper-parameters alone rebuild the model for `evaluate` and `predict`, and the
    checkpoint loads with `weights_only=True`. Batches of 2-D inputs are backbone features (the
    head's input, from the feature cache of `freeze.cache_features`): only the head runs on them.
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
        crop_pct: float = DEFAULT_CROP_PCT,
        task: str = "multiclass",
        loss: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        check_task(task)
        # The run's whole config goes to the loggers from train.py; here only the checkpoint.
        self.save_hyperparameters(logger=False)
        self.class_names = list(class_names)
        self.net, self.description = build_network(model, len(self.class_names), image_size)
        self.head_name = self.description.head
        self.finetuner = FineTuner.from_config(self.net, self.description, freeze, optimizer)
        self.channels_last = bool(model.get("channels_last", False))
        if self.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        spec = network_source(model.get("source")).input_spec(model["name"])
        # The model's own normalisation where the config leaves it to the model (null).
        self.hparams.model["mean"] = list(model.get("mean") or spec.mean)
        self.hparams.model["std"] = list(model.get("std") or spec.std)
        mean = torch.tensor(self.hparams.model["mean"], dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(self.hparams.model["std"], dtype=torch.float32).view(1, -1, 1, 1)
        self.register_buffer("mean", mean * 255.0, persistent=False)
        self.register_buffer("std", std * 255.0, persistent=False)

        self.task = task
        #: Temperature scaling: the model's probabilities are those of logits / temperature (one,
        #: or one per class for a multi-label model), fitted on validation after training
        #: (src/models/calibration.py); 1 until then. Training and its loss use the logits.
        size = temperature_size(task, len(self.class_names))
        self.register_buffer("temperature", torch.ones(size))
        #: The validation metric the best checkpoint follows (val/acc, or val/map).
        self.monitor = MONITORED[task]
        self.criterion = build_loss(task, loss, label_smoothing)
        num_classes = len(self.class_names)
        self.train_loss = MeanMetric(nan_strategy="disable")
        self.val_loss = MeanMetric(nan_strategy="disable")
        # No checks that read values on the host (a GPU synchronisation per step): predictions
        # are argmax indices and targets the data module's; StopOnNonFiniteLoss watches NaNs.
        if task == MULTILABEL:
            labels = {"num_labels": num_classes, "validate_args": False}
            self.val_map = MultilabelAveragePrecision(average="macro", **labels)
            #: Binned, so that its state stays small: the thresholds are picked from it.
            self.val_curve = MultilabelPrecisionRecallCurve(thresholds=THRESHOLD_STEPS, **labels)
            self.val_map_best = MaxMetric()
            self.val_map_best.persistent(True)
            #: Per-class decision thresholds (best F1 on the latest validation): checkpoints,
            #: evaluate, predict and the exported model.json use them.
            self.register_buffer("thresholds", torch.full((num_classes,), 0.5))
        else:
            accuracy = {"num_classes": num_classes, "average": "micro", "validate_args": False}
            self.train_acc = MulticlassAccuracy(**accuracy)
            self.val_acc = MulticlassAccuracy(**accuracy)
            self.val_acc_best = MaxMetric()
            self.val_acc_best.persistent(True)  # survives a resume from checkpoint

    # ----------------------------------------------------------------- set-up
    def load_starting_weights(self) -> None:
        """The source's pretrained weights or `model.weights_path`, as configured; called before
        training only."""
        model, size = self.hparams.model, int(self.hparams.image_size)
        source = network_source(model.get("source"))
        if model.get("weights_path"):
            state = source.weights_file(Path(model["weights_path"]), model, size)
            origin = str(model["weights_path"])
        elif model.get("pretrained"):
            state = source.pretrained_weights(model, size)
            origin = f"{source.name}'s pretrained weights of {model['name']}"
        else:
            log.info("Starting from random weights (model.pretrained=false)")
            return
        load_starting_weights(self.net, self.head_name, state, origin)

    @property
    def head(self) -> nn.Module:
        return self.net.get_submodule(self.head_name)

    def configure_model(self) -> None:
        """`model.compile`: compile the network in place for training, so checkpoints keep the
        plain parameter names. Not on cached features, where only the head runs."""
        fitting = self._trainer is not None and self.trainer.state.fn == TrainerFn.FITTING
        if fitting and self.hparams.model.get("compile") and not self.trains_on_features:
            self.net.compile()

    @property
    def trains_on_features(self) -> bool:
        return bool(self.hparams.freeze.get("cache_features"))

    def on_fit_start(self) -> None:
        if not self.trainer.is_global_zero:
            return
        trainable, total = self.finetuner.parameter_counts()
        log.info(
            "%s, %d classes %s: %s of %s parameters trainable (%.1f%%)",
            self.hparams.model["name"],
            len(self.class_names),
            self.class_names,
            f"{trainable:,}",
            f"{total:,}",
            100.0 * trainable / total,
        )
        if self.finetuner.frozen_batchnorms:
            log.info(
                "%d BatchNorm layers of frozen parts stay in eval mode: their statistics are "
                "those of the starting weights (freeze.train_bn=true trains them)",
                len(self.finetuner.frozen_batchnorms),
            )

    def configure_callbacks(self) -> list[L.Callback]:
        return [GradualUnfreezing()]

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["unfrozen"] = list(self.finetuner.unfrozen)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Runs before `configure_optimizers` on resume, which then rebuilds every group that
        the checkpoint's optimizer state holds, and before the weights load: a checkpoint made
        before temperature scaling gets temperature 1 (its probabilities as they were)."""
        self.finetuner.restore(list(checkpoint.get("unfrozen", [])))
        for key in ("state_dict", "current_model_state"):  # the latter: EMA's own weights
            if isinstance(checkpoint.get(key), dict):
                checkpoint[key].setdefault("temperature", torch.ones_like(self.temperature))

    def train(self, mode: bool = True) -> ImageClassifier:
        """Keep BatchNorm of frozen parts in eval mode whenever the module is set to train."""
        super().train(mode)
        self.finetuner.hold_frozen_batchnorms()
        return self

    # ---------------------------------------------------------------- compute
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits for a batch of uint8 images [B, 3, H, W]."""
        return self.net(self.normalise(images))

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """Images (0-255) as the network takes them: standardised, in the network's dtype (under
        trainer.precision=bf16-true / 16-true Lightning casts the weights and these buffers, not
        the batch) and memory format."""
        x = (images.float() - self.mean.float()) / self.std.float()
        x = x.to(self.mean.dtype)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _logits_and_loss(self, batch: tuple[torch.Tensor, torch.Tensor]):
        inputs, targets = batch
        # 2-D inputs are cached backbone features (float32 as computed): only the head runs.
        features = inputs.dim() == 2
        logits = self.head(self._dropped(inputs.to(self.mean.dtype))) if features else self(inputs)
        return logits, self.criterion(logits, targets)

    def _shared_step(self, batch: tuple[torch.Tensor, torch.Tensor]):
        logits, loss = self._logits_and_loss(batch)
        targets = batch[1]
        # MixUp / CutMix give class probabilities: accuracy counts the larger share.
        labels = targets.argmax(dim=1) if targets.dim() == 2 else targets
        return loss, logits.argmax(dim=1), labels

    def _dropped(self, features: torch.Tensor) -> torch.Tensor:
        """Cached features through the Dropout the network has before its head (in training)."""
        for p in self.description.dropout_before_head:
            features = nn.functional.dropout(features, p, training=self.training)
        return features

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        if self.task == MULTILABEL:
            _, loss = self._logits_and_loss(batch)
            self.train_loss(loss)
            self.log("train/loss", self.train_loss, on_step=True, on_epoch=True)
            return loss
        loss, preds, targets = self._shared_step(batch)
        self.train_loss(loss)
        self.train_acc(preds, targets)
        # Not on the progress bar: Lightning would read a step value on the host every step.
        self.log("train/loss", self.train_loss, on_step=True, on_epoch=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def on_validation_epoch_start(self) -> None:
        self.val_loss.reset()
        if self.task == MULTILABEL:
            self.val_map.reset()
            self.val_curve.reset()
        else:
            self.val_acc.reset()

    def validation_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor] | None:
        if self.task == MULTILABEL:
            logits, loss = self._logits_and_loss(batch)
            targets = batch[1].round().long()
            self.val_loss(loss)
            # The thresholds apply to the model's probabilities, at its temperature.
            scores = self.probabilities_of(logits)
            self.val_map.update(scores, targets)
            self.val_curve.update(scores, targets)
            self.log("val/loss", self.val_loss, on_step=False, on_epoch=True, prog_bar=True)
            self.log("val/map", self.val_map, on_step=False, on_epoch=True, prog_bar=True)
            return None
        loss, preds, targets = self._shared_step(batch)
        self.val_loss(loss)
        self.val_acc(preds, targets)
        self.log("val/loss", self.val_loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log("val/acc", self.val_acc, on_step=False, on_epoch=True, prog_bar=True)
        return {"preds": preds.detach(), "targets": targets.detach()}

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        if self.task == MULTILABEL:
            precision, recall, steps = self.val_curve.compute()
            self.thresholds.copy_(best_f1_thresholds(precision, recall, steps))
            self.val_map_best(self.val_map.compute())
            self.log("val/map_best", self.val_map_best.compute(), sync_dist=True)
            return
        self.val_acc_best(self.val_acc.compute())
        self.log("val/acc_best", self.val_acc_best.compute(), sync_dist=True)

    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """Class probabilities of uint8 images: softmax, or a sigmoid per class, at the model's
        temperature."""
        return self.probabilities_of(self(images))

    def probabilities_of(self, logits: torch.Tensor) -> torch.Tensor:
        """The model's (calibrated) probabilities of its `logits`."""
        return scaled_probabilities(logits, self.temperature, self.task)

    def set_temperature(self, temperature: torch.Tensor) -> None:
        """Calibrate with `temperature`; a multi-label model's thresholds move with it, so that
        each class decides as before."""
        new = temperature.to(self.temperature).reshape(self.temperature.shape)
        if self.task == MULTILABEL:
            self.thresholds.copy_(rescale_thresholds(self.thresholds, self.temperature, new))
        self.temperature.copy_(new)

    def logits_of_features(self, features: torch.Tensor) -> torch.Tensor:
        """The logits of cached backbone features [B, F]: only the head runs."""
        return self.head(features.to(self.mean.dtype))

    def predict_step(self, batch, batch_idx: int) -> torch.Tensor:
        images = batch[0] if isinstance(batch, (list, tuple)) else batch
        return self.probabilities(images)

    # -------------------------------------------------------------- optimiser
    def configure_optimizers(self) -> tuple[list, list[dict[str, Any]]]:
        """The optimizer holds only trainable parameters; the scheduler config is optional."""
        return configure_optimization(
            dict(self.hparams.optimizer),
            self.hparams.scheduler,
            self.finetuner.parameter_groups(float(self.hparams.optimizer["lr"])),
            lambda: int(self.trainer.estimated_stepping_batches),
            lambda: int(self.trainer.max_epochs),
        )
