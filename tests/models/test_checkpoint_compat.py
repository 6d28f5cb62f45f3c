"""Checkpoints written before the data settings moved to the data module still load."""

from __future__ import annotations

from pathlib import Path

import torch

from src.models.checkpoint import load_checkpoint
from src.train import train


def test_an_earlier_checkpoint_keeps_its_data_settings(make_config, folder_overrides, tmp_path):
    cfg = make_config(folder_overrides)
    train(cfg)
    current = Path(cfg.paths.output_dir) / "checkpoints" / "best.ckpt"
    model, data = load_checkpoint(current)
    assert data["root"] and data["_target_"].endswith("ImageFolderDataModule")

    # The earlier layout: the data settings inside the model's hyper-parameters.
    checkpoint = torch.load(current, weights_only=True)
    checkpoint["hyper_parameters"]["data_config"] = checkpoint.pop("datamodule_hyper_parameters")
    earlier = tmp_path / "earlier.ckpt"
    torch.save(checkpoint, earlier)
    old_model, old_data = load_checkpoint(earlier)
    assert old_data == data
    assert old_model.class_names == model.class_names
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, old_model.state_dict()[name])
