"""`scheduler.warmup_epochs`: a linear warmup, every optimizer step, on top of any schedule;
refused where it cannot work."""

from __future__ import annotations

import math

import pytest
import torch

from src.finetuning.optimization import configure_optimization
from src.train import train
from src.utils.errors import UserError
from tests.helpers import build_classifier, fit_briefly, logged_metrics

COSINE = {"_target_": "torch.optim.lr_scheduler.CosineAnnealingLR", "T_max": 4}


def rates_over_a_run(scheduler: dict, epochs: int = 4, steps_per_epoch: int = 3) -> list[float]:
    """The rate of each optimizer step, stepping the schedulers as Lightning does."""
    parameter = torch.nn.Parameter(torch.zeros(2))
    (optimizer,), schedulers = configure_optimization(
        {"_target_": "torch.optim.SGD", "lr": 1.0},
        scheduler,
        [{"params": [parameter]}],
        lambda: epochs * steps_per_epoch,
        lambda: epochs,
    )
    rates = []
    for _ in range(epochs):
        for _ in range(steps_per_epoch):
            rates.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            for config in schedulers:
                if config["interval"] == "step":
                    config["scheduler"].step()
        for config in schedulers:
            if config["interval"] == "epoch":
                config["scheduler"].step()
    return rates


def test_the_first_epoch_ramps_up_linearly_then_the_schedule_alone() -> None:
    rates = rates_over_a_run({"scheduler": COSINE, "interval": "epoch", "warmup_epochs": 1})
    cosine = [0.5 * (1 + math.cos(math.pi * epoch / 4)) for epoch in range(4)]
    expected = [cosine[step // 3] * min(1.0, (step + 1) / 4) for step in range(12)]
    assert rates == pytest.approx(expected)
    assert rates[:3] == pytest.approx([0.25, 0.5, 0.75])


def test_without_a_schedule_the_rate_is_constant_after_the_warmup() -> None:
    rates = rates_over_a_run({"scheduler": None, "warmup_epochs": 0.5}, epochs=2, steps_per_epoch=4)
    assert rates == pytest.approx([1 / 3, 2 / 3, 1, 1, 1, 1, 1, 1])


def test_no_warmup_by_default() -> None:
    rates = rates_over_a_run({"scheduler": COSINE, "interval": "epoch", "warmup_epochs": 0})
    assert rates[0] == 1.0


def test_a_run_logs_the_warmed_up_rates_of_every_group(stripes_root, tmp_path) -> None:
    scheduler = {"scheduler": None, "warmup_epochs": 1}
    model = build_classifier(None, backbone_lr_mult=0.1, lr=0.1, scheduler=scheduler, image_size=32)
    fit_briefly(model, stripes_root, tmp_path, epochs=2)
    rows = [row for row in logged_metrics(tmp_path) if row.get("lr-SGD/head")]
    heads = [float(row["lr-SGD/head"]) for row in rows]
    assert heads == pytest.approx([0.1 / 3, 0.1])  # epoch 0 starts at 1/3, epoch 1 at the rate
    assert [float(row["lr-SGD/backbone"]) for row in rows] == pytest.approx([0.01 / 3, 0.01])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["scheduler=onecycle", "scheduler.warmup_epochs=1"], "warms up by itself"),
        (["scheduler.warmup_epochs=1", "trainer.max_epochs=-1"], "needs a number of epochs"),
        (["scheduler.warmup_epochs=-1"], r"scheduler.warmup_epochs=-1 must be a number >= 0"),
    ],
)
def test_a_warmup_that_cannot_work_is_refused(overrides, message, make_config) -> None:
    with pytest.raises(UserError, match=message):
        train(make_config(["data=folder", "data.root=/nonexistent", *overrides]))


def test_the_warmup_resumes_from_a_checkpoint_it_can_be_loaded_from_safely(tmp_path) -> None:
    """Its state holds plain values and the schedule's state, so `weights_only` loads it; the
    resumed schedule goes on with the same rates."""
    scheduler = {"scheduler": COSINE, "interval": "epoch", "warmup_epochs": 1}

    def configured():
        parameter = torch.nn.Parameter(torch.zeros(2))
        (optimizer,), (config,) = configure_optimization(
            {"_target_": "torch.optim.SGD", "lr": 1.0},
            scheduler,
            [{"params": [parameter]}],
            lambda: 12,
            lambda: 4,
        )
        return optimizer, config["scheduler"]

    optimizer, warmup = configured()
    for _ in range(5):
        optimizer.step()
        warmup.step()
    torch.save(
        {"scheduler": warmup.state_dict(), "optimizer": optimizer.state_dict()}, tmp_path / "s"
    )
    saved = torch.load(tmp_path / "s", weights_only=True)
    resumed_optimizer, resumed = configured()
    resumed_optimizer.load_state_dict(saved["optimizer"])
    resumed.load_state_dict(saved["scheduler"])
    for _ in range(5):
        optimizer.step(), resumed_optimizer.step()
        warmup.step(), resumed.step()
        assert resumed.get_last_lr() == pytest.approx(warmup.get_last_lr())


def test_gradual_unfreezing_adds_groups_that_warm_up_too(stripes_root, tmp_path) -> None:
    scheduler = {
        "scheduler": {"_target_": "torch.optim.lr_scheduler.StepLR", "step_size": 1, "gamma": 0.5},
        "interval": "epoch",
        "warmup_epochs": 1.5,
    }
    model = build_classifier(
        [], unfreeze_at={"layer4": 1}, backbone_lr_mult=0.1, lr=0.1, scheduler=scheduler,
        image_size=32,
    )  # fmt: skip
    fit_briefly(model, stripes_root, tmp_path, epochs=2)
    rows = [row for row in logged_metrics(tmp_path) if row.get("lr-SGD/layer4")]
    (row,) = rows  # logged at the start of epoch 1, after 2 steps of a 3-step warmup
    expected_head = 0.1 * 0.5 * 3 / 4
    assert float(row["lr-SGD/head"]) == pytest.approx(expected_head)
    assert float(row["lr-SGD/layer4"]) == pytest.approx(expected_head * 0.1)
