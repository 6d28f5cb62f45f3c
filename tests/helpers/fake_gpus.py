"""GPUs as torch reports them, for tests on a machine without one (`fake_gpus`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
import torch


@dataclass
class FakeGpus:
    """Visible CUDA devices with these compute capabilities; records what was asked of them."""

    capabilities: Sequence[tuple[int, int]]
    #: The devices whose capability was asked, in order.
    asked: list[int] = field(default_factory=list)
    #: Calls that act on the current device (cuda:0 until a process sets its own).
    current_device_calls: int = 0

    def capability(self, device: int | torch.device | None = None) -> tuple[int, int]:
        index = self.index(device)
        self.asked.append(index)
        return self.capabilities[index]

    def index(self, device: int | torch.device | None) -> int:
        if device is None:
            self.current_device_calls += 1
            return 0
        return device if isinstance(device, int) else (device.index or 0)

    def is_bf16_supported(self, including_emulation: bool = True) -> bool:
        """torch's answer: native on the current device, or by default emulated on any."""
        major = self.capability(None)[0]
        return major >= 8 or including_emulation


def fake_gpus(monkeypatch: pytest.MonkeyPatch, capabilities: Sequence[tuple[int, int]]) -> FakeGpus:
    gpus = FakeGpus(list(capabilities))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: len(gpus.capabilities))
    monkeypatch.setattr(torch.cuda, "get_device_capability", gpus.capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", gpus.is_bf16_supported)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: gpus.index(None))
    return gpus
