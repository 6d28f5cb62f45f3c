"""Where the model looks: Grad-CAM (captum's `LayerGradCam`) on the layer the network's
description names, its output turned into a [B, C, H, W] map whatever its layout (a ViT's
tokens, a Swin's channels-last features)."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from src.networks.description import GradCamLayer, NetworkDescription

#: Heat maps [N, H, W] in [0, 1] of `classes[i]` on `images[i]`.
Explainer = Callable[[torch.Tensor, list[int]], np.ndarray]


def gradcam_explainer(
    net: nn.Module,
    normalise: Callable[[torch.Tensor], torch.Tensor],
    description: NetworkDescription,
) -> tuple[Explainer | None, str]:
    """(`gradcam` bound to the network, or None when the description names no layer; a note
    for the report saying which layer it explains, or why it is not available)."""
    layer = description.gradcam
    if layer is None:
        return None, f"not available for this model ({description.gradcam_unavailable})"
    return functools.partial(gradcam, net, normalise, layer), f"on {layer.name}"


def _to_map(output: torch.Tensor, layer: GradCamLayer) -> torch.Tensor:
    if layer.layout == "nhwc":
        return output.permute(0, 3, 1, 2)
    if layer.layout == "tokens":
        patches = output[:, layer.prefix_tokens :]
        side = math.isqrt(patches.shape[1])
        return patches.transpose(1, 2).reshape(output.shape[0], output.shape[2], side, side)
    return output


def _from_map(fmap: torch.Tensor, output: torch.Tensor, layer: GradCamLayer) -> torch.Tensor:
    if layer.layout == "nhwc":
        return fmap.permute(0, 2, 3, 1)
    if layer.layout == "tokens":
        prefix = output[:, : layer.prefix_tokens]
        return torch.cat([prefix, fmap.flatten(2).transpose(1, 2)], dim=1)
    return fmap


def gradcam(
    net: nn.Module,
    normalise: Callable[[torch.Tensor], torch.Tensor],
    layer: GradCamLayer,
    images: torch.Tensor,
    classes: list[int],
) -> np.ndarray:
    """Heat maps [N, H, W] in [0, 1] of `classes[i]` on `images[i]` (uint8 [N, 3, H, W]): which
    regions raise that class's logit, upsampled to the image. The layer's output is routed
    through a pass-through module as a [B, C, H, W] map, which captum explains."""
    from captum.attr import LayerAttribution, LayerGradCam

    device = next(net.parameters()).device
    as_map = nn.Identity()

    def reroute(module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        return _from_map(as_map(_to_map(output, layer)), output, layer)

    def logits(pixels: torch.Tensor) -> torch.Tensor:
        return net(normalise(pixels))

    was_training = net.training
    net.eval()
    hook = net.get_submodule(layer.name).register_forward_hook(reroute)
    try:
        with torch.enable_grad():
            cam = LayerGradCam(logits, as_map)
            pixels = images.to(device).float()
            attributions = cam.attribute(pixels, target=list(classes))
            heat = LayerAttribution.interpolate(
                attributions.detach().float(),
                tuple(images.shape[-2:]),
                interpolate_mode="bilinear",
            )
    finally:
        hook.remove()
        net.train(was_training)
    heat = heat.squeeze(1).clamp(min=0)
    peak = heat.flatten(1).max(dim=1).values.clamp(min=1e-12)
    return (heat / peak[:, None, None]).float().cpu().numpy()
