"""The model's own input settings where the config leaves them to it (null): image size and
evaluation crop for the data, mean and std for the model, from the network source's pretrained
config (timm's `pretrained_cfg`, the transforms of torchvision's weights)."""

from __future__ import annotations

import logging

from omegaconf import DictConfig, OmegaConf, open_dict

from src.networks.source import network_source

log = logging.getLogger(__name__)


def resolve_model_input(cfg: DictConfig) -> dict[str, object]:
    """Fill in `data.image_size`, `data.crop_pct`, `model.mean` and `model.std` where they are
    null, and log which values the run uses and where they came from. Returns the filled-in
    settings (setting -> value)."""
    source = network_source(cfg.model.get("source"))
    source.check_name(cfg.model.name)
    spec = source.input_spec(cfg.model.name)
    own = {
        "data.image_size": spec.size,
        "data.crop_pct": spec.crop_pct,
        "model.mean": list(spec.mean),
        "model.std": list(spec.std),
    }
    filled = {}
    with open_dict(cfg):
        for key, value in own.items():
            if OmegaConf.select(cfg, key) is None:
                OmegaConf.update(cfg, key, value, merge=False)
                filled[key] = value
    used = ", ".join(
        f"{key}={OmegaConf.select(cfg, key)}" + (" (the model's)" if key in filled else "")
        for key in own
    )
    log.info("Input of %s (%s): %s", cfg.model.name, source.name, used)
    return filled
