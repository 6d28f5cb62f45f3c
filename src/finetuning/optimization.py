"""The optimizer and its scheduler, built from the `optimizer` and `scheduler` config groups over
parameter groups: discriminative learning rates, and groups added while training.

The groups are always built in one order (head, backbone, then one group per unfreezing step), so
a fresh optimizer for a resumed run has the groups that the checkpoint's optimizer state holds.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
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

from src.finetuning.head import in_head
from src.utils.errors import UserError

#: Per-group keys that hold a learning rate (schedulers add `initial_lr`, OneCycle the others).
LR_KEYS = ("lr", "initial_lr", "max_lr", "min_lr")
#: Schedulers whose only per-group state is `base_lrs` plus keys in the group itself, so that a
#: group added while training follows the schedule.
GROWABLE_SCHEDULERS = (StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR, OneCycleLR)


def optimizer_factory(config: dict[str, Any]) -> Callable[..., Optimizer]:
    """The configured optimizer class with its arguments, waiting for the parameter groups.

    `backbone_lr_mult` is ours, not the optimizer's; `fused` reaches only optimizers that take it
    (SGD, Adam, AdamW, ...), so `optimizer._target_=torch.optim.RMSprop` works unchanged.
    """
    arguments = {key: value for key, value in config.items() if key != "backbone_lr_mult"}
    if "fused" in arguments:
        accepted = inspect.signature(get_class(arguments["_target_"])).parameters
        if "fused" not in accepted:
            del arguments["fused"]
    return instantiate(arguments, _partial_=True, _convert_="all")


def named_groups(
    net: nn.Module,
    head_name: str,
    steps: Sequence[tuple[str, set[str]]],
    lr: float,
    backbone_lr_mult: float,
) -> list[dict[str, Any]]:
    """`steps` are (group name, names of the parameters that train from then on), the first the
    starting policy. The head trains at `lr`, everything else at `lr * backbone_lr_mult`.

    Without a multiplier and without unfreezing there is one unnamed group.
    """
    parameters = dict(net.named_parameters())
    if backbone_lr_mult == 1.0 and len(steps) == 1:
        return [{"params": [p for n, p in parameters.items() if n in steps[0][1]]}]
    is_head = {n: in_head(n, head_name) for n in parameters}
    groups = [
        {"name": "head", "lr": lr, "params": [p for n, p in parameters.items() if is_head[n]]}
    ]
    seen = {n for n in parameters if is_head[n]}
    for index, (name, trainable) in enumerate(steps):
        new = [n for n in parameters if n in trainable and n not in seen]
        seen.update(new)
        if new:  # the callback skips empty groups too
            group_name = "backbone" if index == 0 else name
            params = [parameters[n] for n in new]
            groups.append({"name": group_name, "lr": lr * backbone_lr_mult, "params": params})
    return groups


def configure_optimization(
    optimizer_config: dict[str, Any],
    scheduler_config: dict[str, Any] | None,
    groups: list[dict[str, Any]],
    total_steps: Callable[[], int],
) -> dict[str, Any]:
    """What `LightningModule.configure_optimizers` returns: the optimizer over `groups`, and the
    scheduler when one is configured (`total_steps: null` filled in from `total_steps()`)."""
    optimizer = optimizer_factory(optimizer_config)(groups)
    scheduler_config = scheduler_config or {}
    scheduler_kwargs = dict(scheduler_config.get("scheduler") or {})
    if not scheduler_kwargs:
        return {"optimizer": optimizer}
    if "total_steps" in scheduler_kwargs and scheduler_kwargs["total_steps"] is None:
        scheduler_kwargs["total_steps"] = total_steps()
    lr = float(optimizer_config["lr"])
    scheduler_kwargs = scale_per_group(scheduler_kwargs, optimizer.param_groups, lr)
    scheduler = instantiate(scheduler_kwargs, optimizer=optimizer, _convert_="all")
    return {
        "optimizer": optimizer,
        "lr_scheduler": {
            "scheduler": scheduler,
            "interval": scheduler_config.get("interval", "epoch"),
        },
    }


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
        if scheduler.optimizer is optimizer:
            scheduler.base_lrs.append(scheduler.base_lrs[0] * lr_mult)
            scheduler._last_lr.append(group["lr"])
    return group
