"""Resuming reads checkpoints with weights_only=True: a file that would run code is refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from src.train import train
from src.utils.errors import UserError


class RunsCode:
    """Unpickling this calls os.system: what a malicious checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("how", ["resume=latest", "ckpt_path"])
def test_a_checkpoint_that_would_run_code_is_refused_on_resume(
    make_config, folder_overrides, tmp_path: Path, how: str
) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "outputs" / "train" / "earlier" / "checkpoints" / "last.ckpt"
    evil.parent.mkdir(parents=True)
    torch.save({"state_dict": {}, "payload": RunsCode(marker)}, evil)
    choice = "resume=latest" if how == "resume=latest" else f"ckpt_path={evil}"
    with pytest.raises(UserError, match=r"last\.ckpt cannot be loaded safely"):
        train(make_config([*folder_overrides, choice]))
    assert not marker.exists()
