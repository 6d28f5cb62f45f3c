"""Data modules that put their images in place first: Microsoft's Cats vs Dogs (downloaded,
extracted and cleaned) and the generated stripes of the offline demo. A new source subclasses
`ImageFolderDataModule` and overrides `ensure_data`."""

from src.data.sources.cats_dogs import CatsDogsDataModule, prepare_cats_dogs
from src.data.sources.synthetic import SyntheticDataModule, generate_stripes

__all__ = ["CatsDogsDataModule", "SyntheticDataModule", "generate_stripes", "prepare_cats_dogs"]
