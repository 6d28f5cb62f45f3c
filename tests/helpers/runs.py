"""Runs as a user starts them: the TINY overrides and `python -m <entry point>` in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

#: The repository root: what subprocesses put on PYTHONPATH, and where src/ and conf/ are.
REPO = Path(__file__).resolve().parents[2]

#: A fast but complete run: a small network on 32 px images, two short epochs on the CPU.
TINY = [
    "model.name=resnet18",
    "model.pretrained=false",
    "data.image_size=32",
    "data.batch_size=4",
    "data.num_workers=0",
    "data.persistent_workers=false",
    "trainer.max_epochs=2",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=2",
    "trainer.log_every_n_steps=1",
]


#: TINY on a data root that does not exist: an error raised before any data is touched says
#: something else than that folder's absence.
NO_DATA = ["data=folder", "data.root=/nonexistent/images", *TINY]


def module_env() -> dict[str, str]:
    """The environment of a `python -m` subprocess: this checkout importable, short Hydra errors."""
    return {**os.environ, "PYTHONPATH": str(REPO), "HYDRA_FULL_ERROR": "0"}


def run_module(
    module: str, *args: str, cwd: Path, timeout: float = 300, python_options: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """`python -m module args...` as a user would type it, from `cwd`."""
    return subprocess.run(
        [sys.executable, *python_options, "-m", module, *args],
        cwd=cwd,
        env=module_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
