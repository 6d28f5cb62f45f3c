"""Resolvers: `${scaled_lr:...}` (SGD's learning rate follows the batch size unless a number is
given) and `${gpu_precision:}`; the trainer presets that use them."""

from __future__ import annotations

import pytest

from tests.helpers.fake_gpus import fake_gpus


@pytest.mark.parametrize(
    ("overrides", "lr"),
    [
        ([], 0.001 * 8**0.5),  # the default batch of 32
        (["data.batch_size=4"], 0.001),  # the tutorial's batch and learning rate
        (["data.batch_size=16"], 0.002),
        (["data.batch_size=64", "optimizer.lr=0.05"], 0.05),  # a number fixes it
        (["experiment=tutorial_finetune"], 0.001),
        (["optimizer=adamw", "data.batch_size=64"], 0.001),  # AdamW's does not scale
    ],
)
def test_sgd_learning_rate_follows_the_batch_size(make_config, overrides, lr) -> None:
    cfg = make_config(overrides)
    assert cfg.optimizer.lr == pytest.approx(lr)


def test_one_cycle_peaks_at_the_scaled_learning_rate(make_config) -> None:
    cfg = make_config(["scheduler=onecycle", "data.batch_size=64"])
    assert cfg.scheduler.scheduler.max_lr == pytest.approx(0.004)


@pytest.mark.parametrize(
    ("capabilities", "precision"),
    [
        ([(8, 0), (8, 0)], "bf16-mixed"),
        ([(7, 5), (7, 5)], "16-mixed"),
        ([(8, 0), (7, 0)], "16-mixed"),
    ],
    ids=["ampere", "turing-emulates-bf16", "this-process-on-a-volta"],
)
def test_gpu_trainer_takes_bf16_only_where_the_gpu_computes_in_it(
    make_config, monkeypatch, capabilities: list[tuple[int, int]], precision: str
) -> None:
    """torch.cuda.is_bf16_supported() says yes where bfloat16 is only emulated (T4, V100), and
    asks cuda:0: the process of the second device (LOCAL_RANK=1) asks its own, allocating
    nothing."""
    gpus = fake_gpus(monkeypatch, capabilities)
    monkeypatch.setenv("LOCAL_RANK", "1")
    cfg = make_config(["trainer=gpu"])
    assert cfg.trainer.precision == precision and cfg.trainer.benchmark is True
    assert gpus.asked == [1] and gpus.current_device_calls == 0


def test_ddp_trainer_does_not_sync_batchnorm_by_default(make_config) -> None:
    assert make_config(["trainer=ddp"]).trainer.sync_batchnorm is False
