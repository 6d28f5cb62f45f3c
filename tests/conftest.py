"""Shared fixtures: small generated image sets and configs composed the way the entry points do."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from omegaconf import DictConfig

from src.config.compose import compose_config
from src.data.sources.synthetic import generate_stripes

REPO = Path(__file__).resolve().parents[1]

#: A fast but complete run: a small network on 32 px images, two short epochs on the CPU.
TINY = [
    "model.name=resnet18",
    "model.pretrained=false",
    "data.image_size=32",
    "data.batch_size=4",
    "data.num_workers=0",
    "data.persistent_workers=false",
    "trainer.max_epochs=2",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=2",
    "trainer.log_every_n_steps=1",
]


@pytest.fixture(scope="session")
def stripes_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two learnable classes of 12 small PNGs each."""
    return generate_stripes(tmp_path_factory.mktemp("stripes") / "images", 12, 40)


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., DictConfig]:
    def make(overrides: Sequence[str] = (), config_name: str = "train") -> DictConfig:
        return compose_config(config_name, overrides, tmp_path)

    return make


@pytest.fixture
def folder_overrides(stripes_root: Path) -> list[str]:
    """TINY training on the generated stripes folder."""
    return ["data=folder", f"data.root={stripes_root}", *TINY]


def run_module(
    module: str, *args: str, cwd: Path, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """`python -m module args...` as a user would type it, from `cwd`."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "HYDRA_FULL_ERROR": "0"}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
