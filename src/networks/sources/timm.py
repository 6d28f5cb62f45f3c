"""timm's models: `model=timm model.name=<timm name>`, optionally with a pretrained tag
(`convnext_tiny.fb_in22k_ft_in1k`).

Everything comes from timm's own metadata rather than a table of ours: the pretrained config
(input size, mean, std, crop), the classifier (`get_classifier`), the block boundaries
(`group_matcher`, at the stage level, as torchvision's blocks here) and the last feature stage
(`feature_info`).
Networks built for one input size (ViT, Swin) are built for `data.image_size`; pretrained
weights are resampled to it by timm's loader.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import timm
import torch
from timm.models import get_pretrained_cfg, group_parameters
from torch import nn

from src.networks.blocks import covering_names, top_level_blocks, with_parameters, within
from src.networks.description import GradCamLayer, InputSpec, NetworkDescription
from src.networks.source import NetworkSource
from src.networks.weights import WeightsError, read_weights_file
from src.utils.errors import UserError, one_line

#: Input settings of an architecture without a pretrained config.
IMAGENET = InputSpec(224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 0.875)


def classifier_name(net: nn.Module) -> str:
    """Dotted name of the module `get_classifier` returns (found by identity: the config's
    `classifier` entry names a state-dict prefix, which differs in some families)."""
    classifier = net.get_classifier()
    if isinstance(classifier, (tuple, list)):
        raise UserError(
            f"{type(net).__name__} has {len(classifier)} classifier heads (a distilled model), "
            "which the feature cache and freezing cannot split; choose a model with one head "
            "(e.g. deit_tiny_patch16_224 rather than deit_tiny_distilled_patch16_224)"
        )
    for name, module in net.named_modules():
        if module is classifier:
            return name
    raise UserError(f"timm's {type(net).__name__} names no classifier module")


def timm_blocks(net: nn.Module, head: str) -> list[tuple[str, ...]]:
    """timm's coarse parameter groups (`group_matcher(coarse=True)`: a convolutional network's
    stages, a ViT's encoder blocks), input side first, each as the fewest names covering it. The
    top group is the head; what else it holds (a norm or 1x1 convolution after the last stage,
    which the cached features include) becomes the last block."""
    try:
        groups = group_parameters(net, net.group_matcher(coarse=True))
    except (AttributeError, NotImplementedError):
        return with_parameters(net, top_level_blocks(net, head))
    *lower, top = [groups[key] for key in sorted(groups)]
    if not {name for name, _ in net.named_parameters() if within(name, head)} <= set(top):
        return with_parameters(net, top_level_blocks(net, head))
    neck = [name for name in top if not within(name, head)]
    return [covering_names(net, group) for group in [*lower, *([neck] if neck else [])]]


def gradcam_layer(net: nn.Module) -> tuple[GradCamLayer | None, str]:
    """A token model's tokens as they enter its last attention (only the class token reaches
    the head after it); else the last feature stage (`feature_info`), channels first or last as
    the model says."""
    blocks = getattr(net, "blocks", None)
    if hasattr(net, "num_prefix_tokens") and hasattr(net, "patch_embed") and blocks is not None:
        name = f"blocks.{len(blocks) - 1}.norm1"
        if name in dict(net.named_modules()):
            return GradCamLayer(name, "tokens", int(net.num_prefix_tokens)), ""
        return None, f"{type(net).__name__} has no per-token layer Grad-CAM can explain"
    feature_info = getattr(net, "feature_info", None)
    if not feature_info:
        return None, f"{type(net).__name__} does not say where its last feature map is"
    output_format = getattr(net, "output_fmt", "NCHW")
    layout = "nhwc" if str(getattr(output_format, "value", output_format)) == "NHWC" else "nchw"
    return GradCamLayer(feature_info[-1]["module"], layout), ""


@functools.cache
def pretrained_input(name: str) -> InputSpec:
    """The input of timm's pretrained config for `name` (with its tag, if any)."""
    config = get_pretrained_cfg(name)
    if config is None:
        return IMAGENET
    return InputSpec(
        int(config.input_size[-1]),
        tuple(float(v) for v in config.mean),
        tuple(float(v) for v in config.std),
        float(config.crop_pct),
        bool(config.fixed_input_size),
    )


def _size_kwargs(name: str, image_size: int, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """`img_size` for networks built for one input size, unless the user gives it."""
    if pretrained_input(name).fixed_size and "img_size" not in kwargs:
        return {"img_size": image_size}
    return {}


class TimmSource(NetworkSource):
    name = "timm"

    def names(self) -> list[str]:
        return timm.list_models()

    def check_name(self, name: str) -> None:
        architecture, _, tag = name.partition(".")
        if not timm.is_model(architecture):
            similar = timm.list_models(f"*{architecture[:5]}*")[:8]
            raise UserError(
                f"model.name={name!r} is not a timm model; e.g. "
                f"{', '.join(similar) or 'resnet50, convnext_tiny, vit_small_patch16_224'} "
                "(timm.list_models() lists them all)"
            )
        if tag and name not in timm.list_pretrained(f"{architecture}.*"):
            tags = timm.list_pretrained(f"{architecture}.*")[:8]
            raise UserError(
                f"model.name={name!r}: timm has no pretrained tag {tag!r} for {architecture}; "
                f"choose one of: {', '.join(tags) or architecture}"
            )

    def input_spec(self, name: str) -> InputSpec:
        return pretrained_input(name)

    def build(self, options: Mapping[str, Any], num_classes: int, image_size: int) -> nn.Module:
        kwargs = dict(options.get("kwargs") or {})
        kwargs |= _size_kwargs(options["name"], image_size, kwargs)
        net = timm.create_model(
            options["name"], pretrained=False, num_classes=num_classes, **kwargs
        )
        classifier_name(net)  # a model with two heads is refused here
        return net

    def describe(self, net: nn.Module, options: Mapping[str, Any]) -> NetworkDescription:
        head = classifier_name(net)
        layer, unavailable = gradcam_layer(net)
        drop_rate = float(getattr(net, "drop_rate", 0.0) or 0.0)
        return NetworkDescription(
            head=head,
            blocks=tuple(timm_blocks(net, head)),
            gradcam=layer,
            gradcam_unavailable=unavailable,
            dropout_before_head=(drop_rate,) if drop_rate > 0 else (),
        )

    def pretrained_weights(
        self, options: Mapping[str, Any], image_size: int
    ) -> dict[str, torch.Tensor]:
        """Through timm (from the Hugging Face Hub or its cache), at the pretrained head's size."""
        name = options["name"]
        kwargs = dict(options.get("kwargs") or {})
        try:
            net = timm.create_model(
                name, pretrained=True, **kwargs, **_size_kwargs(name, image_size, kwargs)
            )
        except Exception as error:
            raise WeightsError(
                f"Could not obtain timm's pretrained weights for {name} ({type(error).__name__}: "
                f"{one_line(error)[:200]}); pass model.weights_path=FILE (a local .safetensors "
                "or .pth state dict in timm's format) or model.pretrained=false (random init)"
            ) from error
        return net.state_dict()

    def weights_file(
        self, path: Path, options: Mapping[str, Any], image_size: int
    ) -> dict[str, torch.Tensor]:
        """A local state dict loaded strictly through timm at its own head size, so that timm
        adapts it (position embeddings resampled to `image_size`) and a file for another
        architecture fails loudly."""
        state = read_weights_file(path)
        name = options["name"]
        kwargs = dict(options.get("kwargs") or {})
        kwargs |= _size_kwargs(name, image_size, kwargs)
        with torch.device("meta"):
            head = classifier_name(timm.create_model(name, pretrained=False, **kwargs))
        head_weight = state.get(f"{head}.weight")
        classes = {} if head_weight is None else {"num_classes": int(head_weight.shape[0])}
        try:
            net = timm.create_model(
                name,
                pretrained=True,
                pretrained_cfg_overlay={"state_dict": state, **classes},
                **classes,
                **kwargs,
            )
        except Exception as error:
            raise WeightsError(
                f"model.weights_path={path} does not fit timm's {name} "
                f"({type(error).__name__}: {one_line(error)[:200]}); check model.name "
                "against the file"
            ) from error
        return net.state_dict()


SOURCE = TimmSource()
