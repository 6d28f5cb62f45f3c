"""Files that are always either the previous complete version or the new complete one."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

#: This host's name, in the names of temporary files: process ids are only unique per host.
HOST = socket.gethostname().replace(os.sep, "_") or "host"


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[BinaryIO]:
    """A binary handle on a temporary file beside `path`; on success the data is synced and the
    file renamed over `path` (and the rename synced), on any error the temporary file is removed.

    A kill, a crash of the machine or a full disk never leaves a truncated `path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    temporary = path.with_name(f".{path.name}.{HOST}.{os.getpid()}.tmp")
    try:
        with temporary.open("wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _sync_directory(path.parent)


def write_atomically(path: str | Path, content: str | bytes) -> Path:
    """Write `content` (text as UTF-8) to `path` through `atomic_output`."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    with atomic_output(path) as handle:
        handle.write(data)
    return Path(path)


def link_atomically(source: str | Path, path: str | Path) -> None:
    """Make `path` a hard link to the complete file `source`, atomically (as `atomic_output`:
    the old `path` or the new one). Raises OSError where the file system has no hard links."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{HOST}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    try:
        os.link(source, temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _remove_stale_temporaries(path: Path) -> None:
    """Remove temporary files of `path` left by writers of this host that were killed (their
    process is gone); a writer still running keeps its own, and so does every writer of another
    host sharing the file system (process ids are per host)."""
    for temporary in path.parent.glob(f".{path.name}.{HOST}.*.tmp"):
        pid = temporary.name.removeprefix(f".{path.name}.{HOST}.").removesuffix(".tmp")
        if pid.isdigit() and not _process_exists(int(pid)):
            temporary.unlink(missing_ok=True)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _sync_directory(directory: Path) -> None:
    """Make a rename inside `directory` survive a power cut (where the OS allows it)."""
    with contextlib.suppress(OSError):
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
