"""The best checkpoint's report sent to the experiment trackers (MLflow, Weights & Biases), so
that a run's page there shows what its run dir holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import Logger, MLFlowLogger, WandbLogger

#: The prefix of the report's metrics, as in TensorBoard.
PREFIX = "best_checkpoint"


def publish_report(logger: Logger, dirpath: Path, scalars: dict[str, Any]) -> None:
    """Every file of the report in `dirpath`, under its folder's name (`evaluation/report.md`), and
    its scalar metrics, to `logger`'s run; other loggers get nothing here (TensorBoard has its own
    figures)."""
    metrics = {f"{PREFIX}/{k}": float(v) for k, v in scalars.items() if v is not None}
    if isinstance(logger, MLFlowLogger):
        client = logger.experiment
        client.log_artifacts(logger.run_id, str(dirpath), dirpath.name)
        for name, value in metrics.items():
            client.log_metric(logger.run_id, name, value)
    elif isinstance(logger, WandbLogger):
        run = logger.experiment
        run.summary.update(metrics)
        for path in sorted(dirpath.rglob("*")):
            if path.is_file():
                run.save(str(path), base_path=str(dirpath.parent), policy="now")


def close_runs(loggers: list[Logger], failed: bool) -> None:
    """End the W&B runs: W&B writes a run's config and summary only when it finishes, which the
    process's exit alone does not do."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.finish(exit_code=1 if failed else 0)
