"""The raw compute ceiling: the project's own model stepping on tensors already in memory."""

from __future__ import annotations

import contextlib
import time

import torch
from omegaconf import DictConfig

from benchmarks.timing import RunTimes
from src.config.instantiation import to_plain
from src.finetuning.optimization import optimizer_factory
from src.train import build_model
from src.utils.devices import runs_on_cpu


def _timed(steps: int, warmup: int, step, device: torch.device) -> float:
    """Seconds for `steps` calls of `step` after `warmup` untimed ones (GPU work included)."""
    for _ in range(warmup):
        step()
    _synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    _synchronize(device)
    return time.perf_counter() - started


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def ceiling_device(cfg: DictConfig) -> torch.device:
    """Where the project's run trains: the GPU when the trainer config asks for one and there is
    one, else the CPU."""
    on_gpu = not runs_on_cpu(cfg.trainer) and torch.cuda.is_available()
    return torch.device("cuda") if on_gpu else torch.device("cpu")


def autocast_for(cfg: DictConfig, device: torch.device) -> contextlib.AbstractContextManager:
    """Lightning's mixed precision, as `trainer.precision` asks: bf16 or fp16 autocast."""
    precision = str(cfg.trainer.get("precision", "32-true"))
    if precision.startswith("bf16"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision.startswith("16"):
        return torch.autocast(device.type, dtype=torch.float16)
    return contextlib.nullcontext()


def run_ceiling(cfg: DictConfig, class_names: list[str], steps: int, warmup: int = 2) -> RunTimes:
    """`steps` train steps (forward, loss, backward, optimizer step) and `steps` eval steps
    (forward under inference mode, as Lightning validates) on random uint8 batches.

    The model is the project's `ImageClassifier` built from the same config, so the freeze policy
    (frozen parameters, frozen BatchNorm in eval mode) and the on-device normalisation match.
    """
    started = time.perf_counter()
    torch.manual_seed(0)
    device = ceiling_device(cfg)
    model = build_model(cfg, class_names)
    model.load_starting_weights()
    model.to(device)
    groups = model.finetuner.parameter_groups(float(cfg.optimizer.lr))
    optimizer = optimizer_factory(to_plain(cfg.optimizer))(groups)
    batch, size = int(cfg.data.batch_size), int(cfg.data.image_size)
    images = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, device=device)
    labels = torch.randint(0, len(class_names), (batch,), device=device)

    def train_step() -> None:
        with autocast_for(cfg, device):
            loss = model.criterion(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def eval_step() -> None:
        with torch.inference_mode(), autocast_for(cfg, device):
            model(images)

    times = RunTimes(threads=torch.get_num_threads())
    model.train()
    times.train_s = _timed(steps, warmup, train_step, device)
    times.train_images = steps * batch
    model.eval()
    times.val_s = _timed(steps, warmup, eval_step, device)
    times.val_images = steps * batch
    times.wall_s = time.perf_counter() - started
    return times
