"""Hydra multirun: one dir per job, a summary per job, and a failing job does not stop the sweep."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import TINY, run_module

pytestmark = pytest.mark.slow


def test_sweep_records_jobs_and_survives_a_failing_one(stripes_root: Path, tmp_path: Path) -> None:
    result = run_module(
        "src.train", "-m", "freeze.trainable=[layer4],[layer9]", "data=folder",
        f"data.root={stripes_root}", *TINY, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = (tmp_path / "outputs" / "train_multirun").iterdir()
    good = json.loads((sweep / "0" / "summary.json").read_text())
    bad = json.loads((sweep / "1" / "summary.json").read_text())
    assert good["status"] == "finished" and 0.0 <= good["best_val_acc"] <= 1.0
    assert good["trainable_params"] < good["total_params"]
    assert good["train_images_per_s"] > 0 and Path(good["best_ckpt"]).is_file()
    assert bad["status"] == "failed" and "valid names: conv1" in bad["error"]
    assert "freeze.trainable=[layer9]" in bad["overrides"]
