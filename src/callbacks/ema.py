"""`weight_averaging=ema`: Lightning's EMA callback with an update that never waits for the device.

torch's `AveragedModel.update_parameters` reads its update counter on the host twice per call
(`n_averaged == 0`, `n_averaged > 0`: the counter lives on the device, so a CUDA step waits for
the GPU each time) and Lightning's EMA updates tensor by tensor. Here the counter is mirrored on
the host (read once, after any restore) and each (device, dtype) group of tensors is updated by
one foreach call.
"""

from __future__ import annotations

import itertools
from collections import defaultdict

import lightning as L
import torch
from lightning.pytorch.callbacks import EMAWeightAveraging as LightningEMA
from lightning.pytorch.utilities.model_helpers import is_overridden
from torch import nn
from torch.optim.swa_utils import AveragedModel


class DeviceEMA(AveragedModel):
    """An exponential moving average of a module's parameters and buffers, updated on the device:
    floating tensors by `lerp` towards the current values, integer ones (BatchNorm's batch
    counters) by copying them."""

    def __init__(
        self, model: nn.Module, device: torch.device | int | None, use_buffers: bool, decay: float
    ) -> None:
        super().__init__(model, device=device, use_buffers=use_buffers)
        self.decay = decay
        self._updates: int | None = None  # n_averaged on the host; None: not read yet

    def load_state_dict(self, *args, **kwargs):
        result = super().load_state_dict(*args, **kwargs)
        self._updates = None
        return result

    def update_parameters(self, model: nn.Module) -> None:
        if self._updates is None:
            self._updates = int(self.n_averaged)  # once per fit: after a restore it is not 0
        averaged = self._tensors(self.module, self.use_buffers)
        current = self._tensors(model, self.use_buffers)
        groups: dict[tuple, tuple[list[torch.Tensor], list[torch.Tensor]]] = defaultdict(
            lambda: ([], [])
        )
        for average, value in zip(averaged, current, strict=True):
            to, source = groups[(average.device, average.dtype)]
            to.append(average)
            source.append(value.to(average.device, non_blocking=True))
        for (_, dtype), (to, source) in groups.items():
            if self._updates == 0 or not dtype.is_floating_point:
                torch._foreach_copy_(to, source)
            else:
                torch._foreach_lerp_(to, source, 1.0 - self.decay)
        if not self.use_buffers:  # the buffers follow the model's
            buffers = list(self.module.buffers())
            if buffers:
                torch._foreach_copy_(buffers, [b.detach() for b in model.buffers()])
        self.n_averaged += 1
        self._updates += 1

    @staticmethod
    def _tensors(module: nn.Module, with_buffers: bool) -> list[torch.Tensor]:
        tensors = itertools.chain(module.parameters(), module.buffers() if with_buffers else ())
        return [tensor.detach() for tensor in tensors]


class EMAWeightAveraging(LightningEMA):
    """Lightning's `EMAWeightAveraging` (same settings, checkpoints and state key) over
    `DeviceEMA`."""

    def __init__(self, decay: float = 0.999, **kwargs) -> None:
        super().__init__(decay=decay, **kwargs)
        self.decay = decay

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        if is_overridden("configure_model", pl_module):
            pl_module.configure_model()  # the layers it builds belong in the average too
        device = self._device or pl_module.device
        self._average_model = DeviceEMA(pl_module, device, self._use_buffers, self.decay)
