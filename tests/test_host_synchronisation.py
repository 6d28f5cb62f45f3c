"""A default training step never waits for the device: nothing in the step, the module's metrics
or the default callbacks reads a tensor's value on the host outside the logging interval.

On the CPU nothing waits, so the calls that would make a CUDA step wait are counted instead:
a tensor's value read by Python (`item`, `float`, `bool`, `int`, `tolist`, `cpu`, `numpy`) and
`torch.unique`, whose output size depends on the values.
"""

from __future__ import annotations

import collections
import traceback
from pathlib import Path
from typing import ClassVar

import pytest
import torch
from lightning.pytorch import Callback

from src.train import train

#: Samplers draw their indices on the host by design (CPU generators), never on the device.
SAMPLERS = "torch/utils/data/sampler.py"

READS_ON_HOST = ("item", "__bool__", "__float__", "__int__", "__index__", "tolist", "cpu", "numpy")


class CountBetweenBatchStarts(Callback):
    """Counts host reads from the start of each training batch to the start of the next (the
    step, the batch-end hooks, the scheduler and logging bookkeeping); data loading runs in a
    worker process, and the last batch's window (validation follows) is not counted."""

    counts: ClassVar[collections.Counter] = collections.Counter()
    window: ClassVar[int | None] = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        last = trainer.num_training_batches - 1
        type(self).window = batch_idx if 1 <= batch_idx < last else None

    def on_validation_start(self, trainer, pl_module) -> None:
        type(self).window = None


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> collections.Counter:
    counts = CountBetweenBatchStarts.counts
    counts.clear()

    def counting(original):
        def read(*args, **kwargs):
            if CountBetweenBatchStarts.window is not None:
                stack = traceback.extract_stack()[:-1]
                if any(SAMPLERS in frame.filename for frame in stack):
                    return original(*args, **kwargs)
                where = " <- ".join(f"{Path(f.filename).name}:{f.lineno}" for f in stack[-6:])
                counts[f"{original.__name__}: {where}"] += 1
            return original(*args, **kwargs)

        return read

    for name in READS_ON_HOST:
        monkeypatch.setattr(torch.Tensor, name, counting(getattr(torch.Tensor, name)))
    monkeypatch.setattr(torch, "unique", counting(torch.unique))
    return counts


@pytest.mark.slow
def test_no_host_reads_in_training_steps(make_config, stripes_root: Path, counted) -> None:
    cfg = make_config(
        [
            "data=folder",
            f"data.root={stripes_root}",
            "model.name=resnet18",
            "model.pretrained=false",
            "data.image_size=32",
            "data.batch_size=2",
            "data.num_workers=1",
            "trainer.max_epochs=1",
            # batches resized on the device in the one epoch (16 px)
            "data.progressive_resizing.enabled=true",
            "data.progressive_resizing.final_epochs=0",
            "trainer.limit_val_batches=1",
            "trainer.log_every_n_steps=100",  # no logging step among the counted ones
            "+callbacks.count._target_=tests.test_host_synchronisation.CountBetweenBatchStarts",
        ]
    )
    train(cfg)
    assert sum(counted.values()) == 0, dict(counted)
