"""The image-folder data module over a generated shapes set: the offline demo's data."""

from __future__ import annotations

from typing import Any

from src.data.datamodule import ImageFolderDataModule
from src.data.synthetic import generate_stripes


class SyntheticDataModule(ImageFolderDataModule):
    """Generates `images_per_class` images per class at `generated_size` px into `root` once."""

    def __init__(
        self,
        images_per_class: int = 400,
        generated_size: int = 96,
        generation_seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.images_per_class = images_per_class
        self.generated_size = generated_size
        self.generation_seed = generation_seed

    def ensure_data(self) -> None:
        generate_stripes(
            self.root, self.images_per_class, self.generated_size, self.generation_seed
        )
