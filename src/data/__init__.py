"""Images in, batches out: the data module, the data sources, decoding and transforms.

- `ImageFolderDataModule`: a folder of class folders, checked, split and loaded (any data set).
- `sources`: data modules that fetch or make their folder first (Cats vs Dogs, synthetic stripes).
- `images`, `image_checks`, `device_decoding`: reading one file safely, remembering which files
  are unusable, decoding JPEG batches on the training device.
- `transforms`, `samples`, `dataset`: augmentation and resizing, the file lists and the split,
  the torch Dataset over them.
"""

from src.data.datamodule import ImageFolderDataModule
from src.data.dataset import ImageFileDataset, TooManyUnreadableFiles
from src.data.images import DEFAULT_MAX_PIXELS, UnusableImageError, check_image, read_rgb_tensor
from src.data.samples import Sample, stratified_split
from src.data.sources.cats_dogs import CatsDogsDataModule
from src.data.sources.synthetic import SyntheticDataModule
from src.data.transforms import eval_pipeline, eval_transform, train_transform

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "CatsDogsDataModule",
    "ImageFileDataset",
    "ImageFolderDataModule",
    "Sample",
    "SyntheticDataModule",
    "TooManyUnreadableFiles",
    "UnusableImageError",
    "check_image",
    "eval_pipeline",
    "eval_transform",
    "read_rgb_tensor",
    "stratified_split",
    "train_transform",
]
