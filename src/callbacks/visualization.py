"""TensorBoard figures for image classification: augmented inputs, predictions, confusion matrix.

The figures are a side feature, so the callback is built to stay out of training's way: it does
nothing without a ``TensorBoardLogger``, skips the sanity check, keeps at most ``num_images``
images in memory and draws only on global rank zero. Matplotlib is used through its
object-oriented API (``matplotlib.figure.Figure`` rendered by Agg), so no pyplot state or global
backend of the user is touched.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor
from torchmetrics.classification import MulticlassConfusionMatrix
from torchvision.utils import make_grid

from src.evaluation.figures import draw_confusion

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# Errors that rendering or writing a figure can raise on odd data or a full disk. They are
# reported and the figure skipped; anything else (TypeError, KeyError, ...) is a bug and surfaces.
_RENDER_ERRORS = (RuntimeError, ValueError, OSError)


class TensorBoardFigures(Callback):
    """Log an augmented-image grid, a prediction gallery and a confusion matrix to TensorBoard.

    Tags (all at ``trainer.global_step``):

    - ``train/augmented_images``: grid of the first training batch of every logged epoch.
    - ``val/predictions``: the first ``num_images`` validation images titled
      ``pred: X / true: Y`` (green when right, red when wrong).
    - ``val/confusion_matrix``: counts over the whole validation epoch (synced under DDP).

    Contract with the LightningModule: batches are ``(images, targets)`` with uint8 images
    ``[B, 3, H, W]``, or ``(features[B, F], targets)`` on cached features (then only the
    confusion matrix is drawn); ``pl_module.class_names`` lists the classes; ``validation_step``
    returns ``{"preds": LongTensor[B], "targets": LongTensor[B]}``. Only the first validation
    dataloader is used.

    Args:
        num_images: Most images shown in the training grid and in the prediction gallery.
        every_n_epochs: Log on epochs ``0, n, 2n, ...``; other epochs cost nothing.
    """

    def __init__(self, num_images: int = 16, every_n_epochs: int = 1) -> None:
        super().__init__()
        if num_images < 1:
            raise ValueError(f"num_images must be >= 1, got {num_images}")
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be >= 1, got {every_n_epochs}")
        self.num_images = num_images
        self.every_n_epochs = every_n_epochs
        self.class_names: list[str] = []
        #: The confusion matrix computed at the end of the last logged validation epoch (CPU).
        self.last_confusion_matrix: Tensor | None = None
        self._confmat: MulticlassConfusionMatrix | None = None
        self._val_active = False
        self._contract_warned = False
        self._val_images: list[Tensor] = []
        self._val_preds: list[Tensor] = []
        self._val_targets: list[Tensor] = []

    # ------------------------------------------------------------------ setup / helpers

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Build the confusion-matrix metric once the class names are known. A multi-label
        model has no confusion matrix: its figures are the best checkpoint's report's."""
        names = getattr(pl_module, "class_names", None)
        if getattr(pl_module, "task", "multiclass") == "multilabel":
            self._confmat = None
            return
        if not names:
            rank_zero_warn(
                "TensorBoardFigures: `pl_module.class_names` is missing or empty; "
                "validation figures are disabled."
            )
            self._confmat = None
            return
        self.class_names = [str(name) for name in names]
        self._confmat = MulticlassConfusionMatrix(num_classes=len(self.class_names))

    @staticmethod
    def _tensorboard(trainer: Trainer) -> TensorBoardLogger | None:
        """The first TensorBoard logger of the trainer, if any."""
        return next((lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)

    def _is_logging_epoch(self, trainer: Trainer) -> bool:
        """Same answer on every rank, so DDP ranks agree on whether to sync the metric."""
        return (
            not trainer.sanity_checking
            and self._tensorboard(trainer) is not None
            and trainer.current_epoch % self.every_n_epochs == 0
        )

    def _warn_contract(self, message: str) -> None:
        """Warn once about a module that does not follow the batch/output contract."""
        if not self._contract_warned:
            rank_zero_warn(f"TensorBoardFigures: {message}; the affected figure is skipped.")
            self._contract_warned = True

    def _class_name(self, index: int) -> str:
        return self.class_names[index] if 0 <= index < len(self.class_names) else str(index)

    # ------------------------------------------------------------------ training grid

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        """Log the first (already augmented) batch of a logged epoch as an image grid."""
        if batch_idx != 0 or not trainer.is_global_zero or not self._is_logging_epoch(trainer):
            return
        if _holds_features(batch):
            return
        images = _images_of(batch)
        if images is None:
            self._warn_contract("training batches are not `(images[B, 3, H, W], targets)`")
            return
        images = images[: self.num_images]
        grid = make_grid(_to_unit_float(images), nrow=_grid_cols(len(images)))
        logger = self._tensorboard(trainer)
        assert logger is not None  # checked by _is_logging_epoch
        logger.experiment.add_image("train/augmented_images", grid, trainer.global_step)

    # ------------------------------------------------------------------ validation

    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Reset per-epoch state; the metric follows the module to its device."""
        self._val_active = self._confmat is not None and self._is_logging_epoch(trainer)
        self._clear_val_buffers()
        if self._val_active and self._confmat is not None:
            self._confmat = self._confmat.to(pl_module.device)
            self._confmat.reset()

    def on_validation_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Update the confusion matrix and keep the first ``num_images`` images on rank zero."""
        if not self._val_active or self._confmat is None or dataloader_idx != 0:
            return
        if not (isinstance(outputs, dict) and "preds" in outputs and "targets" in outputs):
            self._warn_contract('`validation_step` must return {"preds": ..., "targets": ...}')
            return
        preds, targets = outputs["preds"].detach(), outputs["targets"].detach()
        self._confmat.update(preds, targets)

        missing = self.num_images - sum(len(x) for x in self._val_images)
        if missing <= 0 or not trainer.is_global_zero or _holds_features(batch):
            return
        images = _images_of(batch)
        if images is None or len(images) != len(preds):
            self._warn_contract("validation batches are not `(images[B, 3, H, W], targets)`")
            return
        # clone() so that the kept slice does not pin the whole batch in memory.
        self._val_images.append(images[:missing].detach().cpu().clone())
        self._val_preds.append(preds[:missing].cpu().clone())
        self._val_targets.append(targets[:missing].cpu().clone())

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Compute the matrix on every rank (it syncs under DDP); draw and log on rank zero."""
        if not self._val_active or self._confmat is None:
            return
        self._val_active = False
        confmat = self._confmat.compute() if self._confmat.update_called else None
        self._confmat.reset()
        logger = self._tensorboard(trainer)
        if not trainer.is_global_zero or logger is None:
            self._clear_val_buffers()
            return
        step = trainer.global_step
        if confmat is not None:
            matrix = self.last_confusion_matrix = confmat.cpu()
            names = self.class_names
            _log_figure(
                logger, "val/confusion_matrix", lambda: _confusion_figure(matrix, names), step
            )
        if self._val_images:
            images = torch.cat(self._val_images)
            preds, targets = torch.cat(self._val_preds), torch.cat(self._val_targets)
            _log_figure(
                logger,
                "val/predictions",
                lambda: self._predictions_figure(images, preds, targets),
                step,
            )
        self._clear_val_buffers()

    def _clear_val_buffers(self) -> None:
        self._val_images, self._val_preds, self._val_targets = [], [], []

    def _predictions_figure(self, images: Tensor, preds: Tensor, targets: Tensor) -> Figure:
        """Gallery of images titled with prediction and truth, coloured by correctness."""
        from matplotlib.figure import Figure

        cols = _grid_cols(len(images))
        rows = math.ceil(len(images) / cols)
        fig = Figure(figsize=(2.2 * cols, 2.4 * rows), layout="constrained")
        pixels = _to_unit_float(images).permute(0, 2, 3, 1).numpy()
        for i, ax in enumerate(fig.subplots(rows, cols, squeeze=False).flat):
            ax.set_axis_off()
            if i >= len(images):
                continue
            pred, true = int(preds[i]), int(targets[i])
            ax.imshow(pixels[i])
            ax.set_title(
                f"pred: {self._class_name(pred)} / true: {self._class_name(true)}",
                color="green" if pred == true else "red",
                fontsize=8,
            )
        return fig


# ---------------------------------------------------------------------- module-level helpers


def _images_of(batch: Any) -> Tensor | None:
    """The image tensor of an ``(images, targets)`` batch, or None if the batch is different."""
    if not isinstance(batch, (tuple, list)) or not batch:
        return None
    images = batch[0]
    if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[1] not in (1, 3):
        return None
    return images


def _holds_features(batch: Any) -> bool:
    """Whether the batch is ``(features[B, F], targets)``: nothing to draw."""
    return isinstance(batch, (tuple, list)) and bool(batch) and getattr(batch[0], "ndim", 0) == 2


def _to_unit_float(images: Tensor) -> Tensor:
    """Images as float in [0, 1] on CPU: uint8 is scaled, anything else min-max normalised."""
    images = images.detach().cpu()
    if images.dtype == torch.uint8:
        return images.float() / 255.0
    images = images.float()
    low, high = images.min(), images.max()
    return (images - low) / (high - low).clamp_min(1e-8)


def _grid_cols(n: int) -> int:
    """Columns of a near-square grid of ``n`` tiles."""
    return max(1, math.ceil(math.sqrt(n)))


def _log_figure(logger: TensorBoardLogger, tag: str, draw: Callable[[], Figure], step: int) -> None:
    """Draw and log a figure; rendering/IO errors are reported instead of stopping training."""
    try:
        logger.experiment.add_figure(tag, draw(), step, close=True)
    except _RENDER_ERRORS as err:
        rank_zero_warn(f"TensorBoardFigures: could not log {tag!r}: {err!r}")


def _confusion_figure(matrix: Tensor, class_names: list[str]) -> Figure:
    """Labelled heatmap with counts; text is scaled down and then dropped for many classes."""
    from matplotlib.figure import Figure

    side = min(max(4.0, 0.45 * matrix.shape[0] + 2.0), 16.0)
    fig = Figure(figsize=(side, side), layout="constrained")
    draw_confusion(fig.subplots(), matrix.numpy(), class_names, "confusion matrix")
    return fig
