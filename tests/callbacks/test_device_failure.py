"""The device running out of memory while decoding images on it stops the run with one line,
in every process."""

from __future__ import annotations

from pathlib import Path

import pytest

from src.data.device_decoding import DeviceFailure
from src.train import train
from tests.helpers import TINY, run_module

OUT_OF_MEMORY = "+callbacks.oom._target_=tests.helpers.fault_helpers.DeviceRunsOutOfMemory"


def test_one_process_stops_at_once_with_one_line(make_config, folder_overrides) -> None:
    cfg = make_config(
        [*folder_overrides, "data.decode_on_device=true", OUT_OF_MEMORY, "+callbacks.oom.at_step=1"]
    )
    message = (
        r"^cpu failed while decoding images on the device at step 1: CUDA out of memory\. Tried "
        r"to allocate 2\.00 GiB\. GPU 0 .*; lower data\.batch_size or set data\.decode_on_device"
    )
    with pytest.raises(DeviceFailure, match=message):
        train(cfg)


@pytest.mark.slow
def test_out_of_memory_in_one_process_stops_every_process(
    stripes_root: Path, tmp_path: Path
) -> None:
    """Two DDP processes on the CPU; only the second one's device runs out of memory. Raised
    there, the first process would wait in the next all-reduce until the process-group timeout."""
    result = run_module(
        "src.train", "data=folder", f"data.root={stripes_root}", *TINY,
        "trainer.accelerator=cpu", "trainer.devices=2", "data.decode_on_device=true",
        OUT_OF_MEMORY, "+callbacks.oom.at_step=1", "+callbacks.oom.rank=1",
        cwd=tmp_path, timeout=240,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-3000:]
    assert "cpu failed while decoding images on the device at step 1: CUDA out of memory" in (
        result.stderr
    )  # the second process
    assert "the device of another process of the run failed" in result.stderr  # the first
    (run,) = (tmp_path / "outputs" / "train").iterdir()
    assert not (run / "checkpoints" / "last.ckpt").exists()  # nothing saved after the failure
