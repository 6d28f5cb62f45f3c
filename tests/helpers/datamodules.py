"""Data modules over small image folders, ready to use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from src.data.sources.folder import ImageFolderDataModule


def ready_datamodule(root: Path, **settings: Any) -> ImageFolderDataModule:
    """An `ImageFolderDataModule` over `root` (32 px, batches of 4, no workers unless `settings`
    say otherwise), prepared and set up: its samples are split, its bad files excluded."""
    dm = ImageFolderDataModule(
        str(root), **{"image_size": 32, "batch_size": 4, "num_workers": 0, **settings}
    )
    dm.prepare_data()
    dm.setup()
    return dm
