"""Atomic writes: the old complete file or the new complete one, and no temporary file left."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from src.utils.io import atomic_output, write_atomically


def test_an_error_while_writing_keeps_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = write_atomically(tmp_path / "summary.json", "old")
    with pytest.raises(KeyboardInterrupt), atomic_output(target) as handle:
        handle.write(b"half of the new")
        raise KeyboardInterrupt  # not an OSError: removed all the same
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_temporaries_of_killed_writers_on_this_host_are_removed_on_the_next_write(
    tmp_path: Path,
) -> None:
    """Process ids are per host: on a shared file system, a temporary of another host whose id
    is free here belongs to a writer that may still be at work there."""
    dead = os.fork()
    if dead == 0:  # a child that exits at once: its pid is then free
        os._exit(0)
    os.waitpid(dead, 0)
    host = socket.gethostname()
    left_by_killed = tmp_path / f".cache.json.{host}.{dead}.tmp"
    left_by_killed.write_text("half")
    being_written = tmp_path / f".cache.json.{host}.1.tmp"  # pid 1 is alive: still at work
    being_written.write_text("in progress")
    on_another_node = tmp_path / f".cache.json.other-node.cluster.{dead}.tmp"
    on_another_node.write_text("in progress there")

    written: list[str] = []
    with atomic_output(tmp_path / "cache.json") as handle:
        written += [p.name for p in tmp_path.glob(f".cache.json.{host}.{os.getpid()}.tmp")]
        handle.write(b"{}")
    assert len(written) == 1  # the writer's own temporary names its host and process
    assert not left_by_killed.exists()
    assert being_written.exists() and on_another_node.exists()
    assert (tmp_path / "cache.json").read_text() == "{}"
