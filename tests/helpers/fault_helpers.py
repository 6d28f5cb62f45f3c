"""Callbacks that tests add to real runs (`+callbacks.name._target_=...`) to provoke faults."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

import torch
from lightning.pytorch.callbacks import Callback

from src.data import batch_transforms


class SlowDown(Callback):
    """Sleeps after every training batch, so that a test can kill the run mid-way."""

    def __init__(self, seconds: float = 0.3) -> None:
        self.seconds = seconds

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        time.sleep(self.seconds)


class PoisonWeights(Callback):
    """Fills the first convolution with NaN from `at_step` on (in process `rank` only, if
    given): the loss becomes NaN."""

    def __init__(self, at_step: int, rank: int | None = None) -> None:
        self.at_step = at_step
        self.rank = rank

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.rank not in (None, trainer.global_rank):
            return
        if trainer.global_step >= self.at_step:
            with torch.no_grad():
                next(pl_module.net.parameters()).fill_(float("nan"))


class RecordSignalHandlers(Callback):
    """Keeps the SIGUSR1 and SIGTERM handlers in force while training."""

    handlers: ClassVar[dict[str, object]] = {}

    def on_train_start(self, trainer, pl_module) -> None:
        RecordSignalHandlers.handlers = {
            "SIGUSR1": signal.getsignal(signal.SIGUSR1),
            "SIGTERM": signal.getsignal(signal.SIGTERM),
        }


class RequeueSignalThenDie(Callback):
    """At `at_step`, sends this process SLURM's requeue signal (SIGUSR1: Lightning saves
    `hpc_ckpt_N.ckpt` and calls `scontrol requeue`), then dies as the requeued job's first start
    is killed."""

    def __init__(self, at_step: int) -> None:
        self.at_step = at_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step != self.at_step:
            return
        os.kill(os.getpid(), signal.SIGUSR1)
        deadline = time.monotonic() + 60
        while not list(Path(trainer.default_root_dir).glob("hpc_ckpt_*.ckpt")):
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        os._exit(137)


class BreakTrainingFiles(Callback):
    """When training starts, points every other training sample of this process's loader (of
    process `rank` only, if given) at a file that does not exist: they fail when read."""

    def __init__(self, rank: int | None = None) -> None:
        self.rank = rank

    def on_train_start(self, trainer, pl_module) -> None:
        if self.rank not in (None, trainer.global_rank):
            return
        dataset = trainer.train_dataloader.dataset
        dataset.samples = [
            replace(sample, path=sample.path.with_name(f"gone-{sample.path.name}"))
            if index % 2 == 0
            else sample
            for index, sample in enumerate(dataset.samples)
        ]


class DeviceRunsOutOfMemory(Callback):
    """From `at_step` on (in process `rank` only, if given), the device runs out of memory
    whenever a batch is decoded on it (`data.decode_on_device=true`)."""

    def __init__(self, at_step: int, rank: int | None = None) -> None:
        self.at_step = at_step
        self.rank = rank

    def on_train_start(self, trainer, pl_module) -> None:
        if self.rank not in (None, trainer.global_rank):
            return
        decode = batch_transforms.decode_batch

        def decode_or_fail(*args, **kwargs):
            if trainer.training and trainer.global_step >= self.at_step:
                raise torch.cuda.OutOfMemoryError(
                    "CUDA out of memory. Tried to allocate 2.00 GiB.\nGPU 0 has a total capacity"
                )
            return decode(*args, **kwargs)

        batch_transforms.decode_batch = decode_or_fail
        self.restore = lambda: setattr(batch_transforms, "decode_batch", decode)

    def teardown(self, trainer, pl_module, stage: str) -> None:
        getattr(self, "restore", lambda: None)()


class SignalPreemptionAt(Callback):
    """At `at_step`, sends process 0 submitit's pre-emption signal (USR2), as submitit's controller
    does before a job's time limit; every start of every process appends "rank:first step" to
    `starts`."""

    def __init__(self, at_step: int, starts: str) -> None:
        self.at_step = at_step
        self.starts = Path(starts)

    def on_train_start(self, trainer, pl_module) -> None:
        with self.starts.open("a", encoding="utf-8") as file:
            file.write(f"{trainer.global_rank}:{trainer.global_step}\n")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.at_step and trainer.global_rank == 0:
            os.kill(os.getpid(), signal.SIGUSR2)


class FailInProcess(Callback):
    """At `at_step`, process `rank` alone raises, as a failed checkpoint write would: the other
    processes, not knowing, wait for it in their next collective."""

    def __init__(self, at_step: int, rank: int) -> None:
        self.at_step = at_step
        self.rank = rank

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.at_step and trainer.global_rank == self.rank:
            raise OSError(f"No space left on device (process {self.rank}, step {self.at_step})")
