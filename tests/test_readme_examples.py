"""Every `python -m src.train` line of the README's Examples composes into a complete config,
every value resolved (running them is what the option tests and end-to-end tests do)."""

from __future__ import annotations

import re
import shlex

import pytest
from omegaconf import OmegaConf

from src.config.compose import compose_config
from tests.helpers import REPO


def train_examples() -> list[list[str]]:
    """The overrides of each training command in the Examples section (a multirun's values each
    as a command of its own)."""
    section = (REPO / "README.md").read_text(encoding="utf-8").split("## Examples", 1)[1]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    commands = []
    for line in block.splitlines():
        if not line.startswith("python -m src.train"):
            continue
        # a placeholder such as <run> stands for a name the user fills in
        words = [re.sub(r"<(\w+)>", r"\1", w) for w in shlex.split(line.split("#", 1)[0])[3:]]
        words = [w for w in words if w != "-m"]
        sweeps = [w for w in words if re.match(r"^[\w.]+=[^\[\]]*,", w)]
        if not sweeps:
            commands.append(words)
            continue
        (sweep,) = sweeps
        key, values = sweep.split("=", 1)
        for value in values.split(","):
            commands.append([w if w != sweep else f"{key}={value}" for w in words])
    return commands


def test_the_examples_are_found() -> None:
    assert len(train_examples()) >= 12


@pytest.mark.parametrize("overrides", train_examples(), ids=" ".join)
def test_each_training_example_composes(overrides: list[str], tmp_path) -> None:
    cfg = compose_config("train", overrides, tmp_path)
    OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
