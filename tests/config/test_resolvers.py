"""`${scaled_lr:...}`: SGD's learning rate follows the batch size unless a number is given."""

from __future__ import annotations

import pytest


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
