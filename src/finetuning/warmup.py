"""A linear learning-rate warmup before any schedule (`scheduler.warmup_epochs`), as the ViT,
BEiT and timm fine-tuning recipes start.

One scheduler that Lightning steps after every optimizer step: over the first `warmup_steps`
it scales every group's rate from 1 / (warmup_steps + 1) of the schedule's up to all of it, and
it steps the schedule itself at the schedule's own interval (every step, or every epoch's worth
of steps). The schedule starts with the run, under the warmup, as timm's does.
"""

from __future__ import annotations

from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler


class LinearWarmup(LRScheduler):
    """`schedule` (None: a constant rate) under a linear warmup of `warmup_steps` steps;
    `schedule_every`: optimizer steps between two steps of the schedule."""

    def __init__(
        self,
        optimizer: Optimizer,
        schedule: LRScheduler | None,
        warmup_steps: int,
        schedule_every: int = 1,
    ) -> None:
        self.schedule = schedule
        self.warmup_steps = max(1, int(warmup_steps))
        self.schedule_every = max(1, int(schedule_every))
        #: Each group's rate as the schedule sets it, before the warmup's factor.
        self.scheduled_lrs = [group["lr"] for group in optimizer.param_groups]
        super().__init__(optimizer)

    def factor(self, step: int) -> float:
        return min(1.0, (step + 1) / (self.warmup_steps + 1))

    def step(self, epoch: int | None = None) -> None:
        """The rates for the next optimizer step (`self.last_epoch` counts steps taken)."""
        self.last_epoch += 1
        groups = self.optimizer.param_groups
        if self.last_epoch > 0:
            for group, lr in zip(groups, self.scheduled_lrs, strict=True):
                group["lr"] = lr
            if self.schedule is not None and self.last_epoch % self.schedule_every == 0:
                self.schedule.step()
            self.scheduled_lrs = [group["lr"] for group in groups]
        factor = self.factor(self.last_epoch)
        for group, lr in zip(groups, self.scheduled_lrs, strict=True):
            group["lr"] = lr * factor
        self._last_lr = [group["lr"] for group in groups]

    def add_group(self, lr_mult: float) -> None:
        """Follow a group the optimizer has just gained, at `lr_mult` times the head's rate
        (gradual unfreezing); the schedule follows it too."""
        self.scheduled_lrs.append(self.scheduled_lrs[0] * lr_mult)
        self.base_lrs.append(self.base_lrs[0] * lr_mult)
        self._last_lr.append(self.optimizer.param_groups[-1]["lr"])
        if self.schedule is not None:
            self.schedule.base_lrs.append(self.schedule.base_lrs[0] * lr_mult)
            self.schedule._last_lr.append(self.scheduled_lrs[-1])

    def state_dict(self) -> dict[str, Any]:
        """Plain values only (checkpoints load with weights_only): the schedule's own state."""
        own = {
            key: value
            for key, value in self.__dict__.items()
            if key not in ("optimizer", "schedule")
        }
        return {**own, "schedule": None if self.schedule is None else self.schedule.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict)
        schedule = state.pop("schedule")
        self.__dict__.update(state)
        if self.schedule is not None and schedule is not None:
            self.schedule.load_state_dict(schedule)
