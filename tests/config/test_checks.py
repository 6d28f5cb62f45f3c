"""Config mistakes stop the run with one clear line, before any data is touched."""

from __future__ import annotations

import pytest
import torch

from src.train import build_model, train
from src.utils.errors import UserError
from tests.helpers import NO_DATA


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optimizer.lr=-0.1", "optimizer.lr=-0.1 must be a number >= 0"),
        ("optimizer.lr=fast", "optimizer.lr='fast' must be a number"),
        ("optimizer.lr=0", "optimizer.lr=0 would train nothing"),
        ("optimizer.momentum=-1", "optimizer.momentum=-1 must be a number >= 0"),
        ("data.batch_size=0", "data.batch_size=0 must be an integer >= 1"),
        ("data.batch_size=big", "data.batch_size='big' must be an integer >= 1"),
        ("data.val_fraction=1.5", "data.val_fraction=1.5 must be a number between 0.0 and 1.0"),
        ("data.num_workers=-2", "data.num_workers=-2 must be an integer >= 0"),
        ("trainer.max_epochs=many", "trainer.max_epochs='many' must be an integer >= 1"),
        ("freeze.trainable=[layer9]", "valid names: conv1, bn1"),
        ("freeze.trainable=layer4", "must be a list of child names"),
        ("model.name=resnet35", "is not a torchvision classification model"),
        ("trainer.devices=lots", "trainer.devices='lots' must be a number of devices"),
        ("seed=-3", "seed=-3 must be an integer >= 0"),
    ],
)
def test_mistake_is_reported_before_data(make_config, override: str, message: str) -> None:
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace(".", r"\.")):
        train(make_config([*NO_DATA, override]))


def test_valid_config_reaches_the_data(make_config) -> None:
    with pytest.raises(UserError, match="/nonexistent/images does not exist"):
        train(make_config(NO_DATA))


def test_fp16_clipping_of_a_fused_optimizer_is_refused(make_config) -> None:
    overrides = ["trainer.precision=16-mixed", "trainer.gradient_clip_val=1.0"]
    with pytest.raises(UserError, match=r"set optimizer\.fused=false"):
        train(make_config([*NO_DATA, *overrides]))
    with pytest.raises(UserError, match="/nonexistent/images does not exist"):
        train(make_config([*NO_DATA, *overrides, "optimizer.fused=false"]))


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_optimizers_are_fused_by_default(make_config, optimizer: str) -> None:
    cfg = make_config([*NO_DATA, f"optimizer={optimizer}", "scheduler=step"])
    built = build_model(cfg, ["a", "b"]).configure_optimizers()[0][0]
    assert built.defaults["fused"] is True


def test_optimizers_without_a_fused_kernel_still_build(make_config) -> None:
    overrides = ["optimizer._target_=torch.optim.RMSprop", "~optimizer.nesterov", "scheduler=step"]
    cfg = make_config([*NO_DATA, *overrides])
    built = build_model(cfg, ["a", "b"]).configure_optimizers()[0][0]
    assert type(built).__name__ == "RMSprop" and built.defaults["momentum"] == 0.9


def test_more_gpus_than_present_are_refused(make_config, monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    expected = r"trainer.devices=4 but only 2 GPU\(s\) are available; use trainer.devices=2"
    with pytest.raises(UserError, match=expected):
        train(make_config([*NO_DATA, "trainer=gpu", "trainer.devices=4"]))
