"""One module per source of networks, each with a `SOURCE` (a `NetworkSource`); the module's
name is the `model.source` value that selects it.

- `torchvision`: torchvision's classification models, blocks from a table of families.
- `timm`: timm's models, described by timm's own metadata.
"""
