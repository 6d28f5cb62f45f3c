"""Loading checkpoints and weight files safely: nothing in them runs when they are read."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from src.models.checkpoint import load_classifier
from src.networks.weights import WeightsError, read_weights_file
from src.utils.errors import UserError


class RunsCode:
    """Unpickling this calls os.system: what a malicious checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickles_that_run_code_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.ckpt"
    with evil.open("wb") as handle:
        pickle.dump({"state_dict": {}, "payload": RunsCode(marker)}, handle)
    with pytest.raises(UserError, match="not a loadable checkpoint"):
        load_classifier(evil)
    with pytest.raises(WeightsError, match="cannot be loaded"):
        read_weights_file(evil)
    assert not marker.exists()
