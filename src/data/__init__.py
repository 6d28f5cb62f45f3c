"""Images in, batches out: the data module, the data sources, decoding and transforms.

- `datamodule`: `ImageFolderDataModule`, a folder of class folders, checked, split and loaded.
- `sources`: data modules that fetch or make their folder first (Cats vs Dogs, synthetic stripes).
- `images`, `image_checks`, `device_decoding`: reading one file safely, remembering which files
  are unusable, decoding JPEG batches on the training device.
- `transforms`, `samples`, `dataset`: augmentation and resizing, the file lists and the split,
  the torch Datasets over them.
- `progressive_resizing`: the training image size of each epoch, and resizing a batch to it.
"""
