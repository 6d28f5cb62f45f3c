"""End to end: train, resume from a checkpoint, evaluate and predict, and the errors users see."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import IMAGES, EventAccumulator

from src.callbacks.checkpoints import find_resume_checkpoint
from src.data.samples import find_image_files
from src.evaluate import evaluate
from src.models.checkpoint import load_classifier
from src.serving.classifiers import CheckpointClassifier
from src.serving.prediction import predict_files
from src.train import train
from src.utils.errors import UserError
from tests.helpers import run_module
from tests.helpers.image_factory import unusable_names, write_broken_files

pytestmark = pytest.mark.slow


@pytest.fixture
def trained_run(make_config, folder_overrides) -> Path:
    """A finished two-epoch run; returns its output dir."""
    cfg = make_config([*folder_overrides, "scheduler.scheduler.step_size=1"])
    train(cfg)
    return Path(cfg.paths.output_dir)


def test_run_dir_holds_config_outputs(trained_run: Path) -> None:
    assert {"best.ckpt", "last.ckpt"} <= {p.name for p in (trained_run / "checkpoints").iterdir()}
    assert list((trained_run / "tensorboard").glob("events.out.tfevents.*"))
    metrics = (trained_run / "csv" / "metrics.csv").read_text()
    for name in ("train/loss", "train/acc", "val/loss", "val/acc", "lr-SGD"):
        assert name in metrics
    assert (trained_run / "train_files.txt").is_file()


def test_the_best_checkpoints_report_is_in_the_run_dir_and_in_tensorboard(
    trained_run: Path,
) -> None:
    best = trained_run / "checkpoints" / "best.ckpt"
    report = json.loads((trained_run / "evaluation" / "metrics.json").read_text())
    assert report["ckpt_path"] == str(best)
    assert report["accuracy"] == pytest.approx(best_score(best))
    assert (trained_run / "evaluation" / "top_losses.png").is_file()
    events = EventAccumulator(str(trained_run / "tensorboard"), size_guidance={IMAGES: 0})
    events.Reload()
    assert "best_checkpoint/top_losses" in events.Tags()[IMAGES]
    assert "best_checkpoint/confusion_matrix" in events.Tags()[IMAGES]
    logged = events.Scalars("best_checkpoint/accuracy")[-1].value
    assert logged == pytest.approx(report["accuracy"])


def test_resume_continues_epochs_optimizer_and_scheduler(
    trained_run, make_config, folder_overrides, tmp_path
) -> None:
    last = trained_run / "checkpoints" / "last.ckpt"
    before = torch.load(last, weights_only=True)
    assert (before["epoch"], before["global_step"]) == (1, 4)
    cfg = make_config(
        [
            *folder_overrides,
            "scheduler.scheduler.step_size=1",
            "trainer.max_epochs=3",
            f"ckpt_path={last}",
            f"paths.output_dir={tmp_path / 'resumed'}",
        ]
    )
    train(cfg)
    after = torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=True)
    assert (after["epoch"], after["global_step"]) == (2, 6)
    assert after["lr_schedulers"][0]["last_epoch"] == 3
    assert after["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(0.001 * 0.1**3)
    rows = list(csv.DictReader((tmp_path / "resumed" / "csv" / "metrics.csv").open()))
    assert {row["epoch"] for row in rows if row.get("val/acc")} == {"2"}
    # the run it resumed from is untouched
    assert torch.load(last, weights_only=True)["global_step"] == 4


def test_a_new_run_never_overwrites_checkpoints(trained_run, make_config, folder_overrides) -> None:
    cfg = make_config([*folder_overrides, f"paths.output_dir={trained_run}"])
    with pytest.raises(Exception, match="already holds checkpoints"):
        train(cfg)


def best_score(checkpoint: Path) -> float:
    """The monitored val/acc stored in the best checkpoint."""
    callbacks = torch.load(checkpoint, weights_only=True)["callbacks"]
    return float(next(v["best_model_score"] for k, v in callbacks.items() if "Checkpoint" in k))


def test_evaluate_reproduces_the_best_score_on_the_same_split(trained_run, make_config) -> None:
    best = trained_run / "checkpoints" / "best.ckpt"
    metrics = evaluate(make_config([f"ckpt_path={best}"], config_name="evaluate"))
    assert metrics["accuracy"] == pytest.approx(best_score(best))
    assert sum(map(sum, metrics["confusion_matrix"])) == metrics["num_images"]


def test_predict_rows_for_good_and_bad_files(trained_run, stripes_root, tmp_path) -> None:
    folder = tmp_path / "to_predict"
    for image in sorted((stripes_root / "vertical").glob("*.png"))[:3]:
        (folder / image.name).parent.mkdir(parents=True, exist_ok=True)
        (folder / image.name).write_bytes(image.read_bytes())
    expected = write_broken_files(folder / "odd")
    classifier = CheckpointClassifier(trained_run / "checkpoints" / "best.ckpt", device="cpu")
    predictions = predict_files(find_image_files(folder, "input"), classifier, batch_size=4)
    failed = {p.path.name for p in predictions if p.error}
    assert failed == unusable_names(expected) - {"Thumbs.db"}  # Thumbs.db has no image suffix
    good = [p for p in predictions if not p.error]
    assert good and all(p.label in {"horizontal", "vertical"} for p in good)
    assert all(sum(p.probabilities) == pytest.approx(1.0, abs=1e-5) for p in good)

    # Entries a user could take for images, or that predict passes over: each gets a row too.
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (folder / ".thumbnails").mkdir()
    (folder / ".thumbnails" / "a.jpg").write_bytes(b"cached thumbnail")
    (folder / "gone.jpg").symlink_to(folder / "nowhere.jpg")
    (folder / "notes.txt").write_text("not an image")
    skipped = {
        ".DS_Store": "skipped: hidden",
        ".thumbnails": "skipped: hidden",
        "gone.jpg": "skipped: broken link",
        "notes.txt": "skipped: not an image file (suffix)",
        "Thumbs.db": "skipped: not an image file (suffix)",
    }
    result = run_module(
        "src.predict",
        f"ckpt_path={trained_run / 'checkpoints' / 'best.ckpt'}",
        f"input={folder}",
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stderr
    rows = list(csv.DictReader(next((tmp_path / "outputs").rglob("predictions.csv")).open()))
    assert len(rows) == len(predictions) + len(skipped)
    errors = {row["path"].rsplit("/", 1)[-1]: row["error"] for row in rows if row["error"]}
    assert {name for name, error in errors.items() if not error.startswith("skipped")} == failed
    assert {name: error for name, error in errors.items() if error.startswith("skipped")} == skipped
    summary = f"{len(good)} predicted, {len(failed)} failed, {len(skipped)} skipped"
    assert summary in result.stdout + result.stderr


def test_cli_errors_are_one_clear_line(tmp_path: Path) -> None:
    bad_group = run_module("src.train", "freeze=bogus", cwd=tmp_path)
    assert bad_group.returncode != 0
    assert "freeze/bogus" in bad_group.stderr and "layer3_4" in bad_group.stderr

    unknown_key = run_module("src.train", "data.batchsize=4", cwd=tmp_path)
    assert unknown_key.returncode != 0
    assert "Could not override 'data.batchsize'" in unknown_key.stderr

    missing = run_module(
        "src.train", "data=folder", f"data.root={tmp_path / 'nowhere'}", cwd=tmp_path
    )
    assert missing.returncode == 2
    error_lines = [line for line in missing.stderr.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1 and "nowhere does not exist" in error_lines[0]
    assert "Traceback" not in missing.stderr

    bad_layer = run_module(
        "src.train", "model.pretrained=false", "freeze.trainable=[layer9]", "data=synthetic",
        "data.images_per_class=4", cwd=tmp_path,
    )  # fmt: skip
    assert bad_layer.returncode == 2
    assert "valid names: conv1, bn1" in bad_layer.stderr


def test_resume_finds_the_last_checkpoint_of_a_run_dir(trained_run, tmp_path) -> None:
    last = trained_run / "checkpoints" / "last.ckpt"
    assert find_resume_checkpoint(str(trained_run), tmp_path, tmp_path / "new") == last
    assert find_resume_checkpoint("latest", trained_run.parent, tmp_path / "new") == last
    # the run being started is never its own resume point
    with pytest.raises(UserError, match="resume=latest found no"):
        find_resume_checkpoint("latest", trained_run.parent, trained_run)
    with pytest.raises(UserError, match="does not exist"):
        find_resume_checkpoint(str(tmp_path), tmp_path, tmp_path / "new")


def test_compiled_network_trains_and_keeps_plain_checkpoint_names(
    make_config, folder_overrides
) -> None:
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    cfg = make_config([*folder_overrides, "model.compile=true", "trainer.max_epochs=1"])
    train(cfg)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0
    best = Path(cfg.paths.output_dir) / "checkpoints" / "best.ckpt"
    names = torch.load(best, weights_only=True)["state_dict"]
    assert names and not any("_orig_mod" in name for name in names)
    load_classifier(best)
