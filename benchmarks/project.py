"""The project's side: the config `python -m src.train` would compose, and `train()` on it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig

from benchmarks.timing import RunTimes, read_times
from src.config.compose import compose_config
from src.config.model_input import resolve_model_input
from src.train import train

#: Keep the run to training and validation: no progress bar (it costs time on a non-terminal),
#: no checkpoints or figures (the reference writes none), no logger, no model summary table.
QUIET = [
    "callbacks=none",
    "logger=none",
    "+trainer.enable_progress_bar=false",
    "+trainer.enable_checkpointing=false",
    "+trainer.enable_model_summary=false",
]

#: As a user runs it by default, but for the progress bar (nobody watches it here).
DEFAULT_CALLBACKS = ["~callbacks.progress_bar"]


def with_default_callbacks(overrides: Sequence[str]) -> list[str]:
    """`overrides` with the project's default callbacks and loggers instead of none."""
    return [o for o in overrides if o not in QUIET] + DEFAULT_CALLBACKS


def compose_train_config(overrides: Sequence[str], work_dir: Path) -> DictConfig:
    """The training config for `overrides`, every output under `work_dir`, as `train` gets it,
    with the model's own input settings filled in (as `train` fills them)."""
    cfg = compose_config("train", overrides, work_dir)
    resolve_model_input(cfg)
    return cfg


def project_overrides(
    data_root: Path,
    model: str,
    freeze: str,
    image_size: int,
    batch_size: int,
    workers: int | None,
    epochs: int,
    weights: Path | None,
    extra: Sequence[str] = (),
) -> list[str]:
    """Hydra overrides for the benchmark's settings (`workers` None: the project's default);
    `extra` (e.g. freeze.cache_features=true) comes last so that it can change anything."""
    overrides = [
        "data=folder",
        f"data.root={data_root}",
        f"model.name={model}",
        "model.pretrained=false",
        f"freeze={freeze}",
        f"data.image_size={image_size}",
        f"data.batch_size={batch_size}",
        f"trainer.max_epochs={epochs}",
        "trainer.accelerator=cpu",
        *QUIET,
    ]
    if freeze == "all":  # both loops run the backbone on images; `extra` can turn the cache on
        overrides.append("freeze.cache_features=false")
    if workers is not None:
        overrides.append(f"data.num_workers={workers}")
    if weights is not None:
        overrides.append(f"model.weights_path={weights}")
    return [*overrides, *extra]


def run_project(overrides: Sequence[str], work_dir: Path) -> RunTimes:
    """Run `src.train.train` in this process; wall time includes its data checks and set-up."""
    timer_output = work_dir / "phase_times.json"
    timer = [
        "+callbacks.timer._target_=benchmarks.timing.PhaseTimer",
        f"+callbacks.timer.output={timer_output}",
    ]
    cfg = compose_train_config([*overrides, *timer], work_dir)
    started = time.perf_counter()
    train(cfg)
    wall = time.perf_counter() - started
    times = read_times(timer_output)
    times.wall_s = wall
    times.epoch_end_s = [seconds - started for seconds in times.epoch_end_s]
    return times
