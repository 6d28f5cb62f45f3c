"""Hydra callback: write the sweep report into the sweep dir when a multirun ends."""

from __future__ import annotations

import logging
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger(__name__)


class SweepReport(Callback):
    """Registered in conf/hydra/default.yaml; single runs never call it."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        # Never fail a finished sweep over its report: the jobs' own files are what matters.
        try:
            from src.sweeps.report import (
                build_report,  # imported here: every Hydra start loads this
            )

            sweep_dir = str(config.hydra.sweep.dir)
            report = build_report([sweep_dir])
        except Exception as error:
            log.warning("Sweep report not written: %s", " ".join(str(error).split()))
            return
        log.info("Sweep report:\n%s", report.markdown)
        log.info("Written to: %s", ", ".join(str(path) for path in report.files))
