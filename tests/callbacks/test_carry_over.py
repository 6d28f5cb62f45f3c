"""The best checkpoint carried into a resumed run's dir: every DDP rank decides as rank 0 does."""

from __future__ import annotations

from pathlib import Path

import torch
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from src.callbacks.checkpoints import CarryOverModelCheckpoint


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
