"""submitit's signal before a time limit (or a pre-emption) stops the run with a checkpoint at the
current step, submitit requeues the job, and its next start resumes from that step: through
`hydra/launcher=submitit_local`, whose controller requeues and restarts a job as SLURM does."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.helpers import TINY, run_module

pytestmark = pytest.mark.slow

#: TINY with batches of 2: 4 of them a process even when two share the 24 images.
RUN = [*(o for o in TINY if not o.startswith("data.batch_size=")), "data.batch_size=2"]


@pytest.mark.parametrize("devices", [1, 2], ids=["one process", "DDP, 2 processes"])
def test_a_signalled_job_saves_its_step_is_requeued_and_resumes_from_it(
    devices: int, stripes_root: Path, tmp_path: Path
) -> None:
    starts = tmp_path / "starts.txt"
    result = run_module(
        "src.train", "-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10",
        "data=folder", f"data.root={stripes_root}", *RUN, "trainer.limit_train_batches=4",
        "trainer.accelerator=cpu", f"trainer.devices={devices}",
        "+callbacks.preempt._target_=tests.helpers.fault_helpers.SignalPreemptionAt",
        "+callbacks.preempt.at_step=1", f"+callbacks.preempt.starts={starts}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = (tmp_path / "outputs" / "train_multirun").iterdir()
    # Process 0 signalled after step 1; every process stopped at the next check point
    # (log_every_n_steps is 1), after step 2 of 4 in the first epoch; the requeued start of every
    # process went on from there.
    ranks = range(devices)
    assert sorted(starts.read_text().split()) == sorted(
        [f"{rank}:0" for rank in ranks] + [f"{rank}:2" for rank in ranks]
    )
    (job_log,) = (sweep / ".submitit").glob("*/*_0_log.out")
    log = job_log.read_text()
    saved, requeued = log.index("Requeueing the job"), log.index("Requeued job")  # submitit's
    assert log.index("Received SIGUSR2") < saved < requeued
    assert log.index(f"resuming from {sweep / '0' / 'checkpoints' / 'last.ckpt'}") > requeued
    last = torch.load(sweep / "0" / "checkpoints" / "last.ckpt", weights_only=True)
    assert (last["epoch"], last["global_step"]) == (1, 8)  # the uninterrupted run's end
