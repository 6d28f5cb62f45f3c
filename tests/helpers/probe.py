"""`Probe`: a callback that records what a training run did, so that a test can check that an
option took effect rather than only that the run finished.

It records, for a run that `src.train.train` starts inside `probed()`:

- each training step: its epoch and batch, every optimizer group's learning rate as the step used
  it, the shapes of the batch's inputs and targets, the gradient norm before and after clipping;
- each epoch: which parameters could train and got gradients, the optimizer groups, and which
  tensors of the network (parameters and buffers) changed over the epoch;
- the head's tensors after every optimizer step;
- the dtypes the network and its head ran in, the device, the number of validation batches, the
  learning-rate finder's suggestion; and the trainer itself, for what it holds after the fit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from torch import nn

import src.train


@dataclass(frozen=True)
class Step:
    """One training step, as its batch started."""

    epoch: int
    batch: int
    #: Each optimizer group's learning rate, which this step's update uses.
    lrs: tuple[float, ...]
    inputs: tuple[int, ...]
    targets: tuple[int, ...]


def gradient_norm(net: nn.Module) -> float:
    norms = [p.grad.detach().float().norm() for p in net.parameters() if p.grad is not None]
    return float(torch.linalg.vector_norm(torch.stack(norms))) if norms else 0.0


def state_of(net: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in net.state_dict().items()}


class Probe(Callback):
    """What the fit did (an earlier fit of the same trainer, the learning-rate finder's, is
    forgotten when training starts)."""

    def __init__(self) -> None:
        self.trainer: L.Trainer | None = None
        self.lr_suggestion: float | None = None
        self._hooks: list[Any] = []
        self._reset()

    def _reset(self) -> None:
        self.steps: list[Step] = []
        #: Per epoch: names of the parameters that require gradients at its first batch.
        self.trainable: list[set[str]] = []
        #: Per epoch: (name, learning rate) of each optimizer group at its first batch.
        self.groups: list[list[tuple[str | None, float]]] = []
        #: Per epoch: names of the parameters that got a nonzero gradient in one of its steps.
        self.graded: list[set[str]] = []
        #: Per epoch: names of the network's tensors (parameters, buffers) that it changed.
        self.changed: list[set[str]] = []
        #: Each step's gradient norm over the network: before the step (before any clipping),
        #: and after it (what the optimizer used).
        self.grad_norms: list[tuple[float, float]] = []
        #: The head's tensors (by their names in the network) after each optimizer step.
        self.after_step: list[dict[str, torch.Tensor]] = []
        #: (module, input dtype, output dtype) of training forward passes of `net` and its head.
        self.dtypes: set[tuple[str, torch.dtype, torch.dtype]] = set()
        self.val_batches = 0
        self.device: torch.device | None = None
        self._epoch_start: dict[str, torch.Tensor] = {}

    @property
    def parameter_names(self) -> set[str]:
        return {name for name, _ in self.trainer.lightning_module.net.named_parameters()}

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._reset()
        self.trainer = trainer
        self.device = pl_module.device
        self._remove_hooks()
        for name, module in (("net", pl_module.net), ("head", pl_module.head)):
            self._hooks.append(module.register_forward_hook(self._dtype_recorder(name)))

    def _dtype_recorder(self, name: str) -> Callable[[nn.Module, tuple, torch.Tensor], None]:
        def record(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
            if module.training:
                self.dtypes.add((name, args[0].dtype, output.dtype))

        return record

    def _remove_hooks(self) -> None:
        for hook in self._hooks:
            hook.remove()
        self._hooks = []

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._remove_hooks()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_start = state_of(pl_module.net)

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        groups = trainer.optimizers[0].param_groups
        inputs, targets = batch
        self.steps.append(
            Step(
                trainer.current_epoch,
                batch_idx,
                tuple(float(group["lr"]) for group in groups),
                tuple(inputs.shape),
                tuple(targets.shape),
            )
        )
        if batch_idx == 0:  # after every epoch-start hook (gradual unfreezing's included)
            net = pl_module.net
            self.trainable.append({n for n, p in net.named_parameters() if p.requires_grad})
            self.groups.append([(group.get("name"), float(group["lr"])) for group in groups])

    def on_before_optimizer_step(
        self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        if len(self.graded) < len(self.trainable):
            self.graded.append(set())
        parameters = pl_module.net.named_parameters()
        self.graded[-1].update(n for n, p in parameters if p.grad is not None and p.grad.any())
        self.grad_norms.append((gradient_norm(pl_module.net), math.nan))

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        if self.grad_norms:
            self.grad_norms[-1] = (self.grad_norms[-1][0], gradient_norm(pl_module.net))
        head = pl_module.head.state_dict()
        named = {f"{pl_module.head_name}.{name}": t.detach().clone() for name, t in head.items()}
        self.after_step.append(named)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        now = pl_module.net.state_dict()
        self.changed.append(
            {
                name
                for name, before in self._epoch_start.items()
                if not torch.equal(now[name], before)
            }
        )
        self._epoch_start = {}

    def on_validation_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int, *_: Any
    ) -> None:
        if not trainer.sanity_checking:
            self.val_batches += 1


def assert_trained(probe: Probe, *epochs: tuple[str, ...], every_one_moves: bool = True) -> None:
    """The run had these epochs, and in each exactly the parameters named with its prefixes
    ("" for every name) could train, got gradients and changed; every other tensor of the
    network (BatchNorm statistics included) stayed bit-identical.

    `every_one_moves=False`: some trained parameters may stay put, where the steps are smaller
    than float32 can show (a small rate times a small gradient), as long as each prefix moved.
    """
    names = probe.parameter_names
    assert len(probe.changed) == len(epochs)
    for epoch, prefixes in enumerate(epochs):
        expected = {name for name in names if name.startswith(prefixes)}
        assert probe.trainable[epoch] == expected, f"epoch {epoch}: not what trains"
        assert probe.graded[epoch] == expected, f"epoch {epoch}: not what gets gradients"
        moved = probe.changed[epoch]
        if every_one_moves:
            unchanged = sorted(expected - moved)
            assert not unchanged, f"epoch {epoch}: trainable but unchanged: {unchanged[:5]}"
        else:
            assert all(any(n.startswith(prefix) for n in moved) for prefix in prefixes), epoch
        frozen_moved = sorted(n for n in moved if not n.startswith(prefixes))
        assert not frozen_moved, f"epoch {epoch}: frozen but changed: {frozen_moved[:5]}"


@contextmanager
def probed() -> Iterator[Probe]:
    """A `Probe` in every trainer that `src.train.train` builds meanwhile, and the learning-rate
    finder's suggestion recorded in it."""
    probe = Probe()
    build_trainer, find_learning_rate = src.train.build_trainer, src.train.find_learning_rate

    def with_probe(cfg: Any, callbacks: list[L.Callback], loggers: list) -> L.Trainer:
        return build_trainer(cfg, [*callbacks, probe], loggers)

    def recording_the_suggestion(*args: Any, **kwargs: Any) -> float | None:
        probe.lr_suggestion = find_learning_rate(*args, **kwargs)
        return probe.lr_suggestion

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(src.train, "build_trainer", with_probe)
        patch.setattr(src.train, "find_learning_rate", recording_the_suggestion)
        yield probe
