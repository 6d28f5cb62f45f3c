"""Shared fixtures: small generated image sets and configs composed the way the entry points do.

Shared constants and builders live in tests/helpers.
"""

from __future__ import annotations

import os

# No test reaches the network: the Hugging Face Hub (timm's weights) fails at once instead of
# after its retries (read when huggingface_hub is imported, so set before anything imports it).
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from omegaconf import DictConfig

from src.config.compose import compose_config
from src.data.sources.synthetic import generate_stripes
from tests.helpers import TINY
from tests.helpers.probe import Probe, probed


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


@pytest.fixture
def probe() -> Iterator[Probe]:
    """What the runs that `src.train.train` starts in the test did (tests/helpers/probe.py)."""
    with probed() as recorder:
        yield recorder
