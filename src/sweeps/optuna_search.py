"""Hyper-parameter search on Optuna's ask-and-tell API, as a Hydra sweeper
(`hparams_search=optuna`; the plugin class is `hydra_plugins.optuna_search.OptunaSweeper`).

Each batch of `n_jobs` trials is asked of the study, launched as sweep jobs through the
configured launcher (SLURM included), and told back: a job that failed or returned no finite
score is a failed trial, and the search goes on up to `max_failure_rate`. A study in `storage`
(an Optuna URL such as `sqlite:///optuna.db`, or a file path for Optuna's `JournalStorage`, safe
for several processes) is continued by a later sweep with the same `study_name`. The best trial
goes to `<sweep dir>/optimization_results.yaml`.

The search space is Hydra's sweep syntax: `interval(a, b)` (floats), `tag(log, interval(a, b))`,
`range(a, b, step)` (integers, or a float grid; b excluded), `choice(x, y)`; a plain value fixes a
setting for every trial.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import (
    ChoiceSweep,
    IntervalSweep,
    Override,
    RangeSweep,
    Transformer,
)
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from src.utils.errors import UserError

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)

RESULTS_FILE = "optimization_results.yaml"


def distribution(override: Override) -> Any:
    """The Optuna distribution of a sweep override, or the plain value of any other."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if not override.is_sweep_override():
        return override.get_value_element_as_str()
    value = override.value()
    if isinstance(value, ChoiceSweep) or (isinstance(value, RangeSweep) and value.shuffle):
        return CategoricalDistribution(list(override.sweep_iterator(Transformer.encode)))
    if isinstance(value, RangeSweep):
        start, stop, step = value.start, value.stop, value.step
        if any(isinstance(x, float) for x in (start, stop, step)):
            # range's stop is exclusive; Optuna's high is inclusive
            high = start + math.floor((stop - start) / step - 1e-9) * step
            return FloatDistribution(start, high, step=step)
        return IntDistribution(int(start), int(stop) - 1, step=int(step))
    if isinstance(value, IntervalSweep):  # Hydra's intervals are of floats
        log_scale = "log" in value.tags
        return FloatDistribution(float(value.start), float(value.end), log=log_scale)
    raise UserError(f"{override.input_line}: an Optuna search takes interval, range or choice")


def search_space(arguments: Sequence[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The searched settings' distributions and the fixed settings, from overrides (the preset's
    `params` first, then the command line's, which replace them)."""
    from optuna.distributions import BaseDistribution

    searched: dict[str, Any] = {}
    fixed: dict[str, str] = {}
    for override in OverridesParser.create().parse_overrides(list(arguments)):
        key, value = override.get_key_element(), distribution(override)
        searched.pop(key, None)
        fixed.pop(key, None)
        (searched if isinstance(value, BaseDistribution) else fixed)[key] = value
    return searched, fixed


def open_storage(storage: str | None) -> Any:
    """None (in memory), an Optuna URL, or a file path: Optuna's JournalStorage in that file."""
    if not storage or "://" in storage:
        return storage
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    Path(storage).parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(storage)))


def score_of(return_value: Any) -> float | None:
    """A job's score, or None for a failed job (it raised, or returned no finite number)."""
    try:
        score = float(return_value)
    except Exception:
        return None
    return score if math.isfinite(score) else None


class OptunaSearch(Sweeper):
    def __init__(
        self,
        sampler: Any = None,
        direction: str = "maximize",
        storage: str | None = None,
        study_name: str | None = None,
        n_trials: int = 20,
        n_jobs: int = 1,
        max_failure_rate: float = 0.0,
        params: DictConfig | None = None,
    ) -> None:
        if not 0.0 <= max_failure_rate <= 1.0:
            raise UserError(f"hydra.sweeper.max_failure_rate={max_failure_rate}: give 0 to 1")
        if n_trials < 1 or n_jobs < 1:
            raise UserError("hydra.sweeper.n_trials and n_jobs must be at least 1")
        self.sampler, self.direction = sampler, str(direction)
        self.storage, self.study_name = storage, study_name
        self.n_trials, self.n_jobs = n_trials, n_jobs
        self.max_failure_rate = max_failure_rate
        self.params = params
        self.job_idx = 0

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function
        )

    def sweep(self, arguments: list[str]) -> None:
        import optuna

        preset = [f"{key}={value}" for key, value in (self.params or {}).items()]
        searched, fixed = search_space([*preset, *arguments])
        study = optuna.create_study(
            study_name=self.study_name,
            storage=open_storage(self.storage),
            sampler=self.sampler,
            direction=self.direction,
            load_if_exists=True,
        )
        log.info(
            "Study %s (%s, %d trials stored), searching %s",
            study.study_name,
            self.storage or "in memory",
            len(study.trials),
            ", ".join(searched) or "nothing",
        )
        remaining = self.n_trials
        while remaining > 0:
            trials = [study.ask(searched) for _ in range(min(self.n_jobs, remaining))]
            overrides = [
                tuple(f"{k}={v}" for k, v in {**trial.params, **fixed}.items()) for trial in trials
            ]
            returns = self.launcher.launch(overrides, initial_job_idx=self.job_idx)
            self.job_idx += len(returns)
            failed = self.tell(study, trials, returns)
            if failed / len(returns) > self.max_failure_rate:
                for job in returns:
                    job.return_value  # noqa: B018 - raises the first failed job's exception
            remaining -= len(trials)
        self.write_results(study)

    @staticmethod
    def tell(study: optuna.Study, trials: list[optuna.Trial], returns: Sequence[Any]) -> int:
        """Tell the study each trial's score; returns how many failed."""
        from optuna.trial import TrialState

        failed = 0
        for trial, job in zip(trials, returns, strict=True):
            score = score_of(job.return_value if job.status.name == "COMPLETED" else None)
            if score is None:
                failed += 1
                log.warning("Trial %d failed; the search goes on", trial.number)
                study.tell(trial, state=TrialState.FAIL)
            else:
                study.tell(trial, score)
        return failed

    def write_results(self, study: optuna.Study) -> None:
        from optuna.trial import TrialState

        if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            log.warning("Every trial failed: no %s written", RESULTS_FILE)
            return
        best = study.best_trial
        log.info("Best parameters: %s; best value: %s", best.params, best.value)
        results = {"name": "optuna", "best_params": best.params, "best_value": best.value}
        OmegaConf.save(OmegaConf.create(results), Path(self.config.hydra.sweep.dir) / RESULTS_FILE)
