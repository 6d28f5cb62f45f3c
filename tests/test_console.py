"""A default run's console: the project's own lines, no third-party noise it causes on purpose."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import TINY, run_module

pytestmark = pytest.mark.slow

FILTERED = (
    "module(s) in eval mode",  # frozen BatchNorm, on purpose
    "smaller than the logging interval",
    "LeafSpec",
    "Tip:",
    "was configured so 100%",
)


def test_a_frozen_run_says_what_it_does_once_and_nothing_else(
    stripes_root: Path, tmp_path: Path
) -> None:
    result = run_module(
        "src.train",
        "data=folder",
        f"data.root={stripes_root}",
        *TINY,
        "freeze=layer4",
        "trainer.log_every_n_steps=50",  # more than the batches: Lightning would warn
        "callbacks.progress_bar=null",
        cwd=tmp_path,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    for noise in FILTERED:
        assert noise not in output, noise
    assert output.count("BatchNorm layers of frozen parts stay in eval mode") == 1
