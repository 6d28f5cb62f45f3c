"""`logger=mlflow` against a real MLflow tracking server (SQLite back end) and `logger=wandb` in
offline mode: one short run logs to both, and each is read back the way its users read it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import TINY, run_module
from tests.helpers.wandb_records import records

LR = "0.003"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_mlflow_defaults_to_a_local_store_beside_the_runs(make_config, tmp_path: Path) -> None:
    local = make_config(["logger=[tensorboard,csv,mlflow]"]).logger
    assert set(local) == {"tensorboard", "csv", "mlflow"}  # composes with the default loggers
    assert local.mlflow.tracking_uri == f"sqlite:///{tmp_path}/outputs/mlflow.db"
    assert local.mlflow.artifact_location == str(tmp_path / "outputs" / "mlflow_artifacts")
    assert local.mlflow.experiment_name == "train"
    server = make_config(["logger=mlflow", "logger.mlflow.tracking_uri=http://127.0.0.1:5000"])
    assert server.logger.mlflow.artifact_location is None  # the server keeps them


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`mlflow server` on 127.0.0.1, a free port, its SQLite store and artifacts in a temp dir."""
    home = tmp_path_factory.mktemp("mlflow_server")
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
            "--workers", "1", "--backend-store-uri", f"sqlite:///{home / 'mlflow.db'}",
            "--artifacts-destination", str(home / "artifacts"),
        ],
        cwd=home, stdout=(home / "server.log").open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=5) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((home / "server.log").read_text()[-3000:])
            time.sleep(1)
        yield uri
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def tracked_run(
    tracking_server: str, tmp_path_factory: pytest.TempPathFactory, stripes_root: Path
) -> Path:
    """One run logged to TensorBoard, CSV, the MLflow server and W&B (offline); its run dir."""
    workdir = tmp_path_factory.mktemp("tracked")
    wandb_home = {
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "WANDB_CONFIG_DIR": str(workdir / "wandb_config"),
        "WANDB_CACHE_DIR": str(workdir / "wandb_cache"),
        "WANDB_DATA_DIR": str(workdir / "wandb_data"),
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in wandb_home.items():
            patch.setenv(name, value)
        result = run_module(
            "src.train", "logger=[tensorboard,csv,mlflow,wandb]",
            f"logger.mlflow.tracking_uri={tracking_server}", f"optimizer.lr={LR}",
            "data=folder", f"data.root={stripes_root}", *TINY, cwd=workdir,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (workdir / "outputs" / "train").iterdir()
    return run_dir


@pytest.mark.slow
def test_mlflow_server_holds_params_metrics_and_report(tracking_server: str, tracked_run: Path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_server)
    experiment = client.get_experiment_by_name("train")  # named after the task
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["optimizer.lr"] == LR and run.data.params["seed"] == "42"
    assert run.data.params["group:freeze"] == "none"
    history = client.get_metric_history(run.info.run_id, "val/acc")
    assert len(history) == 2 and history[0].step < history[1].step  # per epoch, with its step
    assert len(client.get_metric_history(run.info.run_id, "train/loss_step")) >= 2
    assert "best_checkpoint/accuracy" in run.data.metrics
    names = {item.path for item in client.list_artifacts(run.info.run_id, "evaluation")}
    assert {"evaluation/report.md", "evaluation/metrics.json"} <= names
    assert any(name.endswith(".png") for name in names)
    downloaded = client.download_artifacts(
        run.info.run_id, "evaluation/report.md", str(tracked_run.parent)
    )
    assert Path(downloaded).read_text() == (tracked_run / "evaluation" / "report.md").read_text()


@pytest.mark.slow
def test_wandb_offline_run_holds_params_metrics_and_report(tracked_run: Path) -> None:
    """What `wandb sync` would upload: the config, each step's metrics, the summary, the files."""
    (offline,) = (tracked_run / "wandb").glob("offline-run-*")
    (log,) = offline.glob("*.wandb")
    config, history, summary, files, exit_codes = {}, [], {}, set(), []
    for record in records(log):
        kind = record.WhichOneof("record_type")
        if kind == "config":
            config.update((item.key, json.loads(item.value_json)) for item in record.config.update)
        elif kind == "history":
            history.append(
                {"/".join(i.nested_key): json.loads(i.value_json) for i in record.history.item}
            )
        elif kind == "summary":
            summary.update(
                (item.key, json.loads(item.value_json)) for item in record.summary.update
            )
        elif kind == "files":
            files.update(item.path for item in record.files.files)
        elif kind == "exit":
            exit_codes.append(record.exit.exit_code)
    assert config["optimizer.lr"] == float(LR) and config["seed"] == 42
    assert config["group:freeze"] == "none"
    assert len([step for step in history if "val/acc" in step]) == 2  # one per epoch
    assert len([step for step in history if "train/loss_step" in step]) >= 2
    assert 0.0 <= summary["best_checkpoint/accuracy"] <= 1.0
    assert {"evaluation/report.md", "evaluation/metrics.json"} <= files
    report = offline / "files" / "evaluation" / "report.md"
    assert report.read_text() == (tracked_run / "evaluation" / "report.md").read_text()
    assert exit_codes == [0]  # the run was finished, not left open
