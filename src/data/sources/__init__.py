"""Data modules that put their images in place first. A new source subclasses
`ImageFolderDataModule` and overrides `ensure_data`.

- `cats_dogs`: Microsoft's Cats vs Dogs, downloaded, extracted and cleaned.
- `synthetic`: the generated stripes of the offline demo.
"""
