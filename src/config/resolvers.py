"""OmegaConf resolvers the configs use, registered when the `src` package is imported."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from omegaconf import OmegaConf

from src.models.tasks import MONITORED, check_task
from src.utils.devices import computes_in_bf16
from src.utils.errors import require_int, require_number


def batch_lr_factor(batch_size: int, base_batch_size: int) -> float:
    """How much larger a learning rate tuned for `base_batch_size` gets at `batch_size`: the
    square root of the ratio, which keeps full fine-tuning stable where the linear rule does not
    (README, Benchmarks)."""
    return math.sqrt(batch_size / base_batch_size)


def scaled_lr(base_lr: float, base_batch_size: int, batch_size: int) -> float:
    """`base_lr`, tuned for `base_batch_size` images per step, at `batch_size` images per step."""
    require_number(base_lr, "the base learning rate of ${scaled_lr:...}", 0.0)
    require_int(base_batch_size, "the base batch size of ${scaled_lr:...}", 1)
    require_int(batch_size, "data.batch_size", 1)
    return base_lr * batch_lr_factor(batch_size, base_batch_size)


def gpu_precision() -> str:
    """`trainer=gpu`'s precision: bf16-mixed where this process's GPU computes in bfloat16
    natively (Ampere and later), else 16-mixed (with loss scaling; bfloat16 emulated on older
    GPUs is slower). Without a GPU, bf16-mixed: Lightning refuses `accelerator: gpu` anyway."""
    if torch.cuda.is_available() and not computes_in_bf16():
        return "16-mixed"
    return "bf16-mixed"


def monitored(task: str) -> str:
    """The validation metric that `task`'s best checkpoint and early stopping follow."""
    check_task(task)
    return MONITORED[task]


def local_artifacts(tracking_uri: str | None, directory: str) -> str | None:
    """Where MLflow keeps a run's artifacts: `directory` beside a local store (a SQLite file or a
    folder), None for a tracking server, which keeps them itself."""
    uri = str(tracking_uri or "")
    local = "://" not in uri or uri.startswith(("sqlite:", "file:"))
    return str(Path(directory).resolve()) if local else None


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("scaled_lr"):
        OmegaConf.register_new_resolver("scaled_lr", scaled_lr)
    if not OmegaConf.has_resolver("monitored"):
        OmegaConf.register_new_resolver("monitored", monitored)
    if not OmegaConf.has_resolver("gpu_precision"):
        OmegaConf.register_new_resolver("gpu_precision", gpu_precision)
    if not OmegaConf.has_resolver("local_artifacts"):
        OmegaConf.register_new_resolver("local_artifacts", local_artifacts)
