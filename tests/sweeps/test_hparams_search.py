"""Optuna search (`hparams_search=optuna`) and the SLURM launcher (`hydra/launcher=slurm`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import submitit
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.utils import JobReturn, JobStatus
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from src.config.compose import CONF_DIR
from src.sweeps.optuna_search import OptunaSearch, search_space
from tests.helpers import NO_DATA, TINY, run_module


def sweep_dir(workdir: Path) -> Path:
    (sweep,) = (workdir / "outputs" / "train_multirun").iterdir()
    return sweep


def summaries(sweep: Path) -> list[dict[str, Any]]:
    jobs = sorted((p for p in sweep.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    return [json.loads((job / "summary.json").read_text()) for job in jobs]


@pytest.mark.slow
def test_optuna_sweep_with_2_trials(stripes_root: Path, tmp_path: Path) -> None:
    result = run_module(
        "src.train", "-m", "hparams_search=optuna", "hydra.sweeper.n_trials=2", "data=folder",
        f"data.root={stripes_root}", *[o for o in TINY if not o.startswith("data.batch_size=")],
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = sweep_dir(tmp_path)
    jobs = summaries(sweep)
    assert len(jobs) == 2 and all(job["status"] == "finished" for job in jobs)
    searched = {"optimizer.lr", "optimizer.momentum", "freeze", "data.batch_size"}
    for job in jobs:
        assert searched <= {o.split("=", 1)[0] for o in job["overrides"]}
    results = OmegaConf.load(sweep / "optimization_results.yaml")
    assert results.name == "optuna"
    assert set(results.best_params) == searched
    assert 1e-4 <= results.best_params["optimizer.lr"] <= 1e-1
    assert results.best_params["freeze"] in {"none", "all", "layer3_4"}
    assert results.best_params["data.batch_size"] in {4, 8, 16, 32}
    assert results.best_value == pytest.approx(max(job["best_score"] for job in jobs))


def test_a_search_over_a_setting_the_config_lacks_is_refused(tmp_path: Path) -> None:
    """The preset searches SGD's momentum: with optimizer=adamw on the command line every trial
    would fail, so the sweep stops before the first one."""
    result = run_module(
        "src.train", "-m", "hparams_search=optuna", "optimizer=adamw", *NO_DATA, cwd=tmp_path
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "searches optimizer.momentum" in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "outputs" / "train_multirun").exists() or not any(
        (tmp_path / "outputs" / "train_multirun").rglob("summary.json")
    )


@pytest.mark.slow
def test_optuna_records_a_failed_trial_and_goes_on(stripes_root: Path, tmp_path: Path) -> None:
    # Search only freeze.trainable; with sampler seed 42 trial 0 draws [layer9] (fails), trial 1
    # [layer4]. The assertions hold whatever the order. n_jobs=2: both trials are asked, launched
    # and told as one batch (parallel trials, with a launcher that runs jobs in parallel).
    result = run_module(
        "src.train", "-m", "hparams_search=optuna", "hydra.sweeper.n_trials=2",
        "hydra.sweeper.n_jobs=2",
        "hydra.sweeper.params=null", "hydra.sweeper.sampler.seed=42",
        "freeze.trainable=choice([layer4],[layer9])", "data=folder", f"data.root={stripes_root}",
        *TINY, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Launching 2 jobs" in result.stdout + result.stderr  # one batch of two trials
    sweep = sweep_dir(tmp_path)
    jobs = summaries(sweep)
    assert sorted(job["status"] for job in jobs) == ["failed", "finished"]
    (finished,) = (job for job in jobs if job["status"] == "finished")
    results = OmegaConf.load(sweep / "optimization_results.yaml")
    assert results.best_params["freeze.trainable"] == "[layer4]"
    assert results.best_value == pytest.approx(finished["best_score"])


def compose_with_hydra(overrides: list[str]) -> DictConfig:
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            return compose("train", overrides=overrides, return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()


def test_hparams_search_config_composes() -> None:
    cfg = compose_with_hydra(["hparams_search=optuna", "hydra.sweeper.n_trials=30"])
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper")
    assert sweeper.direction == "maximize" and sweeper.n_trials == 30 and sweeper.n_jobs == 1
    assert sweeper.sampler._target_ == "optuna.samplers.TPESampler"
    assert sweeper.sampler.seed == cfg.seed
    assert set(sweeper.params) == {
        "optimizer.lr", "optimizer.momentum", "freeze", "data.batch_size"
    }  # fmt: skip
    for option in ("none", "all", "layer3_4"):  # every freeze choice is a real preset
        assert (CONF_DIR / "freeze" / f"{option}.yaml").is_file()


@pytest.mark.parametrize(
    ("overrides", "devices", "nodes"),
    [([], 1, 1), (["trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2"], 4, 2)],
)
def test_slurm_launcher_follows_the_trainer(
    overrides: list[str], devices: int, nodes: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = compose_with_hydra(
        [
            "hydra/launcher=slurm",
            "hydra.launcher.partition=gpu",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
            *overrides,
        ]
    )
    launcher_cfg = cfg.hydra.launcher
    assert launcher_cfg._target_ == (
        "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    )
    assert launcher_cfg.tasks_per_node == launcher_cfg.gpus_per_node == devices
    assert launcher_cfg.nodes == nodes

    # Run the plugin's own launch() up to the submission, and read the sbatch script it would send.
    submitted: dict[str, Any] = {}

    def fake_map_array(executor: submitit.AutoExecutor, fn: Any, *args: Any) -> list[Any]:
        submitted["sbatch"] = executor._executor._make_submission_file_text("<command>", "uid")
        submitted["max_num_timeout"] = executor._executor.max_num_timeout
        ret = JobReturn(_return_value=0.5, status=JobStatus.COMPLETED)
        return [type("Job", (), {"results": lambda self: [ret]})() for _ in args[0]]

    monkeypatch.setattr(submitit.AutoExecutor, "map_array", fake_map_array)
    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: 2))  # no srun
    launcher = instantiate(launcher_cfg)
    launcher.setup(hydra_context=None, task_function=None, config=cfg)
    (ret,) = launcher.launch([["optimizer.lr=0.01"]], initial_job_idx=0)
    assert ret.return_value == 0.5
    sbatch = submitted["sbatch"].splitlines()
    for line in (
        f"#SBATCH --nodes={nodes}",
        f"#SBATCH --ntasks-per-node={devices}",
        f"#SBATCH --gpus-per-node={devices}",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --mem=64GB",
        "#SBATCH --time=240",
        "#SBATCH --partition=gpu",
        "#SBATCH --job-name=train",
        "#SBATCH --signal=USR2@120",  # submitit requeues the job before its time limit
    ):
        assert line in sbatch
    assert submitted["max_num_timeout"] == 3
    assert any(
        line.startswith(f"#SBATCH --output={tmp_path / 'sweep'}/.submitit/") for line in sbatch
    )


@pytest.mark.slow
def test_submitit_local_executor_runs_a_tiny_job(stripes_root: Path, tmp_path: Path) -> None:
    result = run_module(
        "src.train", "-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5",
        "data=folder", f"data.root={stripes_root}", *TINY, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = sweep_dir(tmp_path)
    (job,) = summaries(sweep)
    assert job["status"] == "finished" and 0.0 <= job["best_score"] <= 1.0
    assert Path(job["best_ckpt"]).is_file()
    assert list((sweep / ".submitit").glob("*/*_result.pkl"))  # it really went through submitit


def test_search_space_syntax_gives_optuna_distributions() -> None:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    searched, fixed = search_space(
        [
            "optimizer.lr=tag(log, interval(0.0001, 0.1))",
            "optimizer.momentum=interval(0.8, 0.99)",
            "trainer.max_epochs=interval(1, 5)",
            "data.batch_size=range(4, 33, 4)",
            "freeze=choice(none, all)",
            "data.batch_size=choice(4, 8)",  # the command line's replaces the preset's
            "model.name=resnet18",
        ]
    )
    assert searched["optimizer.lr"] == FloatDistribution(0.0001, 0.1, log=True)
    assert searched["optimizer.momentum"] == FloatDistribution(0.8, 0.99)
    assert searched["trainer.max_epochs"] == FloatDistribution(1.0, 5.0)  # intervals: floats
    assert searched["freeze"] == CategoricalDistribution(["none", "all"])
    assert searched["data.batch_size"] == CategoricalDistribution([4, 8])
    assert fixed == {"model.name": "resnet18"}
    ranged, _ = search_space(["data.batch_size=range(4, 33, 4)"])
    assert ranged["data.batch_size"] == IntDistribution(4, 32, step=4)


@pytest.mark.slow
def test_a_stored_study_is_continued_by_a_later_sweep(stripes_root: Path, tmp_path: Path) -> None:
    """Two sweeps of one trial each into one JournalStorage file: the second continues the
    study, and Optuna's own API reads both trials back."""
    import optuna

    journal = tmp_path / "studies" / "search.journal"
    for number, workdir in enumerate((tmp_path / "first", tmp_path / "second")):
        workdir.mkdir()
        result = run_module(
            "src.train", "-m", "hparams_search=optuna", "hydra.sweeper.n_trials=1",
            f"hydra.sweeper.storage={journal}", "hydra.sweeper.params=null",
            "optimizer.lr=interval(0.001, 0.01)", "data=folder", f"data.root={stripes_root}",
            *TINY, cwd=workdir,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        assert f"{number} trials stored" in result.stdout + result.stderr
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(journal))
    )
    study = optuna.load_study(study_name="train_optuna", storage=storage)
    trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(trials) == 2 and all(0.001 <= t.params["optimizer.lr"] <= 0.01 for t in trials)
    scores = [
        summaries(sweep_dir(tmp_path / name))[0]["best_score"] for name in ("first", "second")
    ]
    assert sorted(t.value for t in trials) == pytest.approx(sorted(scores))
    results = OmegaConf.load(sweep_dir(tmp_path / "second") / "optimization_results.yaml")
    assert results.best_value == pytest.approx(max(scores))  # the best of both sweeps


def test_failed_jobs_are_failed_trials_and_no_results_without_a_finished_one(
    tmp_path: Path,
) -> None:
    import optuna
    from optuna.trial import TrialState

    study = optuna.create_study(direction="maximize")
    trials = [study.ask() for _ in range(4)]
    returns = [
        JobReturn(_return_value=RuntimeError("no such freeze"), status=JobStatus.FAILED),
        JobReturn(_return_value=float("nan"), status=JobStatus.COMPLETED),  # a recorded failure
        JobReturn(_return_value=None, status=JobStatus.COMPLETED),
        JobReturn(_return_value=0.75, status=JobStatus.COMPLETED),
    ]
    assert OptunaSearch.tell(study, trials, returns) == 3
    assert [t.state for t in study.trials] == [TrialState.FAIL] * 3 + [TrialState.COMPLETE]
    search = OptunaSearch()
    search.config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})
    search.write_results(study)
    assert OmegaConf.load(tmp_path / "optimization_results.yaml").best_value == 0.75

    failed = optuna.create_study(direction="maximize")
    OptunaSearch.tell(failed, [failed.ask()], returns[:1])
    (tmp_path / "optimization_results.yaml").unlink()
    search.write_results(failed)
    assert not (tmp_path / "optimization_results.yaml").exists()
