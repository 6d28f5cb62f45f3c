"""Where networks come from, and what the rest of the project needs to know about each.

- `description`: `NetworkDescription` (the head, the backbone's ordered blocks, the Grad-CAM
  layer, the Dropout before the head) and `InputSpec` (input size, normalisation, evaluation
  crop), the one description that freezing, layer-wise learning rates, the feature cache,
  Grad-CAM, the config checks, evaluation and export all ask.
- `source`: `NetworkSource`, the interface of a source of networks, and `network_source(name)`,
  which finds the module `sources/<name>.py`; `build_network` builds one from the `model` config.
- `sources/`: one module per source (`torchvision`, `timm`): how to build a network for N classes,
  its starting weights and its description.
- `blocks`: helpers sources use to describe blocks (modules or parameters by dotted name).
- `weights`: reading weight files and loading them into a network, never a silent partial load.
"""
