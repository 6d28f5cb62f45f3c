"""Smoke tests of the benchmark harness on tiny generated inputs (no benchmark runs here)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from benchmarks import compare, decode, gpu_check, imbalance, models, recipes
from benchmarks.ceiling import autocast_for, ceiling_device
from benchmarks.data import generate_jpegs, make_split
from benchmarks.project import compose_train_config, project_overrides, with_default_callbacks
from benchmarks.timing import RunTimes


def test_split_gives_both_sides_the_same_balanced_files(tmp_path: Path) -> None:
    source = generate_jpegs(tmp_path / "images", 6, 48)
    split = make_split(source, "test", tmp_path / "work", 10, 0, tmp_path / "cache")
    train = sorted(os.listdir(split.root / "train" / "horizontal"))
    val = sorted(os.listdir(split.root / "val" / "horizontal"))
    assert split.classes == ["horizontal", "vertical"]
    assert (len(split.train), len(split.val)) == (8, 2)
    assert len(train) == 4 and len(val) == 1 and not set(train) & set(val)
    assert all((split.root / "train" / "horizontal" / name).is_symlink() for name in train)


def test_compare_runs_end_to_end_and_writes_every_field(tmp_path: Path, capsys) -> None:
    output = tmp_path / "bench.json"
    compare.main(
        [
            "--synthetic", "--model", "resnet18", "--weights", "none", "--image-size", "32",
            "--batch-size", "4", "--reference-batch-size", "2", "--num-images", "16",
            "--epochs", "1", "--workers", "0", "--ceiling-steps", "2",
            "--cache-dir", str(tmp_path / "cache"),
            "--project-overrides", "data.augment.rotation_degrees=10", "--json", str(output),
        ]
    )  # fmt: skip
    report = json.loads(output.read_text())
    assert set(report["environment"]) >= {"date", "command", "cpu", "torch_threads"}
    assert report["settings"]["project_config_overrides"][-1] == "data.augment.rotation_degrees=10"
    # The project's sgd takes 0.001 at batch 4; the reference, at batch 2, 0.001 / sqrt(2).
    assert report["settings"]["reference_batch_size"] == 2
    assert report["settings"]["reference_lr"] == pytest.approx(0.001 / 2**0.5)
    assert report["settings"]["workers"] == report["settings"]["reference_workers"] == 0
    assert list(report["runs"]) == ["reference", "project", "project_defaults", "ceiling"]
    assert set(report["ratios"]) == {
        "project_over_reference",
        "project_defaults_over_reference",
        "project_over_ceiling",
        "project_defaults_over_ceiling",
    }
    for name, run in report["runs"].items():
        assert run["train_images_per_s"] > 0 and run["val_images_per_s"] > 0, name
        assert run["wall_s"] > 0 and run["threads"] == report["environment"]["torch_threads"]
        assert run["val_acc"] is None if name == "ceiling" else 0 <= run["val_acc"] <= 1
    assert report["runs"]["project_defaults"]["train_images"] == report["settings"]["train_images"]
    assert report["runs"]["project"]["train_images"] == report["settings"]["train_images"]
    assert 0 < report["runs"]["project"]["data_wait_fraction"] < 1  # no workers: it all waits
    assert report["runs"]["reference"]["data_wait_fraction"] is None
    assert report["runs"]["project"]["val_images"] == report["settings"]["val_images"]
    for pair in report["ratios"].values():
        assert pair["train"] > 0 and pair["val"] > 0
    table = capsys.readouterr().out
    assert "project/reference" in table and "project/ceiling" in table and "data wait" in table


def test_repeated_rounds_report_the_median(tmp_path: Path) -> None:
    output = tmp_path / "bench.json"
    compare.main(
        [
            "--synthetic", "--model", "resnet18", "--weights", "none", "--image-size", "32",
            "--batch-size", "2", "--num-images", "8", "--runs", "ceiling", "--repeats", "3",
            "--ceiling-steps", "1", "--cache-dir", str(tmp_path / "cache"), "--json", str(output),
        ]
    )  # fmt: skip
    report = json.loads(output.read_text())
    rounds = report["settings"]["train_images_per_s_by_round"]["ceiling"]
    assert len(rounds) == 3 and len(report["settings"]["wall_s_by_round"]["ceiling"]) == 3
    assert report["runs"]["ceiling"]["train_images_per_s"] == sorted(rounds)[1]


def test_decode_times_both_pipelines_on_jpegs(tmp_path: Path) -> None:
    output = tmp_path / "decode.json"
    decode.main(
        [
            "--synthetic", "--num-images", "6", "--image-size", "32", "--repeats", "1",
            "--cache-dir", str(tmp_path / "cache"), "--json", str(output),
        ]
    )  # fmt: skip
    report = json.loads(output.read_text())
    assert report["settings"]["images"] == 6
    assert report["settings"]["source"].startswith("generated")
    for phase in ("train", "val"):
        row = report["results"][phase]
        assert row["reference"] > 0 and row["project"] > 0 and row["project_over_reference"] > 0


def test_ceiling_follows_the_trainer_precision_and_device(tmp_path: Path) -> None:
    cfg = compose_train_config(
        ["trainer.precision=bf16-mixed", "trainer.accelerator=cpu"], tmp_path
    )
    device = ceiling_device(cfg)
    assert device.type == "cpu"
    with autocast_for(cfg, device):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    with autocast_for(compose_train_config([], tmp_path), device):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


def test_reference_loads_with_the_tutorials_workers_unless_told(monkeypatch) -> None:
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(16)), raising=False)
    assert compare.reference_workers(None) == 4  # the tutorial's num_workers=4
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(2)), raising=False)
    assert compare.reference_workers(None) == 2  # at most one per core
    assert compare.reference_workers(0) == 0


@pytest.mark.slow
def test_gpu_check_passes_every_path_in_its_cpu_form(tmp_path: Path, capsys) -> None:
    output = tmp_path / "check.json"
    status = gpu_check.main(
        [
            "--cpu", "--model", "resnet18", "--image-size", "32", "--batch-size", "4",
            "--steps", "3", "--images-per-class", "6", "--source-size", "40",
            "--work-dir", str(tmp_path / "work"), "--json", str(output),
        ]
    )  # fmt: skip
    outcomes = {o["path"]: o for o in json.loads(output.read_text())}
    assert status == 0, [(o["path"], o["error"]) for o in outcomes.values() if not o["passed"]]
    assert {"precision bf16-true", "bf16-mixed, DDP on 2 devices", "evaluate", "predict"} <= set(
        outcomes
    )
    assert "bf16-mixed, decoding on the device" in outcomes
    trained = [o for o in outcomes.values() if o["data_wait"] is not None]
    assert len(trained) == 7 and all(o["images_per_s"] > 0 for o in trained)
    assert "| evaluate | pass |" in capsys.readouterr().out


def test_the_defaults_run_keeps_what_users_run(tmp_path: Path) -> None:
    overrides = project_overrides(tmp_path, "resnet18", "all", 32, 4, 0, 1, None)
    quiet = compose_train_config(overrides, tmp_path)
    assert not quiet.callbacks and not quiet.logger
    defaults = compose_train_config(with_default_callbacks(overrides), tmp_path)
    checks = {"best_checkpoint", "last_checkpoint", "stop_on_nonfinite_loss", "tensorboard_figures"}
    assert checks <= set(defaults.callbacks) and "progress_bar" not in defaults.callbacks
    assert defaults.logger and defaults.trainer.accelerator == "cpu"


@pytest.mark.parametrize(("accelerator", "device"), [("cpu", "cpu"), ("gpu", "cuda")])
def test_the_reference_loop_runs_where_the_project_runs(
    tmp_path: Path, accelerator: str, device: str
) -> None:
    overrides = project_overrides(tmp_path, "resnet18", "all", 32, 4, 0, 1, None)
    cfg = compose_train_config([*overrides, f"trainer.accelerator={accelerator}"], tmp_path)
    assert compare.reference_settings(cfg, weights=None).device == device


@pytest.mark.slow
def test_recipes_table_runs_every_recipe_per_seed_against_the_tutorial_target(
    tmp_path: Path, capsys
) -> None:
    output = tmp_path / "recipes.json"
    report = recipes.main(
        [
            "--synthetic", "--model", "resnet18", "--weights", "none", "--image-size", "32",
            "--batch-size", "4", "--reference-batch-size", "2", "--num-images", "16",
            "--epochs", "2", "--workers", "0", "--seeds", "0", "1",
            "--recipes", "default", "ema", "progressive", "frozen", "frozen_views_4",
            "--cache-dir", str(tmp_path / "cache"), "--json", str(output),
        ]
    )  # fmt: skip
    assert json.loads(output.read_text()) == json.loads(json.dumps(report))
    target = report["target"]
    assert (
        report["reference"]["epoch_val_acc"][-1]
        <= target
        == max(report["reference"]["epoch_val_acc"])
    )
    assert list(report["recipes"]) == ["default", "ema", "progressive", "frozen", "frozen_views_4"]
    for name, result in report["recipes"].items():
        assert result["seeds"] == [0, 1], name
        assert all(0 <= acc <= 1 for acc in result["best_val_acc"])
        assert result["median_wall_s"] > 0
        assert [max(run) for run in result["epoch_val_acc"]] == result["best_val_acc"], name
        assert [len(run) for run in result["epoch_end_s"]] == [2, 2], name
        for accuracy, seconds in zip(
            result["best_val_acc"], result["time_to_target_s"], strict=True
        ):
            assert (seconds is not None) == (accuracy >= target - recipes.SAME_ACCURACY), name
            assert seconds is None or 0 < seconds <= max(result["wall_s"])
    table = capsys.readouterr().out
    assert "| frozen_views_4: freeze=all, 4 cached augmented views per image |" in table
    assert " vs frozen |" in table and " vs default |" in table


def test_time_to_accuracy_is_the_first_epoch_at_the_target() -> None:
    times = RunTimes(epoch_val_acc=[0.5, 0.8, 0.7, 0.9], epoch_end_s=[10.0, 20.0, 30.0, 40.0])
    assert recipes.time_to_reach(times, 0.8) == 20.0
    assert recipes.time_to_reach(times, 0.85) == 40.0
    assert recipes.time_to_reach(times, 0.95) is None
    # 342 of 450 images, logged as float32 by the project, reaches the loop's float64 0.76
    as_logged = RunTimes(epoch_val_acc=[float(torch.tensor(342 / 450))], epoch_end_s=[5.0])
    assert recipes.time_to_reach(as_logged, 342 / 450) == 5.0


def test_models_times_each_backbone_and_gives_ratios_to_the_first(tmp_path: Path, capsys) -> None:
    output = tmp_path / "models.json"
    report = models.main(
        [
            "--models", "torchvision:resnet18", "timm:resnet18", "--image-size", "32",
            "--batch-size", "2", "--steps", "1", "--rounds", "2", "--json", str(output),
        ]
    )  # fmt: skip
    assert json.loads(output.read_text()) == json.loads(json.dumps(report))
    runs = report["runs"]
    assert list(runs) == ["torchvision:resnet18", "timm:resnet18"]
    assert runs["torchvision:resnet18"]["train_ratio"] == 1.0
    for run in runs.values():
        assert len(run["train_images_per_s_each_round"]) == 2 and run["eval_images_per_s"] > 0
    assert "| timm:resnet18 |" in capsys.readouterr().out


def test_imbalance_scores_every_recipe_on_a_balanced_validation_split(tmp_path: Path) -> None:
    source = generate_jpegs(tmp_path / "images", 12, 48)
    report = imbalance.main(
        [
            "--data", str(source), "--weights", "none", "--majority", "8", "--ratio", "4",
            "--val-per-class", "3", "--image-size", "32", "--epochs", "1", "--seeds", "0",
            "--recipes", "none", "class_weights", "--cache-dir", str(tmp_path / "cache"),
        ]
    )  # fmt: skip
    assert report["results"]["split"] == {"train horizontal": 2, "train vertical": 8}
    for name in ("none", "class_weights"):
        scores = report["results"]["recipes"][name]
        assert 0 <= scores["balanced_accuracy"][0] <= 1 and 0 <= scores["macro_f1"][0] <= 1
