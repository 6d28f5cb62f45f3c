"""Stop every process together when the device of one failed while decoding images on it."""

from __future__ import annotations

import lightning as L

from src.callbacks.stop_together import StopTogether
from src.data.device_decoding import DeviceFailure


class StopOnDeviceFailure(StopTogether):
    """With `data.decode_on_device` and several processes, a process whose device runs out of
    memory (or fails otherwise) while decoding records it and goes on with blank batches until
    `StopTogether` stops them all; raising there would leave the others waiting in the next
    all-reduce until the process-group timeout. Validation's end is a check point too, so that
    no checkpoint is written after such a failure. One process alone stops at once.
    """

    def setup(self, trainer: L.Trainer, pl_module, stage: str) -> None:
        defer = getattr(trainer.datamodule, "defer_device_failures", None)
        if stage == "fit" and trainer.world_size > 1 and defer is not None:
            defer()

    def on_validation_end(self, trainer: L.Trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self.stop_if_any_process_met_it(trainer)

    def finding(self, trainer: L.Trainer) -> str | None:
        return getattr(trainer.datamodule, "device_failure", None)

    def error(self, trainer: L.Trainer, finding: str | None) -> Exception:
        if finding is None:
            finding = (
                "the device of another process of the run failed while decoding images on it "
                f"(its message says why), by step {trainer.global_step}"
            )
        return DeviceFailure(f"{finding}; every process stopped")
