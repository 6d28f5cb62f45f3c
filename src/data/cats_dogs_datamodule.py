"""The image-folder data module over Microsoft's Cats vs Dogs, fetched and cleaned on first use."""

from __future__ import annotations

from typing import Any

from src.data.cats_dogs import DEFAULT_URL, prepare_cats_dogs
from src.data.datamodule import ImageFolderDataModule


class CatsDogsDataModule(ImageFolderDataModule):
    """`root` is `<dest>/PetImages`; a missing one is downloaded (or taken from `archive`)."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        md5: str | None = None,
        archive: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.url = url
        self.md5 = md5
        self.archive = archive

    def ensure_data(self) -> None:
        prepared = prepare_cats_dogs(
            self.root.parent,
            url=self.url,
            archive=self.archive,
            md5=self.md5,
            max_pixels=self.max_pixels,
        )
        self.root = prepared
