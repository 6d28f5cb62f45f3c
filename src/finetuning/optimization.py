"""The optimizer and its scheduler, built from the `optimizer` and `scheduler` config groups over
parameter groups: discriminative learning rates, layer-wise learning-rate decay, and groups
added while training.

The groups are always built in one order (head, the starting policy's groups, then each
unfreezing step's), so a fresh optimizer for a resumed run has the groups that the checkpoint's
optimizer state holds.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hydra.utils import get_class, instantiate
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import (
    CosineAnnealingLR,
    ExponentialLR,
    LRScheduler,
    MultiStepLR,
    OneCycleLR,
    StepLR,
)

from src.finetuning.blocks import block_label
from src.finetuning.warmup import LinearWarmup
from src.networks.blocks import within, within_any
from src.networks.description import Block
from src.utils.errors import UserError, require_number

#: Keys of the `optimizer` config group that are ours, not the optimizer class's.
OWN_KEYS = ("backbone_lr_mult", "layer_decay")
#: Per-group keys that hold a learning rate (schedulers add `initial_lr`, OneCycle the others).
LR_KEYS = ("lr", "initial_lr", "max_lr", "min_lr")
#: Schedulers whose only per-group state is `base_lrs` plus keys in the group itself, so that a
#: group added while training follows the schedule.
GROWABLE_SCHEDULERS = (StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR, OneCycleLR)


def optimizer_factory(config: dict[str, Any]) -> Callable[..., Optimizer]:
    """The configured optimizer class with its arguments, waiting for the parameter groups.

    `backbone_lr_mult` and `layer_decay` are ours, not the optimizer's; `fused` reaches only
    optimizers that take it (SGD, Adam, AdamW, ...), so `optimizer._target_=torch.optim.RMSprop`
    works unchanged.
    """
    arguments = {key: value for key, value in config.items() if key not in OWN_KEYS}
    if "fused" in arguments:
        accepted = inspect.signature(get_class(arguments["_target_"])).parameters
        if "fused" not in accepted:
            del arguments["fused"]
    return instantiate(arguments, _partial_=True, _convert_="all")


def check_layer_decay(value: object) -> None:
    """`optimizer.layer_decay`: null, or a factor above 0 and at most 1."""
    if value is None:
        return
    require_number(value, "optimizer.layer_decay", 0.0, 1.0)
    if value == 0:
        raise UserError(
            "optimizer.layer_decay=0 would leave every block below the head untrained; give a "
            "factor such as 0.75, or freeze=all to train the head alone"
        )


@dataclass(frozen=True)
class RateScales:
    """How fast each backbone parameter trains relative to the head (`optimizer.lr`): at
    `backbone_lr_mult` times its rate, and with `layer_decay` the last of the `blocks` a further
    `layer_decay` times slower, the one before it `layer_decay` squared, and so on down to the
    first (parameters outside every block, such as a ViT's class token, with the first)."""

    backbone_lr_mult: float = 1.0
    layer_decay: float | None = None
    blocks: tuple[Block, ...] = ()

    @property
    def uniform(self) -> bool:
        return self.backbone_lr_mult == 1.0 and self.layer_decay is None

    def block_of(self, parameter: str) -> int:
        """Index of the block that holds `parameter` (0 when none does)."""
        for index, block in enumerate(self.blocks):
            if within_any(parameter, block):
                return index
        return 0

    def split(self, step: str | None, names: Sequence[str]) -> list[tuple[str, list[str], float]]:
        """(group name, parameter names, scale) of the parameters `names` that start to train at
        `step` (None: from the start): one group, or with `layer_decay` one per block, named
        after it (or after the step, when the step's parameters sit in one block)."""
        if not names:
            return []
        if self.layer_decay is None:
            return [(step or "backbone", list(names), self.backbone_lr_mult)]
        by_block: dict[int, list[str]] = {}
        for name in names:
            by_block.setdefault(self.block_of(name), []).append(name)
        groups = []
        for index in sorted(by_block):
            label = block_label(self.blocks[index]) if self.blocks else "backbone"
            if step is not None:
                label = step if len(by_block) == 1 else f"{step}/{label}"
            scale = self.backbone_lr_mult * self.layer_decay ** (len(self.blocks) - index)
            groups.append((label, by_block[index], scale))
        return groups


def named_groups(
    net: nn.Module,
    head_name: str,
    steps: Sequence[tuple[str, set[str]]],
    lr: float,
    scales: RateScales,
) -> list[dict[str, Any]]:
    """`steps` are (group name, names of the parameters that train from then on), the first the
    starting policy. The head trains at `lr`, everything else at `lr` times its scale.

    Without a multiplier, a layer decay and unfreezing there is one unnamed group.
    """
    parameters = dict(net.named_parameters())
    if scales.uniform and len(steps) == 1:
        return [{"params": [p for n, p in parameters.items() if n in steps[0][1]]}]
    is_head = {n: within(n, head_name) for n in parameters}
    groups = [
        {"name": "head", "lr": lr, "params": [p for n, p in parameters.items() if is_head[n]]}
    ]
    seen = {n for n in parameters if is_head[n]}
    for index, (name, trainable) in enumerate(steps):
        new = [n for n in parameters if n in trainable and n not in seen]
        seen.update(new)
        for group, members, scale in scales.split(name if index else None, new):
            params = [parameters[n] for n in members]
            groups.append({"name": group, "lr": lr * scale, "params": params})
    return groups


def configure_optimization(
    optimizer_config: dict[str, Any],
    scheduler_config: dict[str, Any] | None,
    groups: list[dict[str, Any]],
    total_steps: Callable[[], int],
    epochs: Callable[[], int],
) -> tuple[list[Optimizer], list[dict[str, Any]]]:
    """What `LightningModule.configure_optimizers` returns: the optimizer over `groups`, the
    scheduler when one is configured (`total_steps: null` filled in from `total_steps()`, the
    optimizer steps of the whole fit over `epochs()`), and with `warmup_epochs` a linear warmup
    that steps the schedule itself (`LinearWarmup`)."""
    optimizer = optimizer_factory(optimizer_config)(groups)
    scheduler_config = scheduler_config or {}
    scheduler_kwargs = dict(scheduler_config.get("scheduler") or {})
    scheduler, interval = None, scheduler_config.get("interval", "epoch")
    if scheduler_kwargs:
        if "total_steps" in scheduler_kwargs and scheduler_kwargs["total_steps"] is None:
            scheduler_kwargs["total_steps"] = total_steps()
        lr = float(optimizer_config["lr"])
        scheduler_kwargs = scale_per_group(scheduler_kwargs, optimizer.param_groups, lr)
        scheduler = instantiate(scheduler_kwargs, optimizer=optimizer, _convert_="all")
    warmup_epochs = float(scheduler_config.get("warmup_epochs") or 0)
    if warmup_epochs > 0:
        steps_per_epoch = total_steps() / epochs()
        every = 1 if interval == "step" else round(steps_per_epoch)
        warmup_steps = round(warmup_epochs * steps_per_epoch)
        scheduler, interval = LinearWarmup(optimizer, scheduler, warmup_steps, every), "step"
    if scheduler is None:
        return [optimizer], []
    return [optimizer], [{"scheduler": scheduler, "interval": interval}]


def scale_per_group(
    scheduler_kwargs: dict[str, Any], groups: list[dict[str, Any]], lr: float
) -> dict[str, Any]:
    """A scalar `max_lr`/`base_lr` (OneCycleLR, CyclicLR) becomes one value per group, in
    proportion to the group's learning rate, so the schedule keeps the discriminative ratios."""
    scaled = dict(scheduler_kwargs)
    for key in ("max_lr", "base_lr"):
        if isinstance(scaled.get(key), (int, float)) and len(groups) > 1:
            scaled[key] = [scaled[key] * group.get("lr", lr) / lr for group in groups]
    return scaled


def check_growable(schedulers: Sequence[LRScheduler]) -> None:
    """Refuse, before training, a scheduler that a group added mid-run would not follow."""
    for scheduler in schedulers:
        if isinstance(scheduler, LinearWarmup):
            scheduler = scheduler.schedule
            if scheduler is None:
                continue
        if not isinstance(scheduler, GROWABLE_SCHEDULERS):
            names = ", ".join(cls.__name__ for cls in GROWABLE_SCHEDULERS)
            raise UserError(
                f"gradual unfreezing adds optimizer groups while training, which "
                f"{type(scheduler).__name__} cannot follow; use one of {names} "
                "(scheduler=step, cosine, onecycle or none)"
            )


def add_group(
    optimizer: Optimizer,
    schedulers: Sequence[LRScheduler],
    name: str,
    params: list[nn.Parameter],
    lr_mult: float,
) -> dict[str, Any]:
    """Add `params` as a group that copies the head group's settings (the head is group 0) with
    every learning rate times `lr_mult`: it joins the schedule where the head is now, e.g. after
    StepLR's decays or partway through a one-cycle."""
    head = optimizer.param_groups[0]
    group = {key: value for key, value in head.items() if key != "params"}
    for key in LR_KEYS:
        if key in group:
            group[key] = group[key] * lr_mult
    group.update(name=name, params=params)
    optimizer.add_param_group(group)
    for scheduler in schedulers:
        if scheduler.optimizer is not optimizer:
            continue
        if isinstance(scheduler, LinearWarmup):
            scheduler.add_group(lr_mult)
        else:
            scheduler.base_lrs.append(scheduler.base_lrs[0] * lr_mult)
            scheduler._last_lr.append(group["lr"])
    return group
