"""A quiet console: third-party messages that the project causes on purpose, or that ask nothing
of the user, are filtered here, each with its reason. Every warning that asks the user to act
stays."""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.progress import track

T = TypeVar("T")

#: (message pattern, why it is filtered)
FILTERED_WARNINGS = (
    # Frozen BatchNorm is kept in eval mode on purpose (freeze.train_bn=false); the module says
    # so itself, once, when training starts.
    (r"Found \d+ module\(s\) in eval mode at the start of training", "frozen BatchNorm"),
    # Small data sets have fewer batches than the logging interval; epoch metrics are logged anyway.
    (r"The number of training batches \(\d+\) is smaller than the logging interval", "small data"),
    # Lightning's own use of a torch API that torch deprecated: nothing for the user to change.
    (r"`isinstance\(treespec, LeafSpec\)` is deprecated", "Lightning internals"),
)

#: Lightning's info lines that advertise rather than inform.
FILTERED_INFO_PREFIXES = ("💡 Tip:",)

#: Loggers whose INFO lines narrate a library's internal steps (the ONNX exporter's passes).
NARRATING_LOGGERS = ("onnx_ir", "onnxscript")

_installed = False


class _DropAdverts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(FILTERED_INFO_PREFIXES)


def progress(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """`items` with a Rich progress bar on a terminal (as training shows), silently otherwise."""
    yield from track(items, description, total=total, disable=not sys.stderr.isatty())


def quiet_known_messages() -> None:
    """Install the filters (once per process)."""
    global _installed
    if _installed:
        return
    for pattern, _reason in FILTERED_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).addFilter(_DropAdverts())
    for name in NARRATING_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    _installed = True
