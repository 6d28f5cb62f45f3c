"""A training step never waits for the device: nothing in the step, the module's metrics, the
default callbacks or `weight_averaging=ema` reads a tensor's value on the host outside the logging
interval. Under DDP, Lightning itself reads one value per step (the SIGTERM flag broadcast from
process 0, `_broadcast_sigterm_tensor`, Lightning >= 2.5.2) and the project adds none.

On the CPU nothing waits, so the calls that would make a CUDA step wait are counted instead:
a tensor's value read by Python (`item`, `float`, `bool`, `int`, `tolist`, `cpu`, `numpy`) and
`torch.unique`, whose output size depends on the values.
"""

from __future__ import annotations

import collections
import json
import traceback
from pathlib import Path

import pytest
import torch
from lightning.pytorch import Callback

from tests.helpers import run_module

#: Samplers draw their indices on the host by design (CPU generators), never on the device.
SAMPLERS = "torch/utils/data/sampler.py"

READS_ON_HOST = ("item", "__bool__", "__float__", "__int__", "__index__", "tolist", "cpu", "numpy")

#: Lightning's own read per step under DDP: the SIGTERM flag broadcast from process 0.
LIGHTNING_SIGTERM_BROADCAST = "training_epoch_loop.py"


class CountHostReads(Callback):
    """Counts host reads from the start of each training batch to the start of the next (the
    step, the batch-end hooks, the scheduler and logging bookkeeping), in every process; data
    loading runs in a worker process, and the first and last batches' windows (the first EMA
    update, validation) are not counted. Writes `<out>/rank<N>.json` when training ends."""

    def __init__(self, out: str) -> None:
        self.out = Path(out)
        self.counts: collections.Counter = collections.Counter()
        self.windows = 0
        self.counting = False
        self.originals: dict[str, object] = {}

    def setup(self, trainer, pl_module, stage: str) -> None:
        for name in READS_ON_HOST:
            self.originals[name] = getattr(torch.Tensor, name)
            setattr(torch.Tensor, name, self._counting(self.originals[name]))
        self.originals["unique"] = torch.unique
        torch.unique = self._counting(torch.unique)

    def _counting(self, original):
        def read(*args, **kwargs):
            if self.counting:
                stack = traceback.extract_stack()[:-1]
                if not any(SAMPLERS in frame.filename for frame in stack):
                    where = " <- ".join(f"{Path(f.filename).name}:{f.lineno}" for f in stack[-6:])
                    self.counts[f"{original.__name__}: {where}"] += 1
            return original(*args, **kwargs)

        return read

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        self.counting = 1 <= batch_idx < trainer.num_training_batches - 1
        self.windows += self.counting

    def on_validation_start(self, trainer, pl_module) -> None:
        self.counting = False

    def on_train_end(self, trainer, pl_module) -> None:
        self.counting = False
        for name, original in self.originals.items():
            setattr(torch if name == "unique" else torch.Tensor, name, original)
        self.out.mkdir(parents=True, exist_ok=True)
        record = {"windows": self.windows, "counts": dict(self.counts)}
        (self.out / f"rank{trainer.global_rank}.json").write_text(json.dumps(record))


RUN = [
    "model.name=resnet18",
    "model.pretrained=false",
    "data.image_size=32",
    "data.batch_size=2",
    "data.num_workers=1",
    "trainer.max_epochs=1",
    "trainer.accelerator=cpu",
    # batches resized on the device in the one epoch (16 px)
    "data.progressive_resizing.enabled=true",
    "data.progressive_resizing.final_epochs=0",
    "trainer.limit_val_batches=1",
    "trainer.log_every_n_steps=100",  # no logging step among the counted ones
    "+callbacks.count._target_=tests.test_host_synchronisation.CountHostReads",
]


@pytest.mark.slow
@pytest.mark.parametrize(
    "settings",
    [[], ["weight_averaging=ema"], ["trainer=ddp", "weight_averaging=ema"]],
    ids=["default", "weight_averaging=ema", "DDP, 2 processes, ema"],
)
def test_no_host_reads_in_training_steps(
    settings: list[str], stripes_root: Path, tmp_path: Path
) -> None:
    out = tmp_path / "reads"
    result = run_module(
        "src.train", "data=folder", f"data.root={stripes_root}", *RUN, *settings,
        f"+callbacks.count.out={out}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    processes = 2 if "trainer=ddp" in settings else 1
    records = [json.loads((out / f"rank{r}.json").read_text()) for r in range(processes)]
    for record in records:
        assert record["windows"] >= 3
        ours = {k: n for k, n in record["counts"].items() if LIGHTNING_SIGTERM_BROADCAST not in k}
        assert ours == {}
        lightnings = sum(record["counts"].values())
        assert lightnings == (record["windows"] if processes > 1 else 0), record["counts"]
