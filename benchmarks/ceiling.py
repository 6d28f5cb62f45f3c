"""The raw compute ceiling: the project's own model stepping on tensors already in memory."""

from __future__ import annotations

import time

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from benchmarks.timing import RunTimes
from src.train import build_model
from src.utils.entry import to_plain


def _timed(steps: int, warmup: int, step) -> float:
    """Seconds for `steps` calls of `step` after `warmup` untimed ones."""
    for _ in range(warmup):
        step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return time.perf_counter() - started


def run_ceiling(cfg: DictConfig, class_names: list[str], steps: int, warmup: int = 2) -> RunTimes:
    """`steps` train steps (forward, loss, backward, optimizer step) and `steps` eval steps
    (forward under inference mode, as Lightning validates) on random uint8 batches.

    The model is the project's `ImageClassifier` built from the same config, so the freeze policy
    (frozen parameters, frozen BatchNorm in eval mode) and the on-device normalisation match.
    """
    started = time.perf_counter()
    torch.manual_seed(0)
    model = build_model(cfg, class_names)
    model.load_starting_weights()
    optimizer_cfg = {k: v for k, v in to_plain(cfg.optimizer).items() if k != "backbone_lr_mult"}
    optimizer = instantiate(optimizer_cfg, _partial_=True)(model.trainable_parameters())
    batch, size = int(cfg.data.batch_size), int(cfg.data.image_size)
    images = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8)
    labels = torch.randint(0, len(class_names), (batch,))

    def train_step() -> None:
        loss = model.criterion(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def eval_step() -> None:
        with torch.inference_mode():
            model(images)

    times = RunTimes(threads=torch.get_num_threads())
    model.train()
    times.train_s = _timed(steps, warmup, train_step)
    times.train_images = steps * batch
    model.eval()
    times.val_s = _timed(steps, warmup, eval_step)
    times.val_images = steps * batch
    times.wall_s = time.perf_counter() - started
    return times
