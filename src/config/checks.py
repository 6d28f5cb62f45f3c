"""Check a composed training config before any data is touched: one clear line per mistake.

The data settings are checked by the data module itself when it is built (before it reads any
file), so that evaluate and prepare_data get the same checks."""

from __future__ import annotations

import torch
from omegaconf import DictConfig
from omegaconf.errors import InterpolationResolutionError
from torch import nn

from src.data.progressive_resizing import ProgressiveResizing
from src.finetuning.blocks import last_blocks
from src.finetuning.freeze import FreezePolicy
from src.finetuning.optimization import check_layer_decay
from src.models.tasks import check_task
from src.networks.description import NetworkDescription
from src.networks.source import architecture, network_source
from src.utils.devices import runs_on_cpu
from src.utils.errors import (
    UserError,
    find_user_error,
    is_int,
    one_line,
    require_int,
    require_number,
)

#: `trainer.precision` values that run Lightning's MixedPrecision plugin (autocast).
MIXED_PRECISIONS = frozenset({"16-mixed", "16", "bf16-mixed", "bf16"})


def check_accelerator(trainer_cfg: DictConfig) -> None:
    """Refuse GPU requests this machine cannot serve."""
    accelerator = str(trainer_cfg.get("accelerator", "auto")).lower()
    devices = trainer_cfg.get("devices")
    wants_gpu = accelerator in {"gpu", "cuda"} or (
        accelerator == "auto" and not runs_on_cpu(trainer_cfg)
    )
    if accelerator in {"gpu", "cuda"} and not torch.cuda.is_available():
        raise UserError(
            f"trainer.accelerator={accelerator} but no CUDA GPU is available here; "
            "use trainer=cpu, or trainer=default to take a GPU only when there is one"
        )
    if wants_gpu and is_int(devices) and devices > torch.cuda.device_count():
        available = torch.cuda.device_count()
        raise UserError(
            f"trainer.devices={devices} but only {available} GPU(s) are available; "
            f"use trainer.devices={available} or fewer"
        )
    if devices not in (None, "auto") and not is_int(devices) and not isinstance(devices, list):
        raise UserError(f"trainer.devices={devices!r} must be a number of devices, a list, or auto")


def check_freeze(net: nn.Module, description: NetworkDescription, freeze_cfg: DictConfig) -> None:
    """Validate the freeze settings against the network's children and blocks."""
    trainable = freeze_cfg.get("trainable")
    if trainable is not None and (
        isinstance(trainable, str) or not all(isinstance(name, str) for name in trainable)
    ):
        raise UserError(
            f"freeze.trainable={trainable!r} must be a list of child names, e.g. [layer3,layer4], "
            "or null for the whole network"
        )
    if freeze_cfg.get("trainable_blocks") is not None:
        network = type(net).__name__
        trainable = last_blocks(description.blocks, freeze_cfg["trainable_blocks"], network)
    if freeze_cfg.get("cache_features") and (
        trainable != [] or freeze_cfg.get("train_bn") or freeze_cfg.get("unfreeze_at")
    ):
        raise UserError(
            "freeze.cache_features=true needs a fixed backbone: use it with freeze=all "
            "(only the head trains, freeze.train_bn=false, no unfreezing), or set "
            "freeze.cache_features=false"
        )
    FreezePolicy.from_config(trainable).validate(net)


def check_cached_views(cfg: DictConfig) -> None:
    """`freeze.cached_views`: augmented views need the cache and the augmentation."""
    views = cfg.freeze.get("cached_views") or 0
    require_int(views, "freeze.cached_views", 0)
    if not views:
        return
    if not cfg.freeze.get("cache_features"):
        raise UserError(
            f"freeze.cached_views={views} caches augmented views of each image, which needs "
            "freeze.cache_features=true (freeze=all); or set freeze.cached_views=0"
        )
    if not (cfg.data.get("augment") or {}).get("enabled", True):
        raise UserError(
            f"freeze.cached_views={views} with data.augment.enabled=false would cache the same "
            "center crop each time: set freeze.cached_views=0, or enable the augmentation"
        )


def check_cached_features_inputs(cfg: DictConfig) -> None:
    """Cached features are computed once per image: options that change the images of each
    training batch cannot apply to them, and are refused rather than silently ignored."""
    if not cfg.freeze.get("cache_features"):
        return
    augment = cfg.data.get("augment") or {}
    batch_options = [f"data.augment.{key}" for key in ("mixup", "cutmix") if augment.get(key)]
    if (cfg.data.get("progressive_resizing") or {}).get("enabled"):
        batch_options.append("data.progressive_resizing")
    if batch_options:
        verb, them = ("changes", "it") if len(batch_options) == 1 else ("change", "them")
        raise UserError(
            f"{' and '.join(batch_options)} {verb} training images, but "
            "freeze.cache_features=true trains on features computed once per image: set "
            "freeze.cache_features=false (the backbone then runs on every image), "
            f"or turn {them} off"
        )


def check_progressive_resizing(net: nn.Module, cfg: DictConfig) -> None:
    """Progressive resizing needs a known number of epochs, and a network that takes its
    smallest size."""
    settings = cfg.data.get("progressive_resizing") or {}
    if not settings.get("enabled"):
        return
    max_epochs = cfg.trainer.get("max_epochs")
    if not is_int(max_epochs) or max_epochs < 1:
        raise UserError(
            f"data.progressive_resizing grows the images over trainer.max_epochs={max_epochs!r}: "
            "give a number of epochs, or set data.progressive_resizing.enabled=false"
        )
    image_size = cfg.data.get("image_size")
    if not is_int(image_size):
        return  # the data module reports a bad data.image_size
    smallest = ProgressiveResizing(**settings).size_at(0, max_epochs, image_size)
    if smallest != image_size:
        check_input_size(
            net,
            cfg.model.name,
            smallest,
            f"{smallest} px, the first size of data.progressive_resizing",
            "set data.progressive_resizing.enabled=false, or a larger start_scale",
        )


def check_input_size(
    net: nn.Module,
    model_name: str,
    image_size: object,
    what: str | None = None,
    fix: str | None = None,
    needed: int | None = None,
) -> None:
    """Refuse an image size the network cannot take (a ViT built for one size), with the size it
    needs (`needed`), instead of an assertion deep inside the network at the first batch. `what`
    names the size (default: data.image_size) and `fix` says what to do instead."""
    if not is_int(image_size) or image_size < 8:
        return  # the data module reports a bad data.image_size
    device = next(net.parameters()).device
    try:
        with torch.no_grad():
            net.eval()(torch.empty(1, 3, image_size, image_size, device=device))
    except NotImplementedError:  # an operation without a meta kernel: nothing learned
        return
    except (AssertionError, RuntimeError, ValueError) as error:
        if fix is None:
            fix = f"use data.image_size={needed}" if needed else "use a larger data.image_size"
        raise UserError(
            f"model.name={model_name} cannot take {what or f'data.image_size={image_size}'} "
            f"({one_line(error)[:120]}); {fix}"
        ) from None


def check_warmup(cfg: DictConfig) -> None:
    """`scheduler.warmup_epochs`: a number of epochs the run has, on a schedule that does not
    warm up by itself."""
    warmup = (cfg.get("scheduler") or {}).get("warmup_epochs") or 0
    require_number(warmup, "scheduler.warmup_epochs", 0.0)
    if not warmup:
        return
    target = str(((cfg.scheduler.get("scheduler") or {}).get("_target_")) or "")
    if target.endswith("OneCycleLR"):
        raise UserError(
            f"scheduler.warmup_epochs={warmup} with scheduler=onecycle, which warms up by itself "
            "(scheduler.scheduler.pct_start); set scheduler.warmup_epochs=0"
        )
    max_epochs = cfg.trainer.get("max_epochs")
    if not is_int(max_epochs) or max_epochs < 1:
        raise UserError(
            f"scheduler.warmup_epochs={warmup} needs a number of epochs, not "
            f"trainer.max_epochs={max_epochs!r}"
        )


def resolved_lr(cfg: DictConfig) -> object:
    """`optimizer.lr`; a user error in what it is computed from (`${scaled_lr:...}` of a bad
    `data.batch_size`) is raised as itself, not wrapped by OmegaConf."""
    try:
        return cfg.optimizer.get("lr")
    except InterpolationResolutionError as error:
        raise (find_user_error(error) or error) from None


def check_train_config(cfg: DictConfig) -> None:
    """Every check that needs no data: types, ranges, names, devices. The model's input
    settings are filled in first (`resolve_model_input`)."""
    check_task(cfg.get("task", "multiclass"))
    image_size = cfg.data.get("image_size")
    source = network_source(cfg.model.get("source"))
    net = architecture(cfg.model, image_size if is_int(image_size) and image_size >= 8 else 224)
    check_freeze(net, source.describe(net, cfg.model), cfg.freeze)
    check_cached_views(cfg)
    needed = source.input_spec(cfg.model.name).size
    check_input_size(net, cfg.model.name, image_size, needed=needed)
    check_cached_features_inputs(cfg)
    check_progressive_resizing(net, cfg)
    # The data module checks its own settings when it is built, before it reads anything.
    require_number(resolved_lr(cfg), "optimizer.lr", 0.0)
    if cfg.optimizer.lr == 0:
        raise UserError("optimizer.lr=0 would train nothing; give a positive learning rate")
    for key in ("momentum", "weight_decay"):
        if cfg.optimizer.get(key) is not None:
            require_number(cfg.optimizer[key], f"optimizer.{key}", 0.0)
    check_layer_decay(cfg.optimizer.get("layer_decay"))
    check_warmup(cfg)
    if cfg.trainer.get("max_epochs") != -1:
        require_int(cfg.trainer.get("max_epochs"), "trainer.max_epochs", 1)
    require_number(cfg.get("label_smoothing", 0.0), "label_smoothing", 0.0, 1.0)
    if cfg.get("seed") is not None:
        require_int(cfg.seed, "seed", 0)
    check_accelerator(cfg.trainer)
    check_fused_clipping(cfg)


def check_fused_clipping(cfg: DictConfig) -> None:
    """Lightning's mixed precision (fp16 and bf16 alike) refuses to clip the gradients of a fused
    optimizer, which unscales them inside its own step; say so before training, not at step 1."""
    precision = str(cfg.trainer.get("precision", "32-true"))
    if (
        cfg.optimizer.get("fused")
        and precision in MIXED_PRECISIONS
        and cfg.trainer.get("gradient_clip_val")
    ):
        raise UserError(
            f"trainer.gradient_clip_val with trainer.precision={precision} cannot clip a fused "
            "optimizer's gradients; set optimizer.fused=false, or drop the clipping"
        )
