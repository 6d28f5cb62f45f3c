"""The best checkpoint carried into a resumed run's dir: kept unless beaten, and every DDP rank
decides as rank 0 does."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from src.callbacks.checkpoints import CarryOverModelCheckpoint
from src.train import train


def saved_state(old_dir: Path) -> dict:
    return {
        "dirpath": str(old_dir),
        "best_model_path": str(old_dir / "best.ckpt"),
        "best_model_score": torch.tensor(0.75),
        "monitor": "val/acc",
    }


def test_rank_zero_copies_the_earlier_best(tmp_path: Path) -> None:
    old = tmp_path / "old"
    old.mkdir()
    (old / "best.ckpt").write_bytes(b"the earlier best")
    callback = CarryOverModelCheckpoint(dirpath=tmp_path / "new", monitor="val/acc", mode="max")
    callback.load_state_dict(saved_state(old))
    assert (tmp_path / "new" / "best.ckpt").read_bytes() == b"the earlier best"
    assert float(callback.best_model_score) == 0.75


def test_a_rank_that_cannot_see_the_file_follows_rank_zero(tmp_path: Path, monkeypatch) -> None:
    """On a node without the earlier run's files, rank 1 still restores the score (Lightning's
    later top-k decisions are collective) and copies nothing."""
    monkeypatch.setattr(rank_zero_only, "rank", 1)
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)

    def rank_zero_saw_it(decision: list, src: int) -> None:
        assert src == 0
        decision[0] = True

    monkeypatch.setattr(torch.distributed, "broadcast_object_list", rank_zero_saw_it)
    callback = CarryOverModelCheckpoint(dirpath=tmp_path / "new", monitor="val/acc", mode="max")
    callback.load_state_dict(saved_state(tmp_path / "elsewhere"))  # no such file here
    assert float(callback.best_model_score) == 0.75
    assert callback.best_model_path == str(tmp_path / "new" / "best.ckpt")
    assert not (tmp_path / "new").exists()


@pytest.mark.slow
def test_a_resumed_run_that_does_worse_keeps_the_earlier_best(
    make_config, folder_overrides, tmp_path: Path
) -> None:
    """The earlier run's best is made unbeatable (its recorded val/acc set to 1.0), so whatever
    the resumed epoch scores is worse: best.ckpt must stay the earlier file, score and weights."""
    train(make_config([*folder_overrides, f"paths.output_dir={tmp_path / 'first'}"]))
    earlier = tmp_path / "first" / "checkpoints"
    last = torch.load(earlier / "last.ckpt", weights_only=True)
    (key,) = [k for k, state in last["callbacks"].items() if state.get("monitor") == "val/acc"]
    last["callbacks"][key]["best_model_score"] = torch.tensor(1.0)
    torch.save(last, earlier / "last.ckpt")

    resumed = tmp_path / "resumed"
    train(
        make_config(
            [
                *folder_overrides,
                "trainer.max_epochs=3",
                f"ckpt_path={earlier / 'last.ckpt'}",
                f"paths.output_dir={resumed}",
            ]
        )
    )
    rows = list(csv.DictReader((resumed / "csv" / "metrics.csv").open()))
    val_acc = [float(row["val/acc"]) for row in rows if row.get("val/acc")]
    assert val_acc and max(val_acc) < 1.0  # the resumed run did worse
    carried = resumed / "checkpoints" / "best.ckpt"
    assert carried.read_bytes() == (earlier / "best.ckpt").read_bytes()  # same score and weights
    saved = torch.load(resumed / "checkpoints" / "last.ckpt", weights_only=True)
    assert float(saved["callbacks"][key]["best_model_score"]) == 1.0
    assert saved["callbacks"][key]["best_model_path"] == str(carried)
