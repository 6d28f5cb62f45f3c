"""Images in, batches out: where samples come from, the split, loading and batching.

- `source`: `SampleSource`, what a source of labelled images yields (samples and class names);
  `sources`: the folder, CSV, Cats vs Dogs and synthetic sources and their data modules.
- `split`: which samples train and which validate (seeded and stratified, or the source's).
- `datamodule`: `ImageDataModule`, checks, splits, loads and batches any source's samples.
- `batch_transforms`: batches on the training device (decoding there, progressive resizing,
  MixUp / CutMix).
- `images`, `image_checks`, `device_decoding`: reading one file safely, remembering which files
  are unusable, decoding JPEG batches on the training device.
- `transforms`, `samples`, `dataset`: augmentation and resizing, samples and file lists, the
  torch Datasets over them.
- `progressive_resizing`: the training image size of each epoch, and resizing a batch to it.
"""
