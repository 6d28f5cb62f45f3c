"""Where the model looks: Grad-CAM (captum's `LayerGradCam`) on the last convolutional block."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from src.utils.errors import UserError

log = logging.getLogger(__name__)


def last_convolutional_block(net: nn.Module) -> nn.Module:
    """The last top-level child of `net` that holds a convolution: `layer4` of a ResNet,
    `features` of an EfficientNet, ConvNeXt, MobileNet, VGG or DenseNet."""
    blocks = [
        child
        for child in net.children()
        if any(isinstance(module, nn.Conv2d) for module in child.modules())
    ]
    if not blocks:
        raise UserError(
            f"Grad-CAM needs a convolutional network; {type(net).__name__} has no convolution"
        )
    return blocks[-1]


def gradcam_explainer(net: nn.Module, normalise) -> Callable[..., np.ndarray] | None:
    """`gradcam` bound to the network, or None (logged) for a network without convolutions."""
    try:
        last_convolutional_block(net)
    except UserError as error:
        log.info("No Grad-CAM overlays: %s", error)
        return None
    return functools.partial(gradcam, net, normalise)


def gradcam(
    net: nn.Module, normalise: nn.Module, images: torch.Tensor, classes: list[int]
) -> np.ndarray:
    """Heat maps [N, H, W] in [0, 1] of `classes[i]` on `images[i]` (uint8 [N, 3, H, W]): which
    regions raise that class's logit, upsampled to the image."""
    from captum.attr import LayerAttribution, LayerGradCam

    device = next(net.parameters()).device

    def logits(pixels: torch.Tensor) -> torch.Tensor:
        return net(normalise(pixels))

    was_training = net.training
    net.eval()
    try:
        with torch.enable_grad():
            cam = LayerGradCam(logits, last_convolutional_block(net))
            pixels = images.to(device).float()
            attributions = cam.attribute(pixels, target=list(classes))
            heat = LayerAttribution.interpolate(
                attributions.detach(), tuple(images.shape[-2:]), interpolate_mode="bilinear"
            )
    finally:
        net.train(was_training)
    heat = heat.squeeze(1).clamp(min=0)
    peak = heat.flatten(1).max(dim=1).values.clamp(min=1e-12)
    return (heat / peak[:, None, None]).float().cpu().numpy()
