"""Which process launched the run, and waiting for the first process's data."""

from __future__ import annotations

import pytest

from src.utils.devices import is_launcher_process, process_rank, wait_until
from src.utils.errors import UserError

RANK_VARIABLES = ("LOCAL_RANK", "NODE_RANK", "RANK", "SLURM_PROCID")


@pytest.mark.parametrize("variable", RANK_VARIABLES)
def test_any_rank_variable_but_zero_marks_a_secondary_process(monkeypatch, variable) -> None:
    for name in RANK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert is_launcher_process() and process_rank() == 0
    monkeypatch.setenv(variable, "0")
    assert is_launcher_process()
    monkeypatch.setenv(variable, "2")
    assert not is_launcher_process()


def test_global_rank_comes_from_torchrun_or_slurm(monkeypatch) -> None:
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.setenv("SLURM_PROCID", "3")
    assert process_rank() == 3
    monkeypatch.setenv("RANK", "5")
    assert process_rank() == 5


def test_waiting_gives_up_with_a_clear_message() -> None:
    with pytest.raises(UserError, match=r"waited 0 s for the data in x from process 0"):
        wait_until(lambda: False, 0.2, "the data in x")
    calls = iter([False, False, True])
    wait_until(lambda: next(calls), 5, "anything")
