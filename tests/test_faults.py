"""End to end: a training run started from the command line is killed, then resumed."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from src.train import EXIT_SIGTERM
from tests.helpers import TINY, module_env, run_module

pytestmark = pytest.mark.slow

#: TINY's trainer.limit_train_batches.
BATCHES_PER_EPOCH = 2

SLOW = [
    "+callbacks.slow._target_=tests.helpers.fault_helpers.SlowDown",
    "+callbacks.slow.seconds=0.4",
]


def start_training(cwd: Path, *overrides: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "src.train", *overrides],
        cwd=cwd,
        env=module_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.stdout.read()[-3000:]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.1)


def the_run_dir(cwd: Path) -> Path:
    (run,) = (cwd / "outputs" / "train").iterdir()
    return run


def best_score(checkpoint: dict) -> float:
    """The best val/acc recorded by the best-checkpoint callback inside a checkpoint."""
    states = checkpoint["callbacks"].items()
    return float(next(state for key, state in states if "val/acc" in key)["best_model_score"])


def resume_to_the_end(cwd: Path, base: list[str], last: Path) -> Path:
    """Resume from `last` in a fresh run dir and return that dir."""
    result = run_module("src.train", *base, f"ckpt_path={last}", "hydra.run.dir=resumed", cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd / "resumed"


def died_at_once(returncode: int, output: str, run: Path) -> None:
    """SIGKILL: the process is gone without a word; only what it had written remains."""
    assert returncode == -signal.SIGKILL


def stopped_cleanly(returncode: int, output: str, run: Path) -> None:
    """SIGTERM: last.ckpt saved after the signal, the run recorded as interrupted, the way to
    resume printed."""
    assert returncode == EXIT_SIGTERM, output[-3000:]
    assert "resume with ckpt_path=" in output
    assert '"status": "interrupted"' in (run / "summary.json").read_text()
    # Written when the signal was handled, mid-epoch: not the epoch-end last.ckpt that the
    # test waited for before sending it.
    saved = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert saved["global_step"] % BATCHES_PER_EPOCH != 0, saved["global_step"]


@pytest.mark.parametrize(
    ("sig", "check_the_stop"),
    [(signal.SIGKILL, died_at_once), (signal.SIGTERM, stopped_cleanly)],
    ids=["SIGKILL", "SIGTERM"],
)
def test_killed_run_resumes_to_the_same_end(
    sig: signal.Signals,
    check_the_stop: Callable[[int, str, Path], None],
    stripes_root: Path,
    tmp_path: Path,
) -> None:
    base = ["data=folder", f"data.root={stripes_root}", *TINY, "trainer.max_epochs=3"]
    process = start_training(tmp_path, *base, *SLOW)
    wait_for(tmp_path / "outputs" / "train", process)
    run = the_run_dir(tmp_path)
    wait_for(run / "checkpoints" / "last.ckpt", process)
    process.send_signal(sig)
    output = process.communicate(timeout=120)[0]
    check_the_stop(process.returncode, output, run)
    last = run / "checkpoints" / "last.ckpt"
    stopped = torch.load(last, weights_only=True)  # complete: never a truncated file
    best_before = torch.load(run / "checkpoints" / "best.ckpt", weights_only=True)
    assert stopped["global_step"] < 6
    assert not list((run / "checkpoints").glob(".*.tmp"))

    resumed = resume_to_the_end(tmp_path, base, last)
    final = torch.load(resumed / "checkpoints" / "last.ckpt", weights_only=True)
    assert (final["epoch"], final["global_step"]) == (2, 6)
    best_after = torch.load(resumed / "checkpoints" / "best.ckpt", weights_only=True)
    # the best checkpoint is carried over, never replaced by a worse one
    assert best_score(best_after) >= best_score(best_before)
