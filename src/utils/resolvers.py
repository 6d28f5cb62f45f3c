"""OmegaConf resolvers the configs use, registered when the `src` package is imported."""

from __future__ import annotations

from omegaconf import OmegaConf

from src.errors import require_int, require_number


def linear_lr(base_lr: float, base_batch_size: int, batch_size: int) -> float:
    """The linear scaling rule (Goyal et al., 2017): `base_lr` was tuned for `base_batch_size`
    images per step; `batch_size` images per step take that many times more."""
    require_number(base_lr, "the base learning rate of ${linear_lr:...}", 0.0)
    require_int(base_batch_size, "the base batch size of ${linear_lr:...}", 1)
    require_int(batch_size, "data.batch_size", 1)
    return base_lr * batch_size / base_batch_size


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("linear_lr"):
        OmegaConf.register_new_resolver("linear_lr", linear_lr)
