"""Hydra callbacks of every multirun: the search space checked when it starts, the sweep report
written into the sweep dir when it ends."""

from __future__ import annotations

import logging
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from src.utils.errors import UserError, exit_on_user_error

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
            baseline = OmegaConf.select(config, "report.baseline")
            report = build_report(
                [sweep_dir], None, baseline, OmegaConf.select(config, "report.target")
            )
        except Exception as error:
            log.warning("Sweep report not written: %s", " ".join(str(error).split()))
            return
        log.info("Sweep report:\n%s", report.markdown)
        log.info("Written to: %s", ", ".join(str(path) for path in report.files))


class SearchSpaceCheck(Callback):
    """Refuse, before the first trial, a searched setting that the composed config lacks (e.g.
    `optimizer.momentum` with `optimizer=adamw`): every trial would fail on it. Hydra turns an
    exception raised here into a warning, so the refusal is an exit with the user-error status."""

    @exit_on_user_error
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        params = OmegaConf.select(config, "hydra.sweeper.params") or {}
        groups = OmegaConf.select(config, "hydra.runtime.choices") or {}
        absent = object()
        missing = [
            key
            for key in params
            if not key.startswith(("+", "~"))
            and key not in groups
            and OmegaConf.select(config, key, default=absent) is absent
        ]
        if missing:
            raise UserError(
                f"hydra.sweeper.params searches {', '.join(missing)}, which the composed config "
                "does not have (another optimizer or data option chosen?); choose the option "
                "that has it, or remove it from the search"
            )
