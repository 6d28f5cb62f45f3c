"""Decode-check image files once and remember the verdict, so later runs only stat the files."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path

from src.data.images import check_image
from src.utils.console import progress
from src.utils.io import write_atomically

log = logging.getLogger(__name__)

CACHE_VERSION = 1


def _cache_file(cache_dir: Path, root: Path, max_pixels: int) -> Path:
    key = hashlib.sha1(f"{root.resolve()}|{max_pixels}|{CACHE_VERSION}".encode()).hexdigest()[:16]
    return cache_dir / "image_checks" / f"{key}.json"


def _fingerprint(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def find_unusable(
    paths: Sequence[Path], root: Path, max_pixels: int, cache_dir: Path | None = None
) -> dict[Path, str]:
    """Map each unusable file among `paths` to the reason; decodes only files not seen before.

    A file's verdict is reused while its size and modification time are unchanged.
    """
    cache_path = _cache_file(cache_dir, root, max_pixels) if cache_dir else None
    cached = _read_verdicts(cache_path, warn=True) if cache_path else {}
    verdicts: dict[str, list] = {}
    unusable: dict[Path, str] = {}
    checked = 0
    for path in progress(paths, f"Checking images in {root}"):
        key = path.relative_to(root).as_posix()
        fingerprint = _fingerprint(path)
        entry = cached.get(key)
        if entry is None or entry[:2] != fingerprint:
            entry = [*fingerprint, check_image(path, max_pixels)]
            checked += 1
        verdicts[key] = entry
        if entry[2] is not None:
            unusable[path] = entry[2]
    if checked:
        log.info("Checked %d new or changed images under %s", checked, root)
    if cache_path and verdicts != cached:
        write_atomically(cache_path, json.dumps(verdicts))
    return unusable


def checked_before(paths: Sequence[Path], root: Path, max_pixels: int, cache_dir: Path) -> bool:
    """Whether the cache under `cache_dir` holds a current verdict for every file of `paths`
    (then `find_unusable` decodes none): what the processes that wait for process 0 poll."""
    cached = _read_verdicts(_cache_file(cache_dir, root, max_pixels), warn=False)
    return all(
        (entry := cached.get(path.relative_to(root).as_posix())) is not None
        and entry[:2] == _fingerprint(path)
        for path in paths
    )


def _read_verdicts(cache_path: Path, warn: bool) -> dict[str, list]:
    if not cache_path.is_file():
        return {}
    try:
        return json.loads(cache_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        if warn:
            log.warning("Ignoring unreadable image-check cache %s", cache_path)
        return {}
