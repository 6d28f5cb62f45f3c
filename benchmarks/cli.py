"""Command-line options that every benchmark takes, and the scratch dir each works in."""

from __future__ import annotations

import argparse
import contextlib
import logging
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("benchmarks")


@contextlib.contextmanager
def scratch_dir(prefix: str, keep: bool = False) -> Iterator[Path]:
    """A fresh temporary dir (split links, run dirs), removed afterwards unless `keep`."""
    work_dir = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield work_dir
    finally:
        if keep:
            log.info("Work dir kept: %s", work_dir)
        else:
            shutil.rmtree(work_dir, ignore_errors=True)


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the images come from: one of a folder, an archive, or generated ones."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", type=Path, help="folder of class folders")
    source.add_argument("--zip", type=Path, help="Cats vs Dogs style archive, extracted once")
    source.add_argument("--synthetic", action="store_true", help="generated stripe JPEGs")


def add_output_arguments(parser: argparse.ArgumentParser, overrides_example: str) -> None:
    """Extra project overrides, JSON output, the cache dir and verbosity."""
    parser.add_argument(
        "--project-overrides",
        nargs="+",
        default=[],
        action="extend",
        metavar="KEY=VALUE",
        help=f"extra Hydra overrides for the project's side, e.g. {overrides_example}",
    )
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "tl-benchmarks-cache",
        help="extracted archives, generated images and image checks, kept between runs",
    )
    parser.add_argument("--verbose", action="store_true", help="show the project's own logging")
