"""Sweep reports: rows from job dirs, the written files, the CLI, and the multirun callback."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from src.report import main
from src.sweeps.hydra_callback import SweepReport
from src.sweeps.report import build_report, collect_rows, score_curve
from tests.helpers import TINY, run_module

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
COMMON = ["data=folder", "trainer.max_epochs=2"]


def finished(trainable: int, accuracy: float, epoch: int) -> dict[str, Any]:
    return {
        "trainable_params": trainable,
        "total_params": 11177538,
        "status": "finished",
        "error": None,
        "best_val_acc": accuracy,
        "best_epoch": epoch,
        "final_val_loss": 0.3456,
        "epochs": 2,
        "wall_time_s": 12.345,
        "train_images_per_s": 250.5,
        "best_ckpt": "checkpoints/best.ckpt",
        "last_ckpt": "checkpoints/last.ckpt",
    }


def make_job(
    sweep: Path,
    name: str,
    overrides: list[str],
    summary: dict[str, Any] | None,
    accuracies: Sequence[float] = (),
) -> Path:
    """A job dir as train.py leaves it: .hydra/overrides.yaml, summary.json, csv/metrics.csv."""
    job = sweep / name
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if summary is not None:
        (job / "summary.json").write_text(json.dumps({"overrides": overrides, **summary}))
    if accuracies:
        (job / "csv").mkdir()
        lines = ["epoch,step,train/loss_epoch,val/acc,val/loss"]
        for epoch, accuracy in enumerate(accuracies):
            lines += [f"{epoch},{epoch},0.5,,", f"{epoch},{epoch},,{accuracy},0.4"]
        (job / "csv" / "metrics.csv").write_text("\n".join(lines) + "\n")
    return job


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """Four jobs: two finished (the better one second), one failed, one killed (no summary)."""
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "multirun.yaml").write_text("hydra: {}\n")
    make_job(sweep, "0", ["freeze=all", *COMMON], finished(1026, 0.9, 1), [0.8, 0.9])
    make_job(sweep, "1", ["freeze=none", *COMMON], finished(11177538, 0.9875, 1), [0.9, 0.9875])
    make_job(sweep, "2", ["freeze=bad", *COMMON], {"status": "failed", "error": "no such freeze"})
    make_job(sweep, "3", ["freeze=layer4", *COMMON], None, [0.7])
    return sweep


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def test_rows_sorted_by_accuracy_with_failed_and_incomplete_last(sweep: Path) -> None:
    rows = collect_rows([sweep])
    assert [row.job for row in rows] == ["1", "0", "2", "3"]
    assert [row.status for row in rows] == ["finished", "finished", "failed", "incomplete"]
    assert rows[2].error == "no such freeze"
    assert rows[3].overrides[0] == "freeze=layer4"  # from .hydra/overrides.yaml
    assert score_curve(sweep / "1", "val/acc") == [(0, 0.9), (1, 0.9875)]


def test_report_files(sweep: Path) -> None:
    report = build_report([sweep])
    assert {path.name for path in report.files} == {
        "report.md", "report.html", "report.csv", "comparison.png", "val_acc.png", "tensorboard",
    }  # fmt: skip

    table = read_csv(sweep / "report.csv")
    assert [row["job"] for row in table] == ["1", "0", "2", "3"]
    assert table[0]["overrides"] == "freeze=none data=folder trainer.max_epochs=2"
    assert float(table[0]["best_score"]) == 0.9875 and table[0]["best_epoch"] == "1"
    assert table[2]["status"] == "failed" and table[2]["error"] == "no such freeze"
    assert table[2]["best_score"] == ""

    markdown = (sweep / "report.md").read_text()
    assert markdown == report.markdown
    assert "Overrides of every job: `data=folder trainer.max_epochs=2`" in markdown
    jobs = markdown.split("## Jobs")[1]
    lines = [line for line in jobs.splitlines() if line.startswith("| ")]
    assert lines[1].startswith("| 1 | freeze=none | finished | 0.9875 | 1 | 0.3456 |")
    assert "| 1,026 / 11,177,538 | 12.3 | 250.5 | checkpoints/best.ckpt |" in lines[2]
    assert "| failed: no such freeze |" in lines[3]
    assert "| incomplete: no summary.json" in lines[4]

    assert (sweep / "val_acc.png").read_bytes().startswith(PNG_SIGNATURE)
    # one run per setting: the comparison says that it cannot judge
    assert "Every group has one run: no comparison is possible" in markdown
    assert (
        "| 2 | freeze=none | 1 | 0.988 | - | +0.088 | no comparison possible with one" in markdown
    )
    assert "| 3 | freeze=bad | 0 of 1 finished | - | - | - | no finished run |" in markdown
    page = (sweep / "report.html").read_text()
    assert "<td>no finished run</td>" in page and '<img src="comparison.png"' in page
    assert any((sweep / "tensorboard").glob("events.out.tfevents.*.sweep_report"))


def test_cli_on_run_dirs_writes_to_output(
    sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "out"
    assert main([str(sweep / "0"), str(sweep / "2"), "--output", str(output)]) == 0
    assert [row["job"] for row in read_csv(output / "report.csv")] == ["0", "2"]
    assert (output / "val_acc.png").is_file()
    printed = capsys.readouterr().out
    assert "| failed: no such freeze |" in printed and str(output / "report.csv") in printed


@pytest.mark.parametrize("bad", ["missing", "empty"])
def test_cli_refuses_a_path_that_is_no_sweep_or_run(
    bad: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / bad)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("Error: ") and error.count("\n") == 1


def test_callback_never_fails_the_sweep(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path / "missing")}}})
    SweepReport().on_multirun_end(config=config)
    assert "Sweep report not written" in caplog.text


@pytest.mark.slow
def test_multirun_writes_report_and_cli_rebuilds_it(stripes_root: Path, tmp_path: Path) -> None:
    result = run_module(
        "src.train", "-m", "freeze.trainable=[layer4],[layer9]", "data=folder",
        f"data.root={stripes_root}", *TINY, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = (tmp_path / "outputs" / "train_multirun").iterdir()
    # each job's own record: the failing job did not stop the sweep
    good = json.loads((sweep / "0" / "summary.json").read_text())
    bad = json.loads((sweep / "1" / "summary.json").read_text())
    assert good["status"] == "finished" and 0.0 <= good["best_score"] <= 1.0
    assert good["trainable_params"] < good["total_params"]
    assert good["train_images_per_s"] > 0 and Path(good["best_ckpt"]).is_file()
    assert bad["status"] == "failed" and "freeze.trainable=[layer9]" in bad["overrides"]

    assert (sweep / "val_acc.png").read_bytes().startswith(PNG_SIGNATURE)
    written = (sweep / "report.csv").read_text()
    table = read_csv(sweep / "report.csv")
    assert [(row["job"], row["status"]) for row in table] == [("0", "finished"), ("1", "failed")]
    assert "valid names: conv1" in table[1]["error"]
    markdown = (sweep / "report.md").read_text()
    assert "| 1 | freeze.trainable=[layer9] | failed: freeze.trainable names" in markdown
    assert "| 0/checkpoints/best.ckpt |" in markdown

    (sweep / "report.csv").unlink()
    rebuilt = run_module("src.report", str(sweep), cwd=tmp_path)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert (sweep / "report.csv").read_text() == written
    assert "report.csv" in rebuilt.stdout


@pytest.mark.slow
def test_seeded_comparison_from_the_command_line(stripes_root: Path, tmp_path: Path) -> None:
    """The documented comparison, 2 seeds x 2 learning rates: two groups of two paired runs."""
    result = run_module(
        "src.train", "-m", "seed=0,1", "optimizer.lr=0.001,0.003", "data=folder",
        f"data.root={stripes_root}", 'report.baseline="optimizer.lr=0.003"', *TINY, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = (tmp_path / "outputs" / "train_multirun").iterdir()
    markdown = (sweep / "report.md").read_text()
    section = markdown.split("## Settings compared")[1].split("## Jobs")[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")][1:]
    assert [row.split(" | ")[1:3] for row in rows] == [
        ["optimizer.lr=0.001", "2"],
        ["optimizer.lr=0.003", "2"],
    ]
    assert "difference to group 2, paired by seed" in section
    verdict = rows[0].split(" | ")[6]
    assert verdict in {"better", "worse", "cannot tell apart with 2 seeds"}
    assert "| baseline | - |" in rows[1]
    assert (sweep / "comparison.png").read_bytes().startswith(PNG_SIGNATURE)
    assert '<img src="comparison.png"' in (sweep / "report.html").read_text()
    curve = json.loads((sweep / "0" / "summary.json").read_text())["curve"]
    assert [point["epoch"] for point in curve] == [0, 1] and curve[1]["time_s"] > 0

    rebuilt = run_module("src.report", str(sweep), "--baseline", "optimizer.lr=0.001", cwd=tmp_path)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "difference to group 1, paired by seed" in (sweep / "report.md").read_text()
