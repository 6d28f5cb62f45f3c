"""Compose a config in-process exactly as an entry point gets it (for tests and benchmarks)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def compose_config(config_name: str, overrides: Sequence[str], workdir: Path) -> DictConfig:
    """The config of `config_name` with `overrides`, every path under `workdir`, made current in
    Hydra (so `${hydra:...}` resolves) and without its `hydra` node, as a task function sees it."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            config_name,
            overrides=[
                f"paths.root_dir={workdir}",
                f"paths.output_dir={workdir / 'run'}",
                *overrides,
            ],
            return_hydra_config=True,
        )
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg
