"""Fetch and check the configured data set once: `python -m src.prepare_data [data.archive=...]`."""

from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig

from src.config.instantiation import build_from_config
from src.utils.errors import exit_on_user_error

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path="../conf", config_name="prepare_data")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    datamodule = build_from_config(cfg.data)
    datamodule.prepare_data()
    datamodule.setup()
    log.info(
        "Data ready in %s: classes %s, %d train / %d val images, %d files excluded",
        datamodule.root,
        datamodule.class_names,
        len(datamodule.train_samples),
        len(datamodule.val_samples),
        len(datamodule.excluded),
    )


if __name__ == "__main__":
    main()
