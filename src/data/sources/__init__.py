"""One module per source of labelled images: a `SampleSource` (what the images and their labels
are) and the data module that reads it, named by a config in `conf/data/`.

- `folder`: a folder of class folders, or of `train/` and `val/` with class folders.
- `csv`: a label file: image paths and their label(s), with optional split, fold and group columns.
- `cats_dogs`: Microsoft's Cats vs Dogs, downloaded, extracted and cleaned into class folders.
- `synthetic`: the generated stripes of the offline demo.
"""
