"""Stop every process together when too many files became unreadable during the run."""

from __future__ import annotations

import lightning as L

from src.callbacks.stop_together import StopTogether
from src.data.dataset import TooManyUnreadableFiles, too_many_unreadable_files


class StopOnUnreadableFiles(StopTogether):
    """Takes over `data.max_read_failures` from the loaders: they count unreadable files in
    memory shared with the training process (`ReadFailureTally`) and go on serving the next
    readable file; past the limit in any process, `StopTogether` stops them all.

    Without this callback a loader past the limit raises where it is, which stops a
    single-process run just as well.
    """

    def setup(self, trainer: L.Trainer, pl_module, stage: str) -> None:
        take_over = getattr(trainer.datamodule, "count_read_failures_for_the_trainer", None)
        if stage == "fit" and take_over is not None:
            take_over()

    def finding(self, trainer: L.Trainer) -> str | None:
        past_limit = getattr(trainer.datamodule, "read_failures_past_limit", None)
        count = past_limit() if past_limit is not None else 0
        if not count:
            return None
        return too_many_unreadable_files(count, trainer.datamodule.max_read_failures, last=None)

    def error(self, trainer: L.Trainer, finding: str | None) -> Exception:
        if finding is None:
            limit = trainer.datamodule.max_read_failures
            finding = (
                "More files than data.max_read_failures="
                f"{limit} became unreadable in another process of the run; check the data folder"
            )
        return TooManyUnreadableFiles(f"{finding} (stopped at step {trainer.global_step})")
