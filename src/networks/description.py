"""The description of one built network: what freezing, learning rates, the feature cache,
Grad-CAM and serving need to know about it, so that none of them guesses at its structure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: A block of the backbone: dotted names of modules, or of parameters that belong to no
#: module of their own (a ViT's class token and position embedding).
Block = tuple[str, ...]

#: How the Grad-CAM layer's output is laid out: a feature map [B, C, H, W] or [B, H, W, C], or
#: tokens [B, prefix + H*W, C] on a square grid.
Layout = Literal["nchw", "nhwc", "tokens"]


@dataclass(frozen=True)
class GradCamLayer:
    """The layer Grad-CAM explains: its output is turned into a [B, C, H, W] map."""

    name: str
    layout: Layout = "nchw"
    #: Tokens before the patch tokens (class and register tokens), for `tokens`.
    prefix_tokens: int = 0


@dataclass(frozen=True)
class NetworkDescription:
    """`head` is the dotted name of the classifier (a Linear, replaced for the classes and always
    trained; the feature cache takes what enters it); `blocks` the backbone's blocks, input side
    first (freezing by depth, layer-wise learning-rate decay and gradual unfreezing follow them);
    `gradcam` the layer Grad-CAM explains (None: not available, `gradcam_unavailable` says why);
    `dropout_before_head` the Dropout probabilities applied to the head's input in training,
    which training on cached features applies itself."""

    head: str
    blocks: tuple[Block, ...]
    gradcam: GradCamLayer | None = None
    gradcam_unavailable: str = ""
    dropout_before_head: tuple[float, ...] = ()


@dataclass(frozen=True)
class InputSpec:
    """How images become a network's input, as its pretrained weights expect: the square
    `size`, the per-channel `mean` and `std` (on 0-1 pixels), and for evaluation the resize to
    `size / crop_pct` before the center crop. `fixed_size`: the network takes `size` only."""

    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_pct: float
    fixed_size: bool = False
