"""After training, through the command line as the README writes it: evaluate on a labelled
folder the model never saw, export to ONNX, predict with the exported file."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest
import torch

from src.data.sources.synthetic import generate_stripes
from tests.helpers import TINY, run_module
from tests.helpers.image_factory import USABLE, write_broken_files

pytestmark = pytest.mark.slow

PER_CLASS = 5


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, stripes_root: Path) -> Path:
    """A trained checkpoint (`train/checkpoints/best.ckpt`) and a separate labelled folder
    (`test/`, other images than training's, broken files among them)."""
    work = tmp_path_factory.mktemp("evaluate")
    trained = run_module(
        "src.train",
        "data=folder",
        f"data.root={stripes_root}",
        *TINY,
        "hydra.run.dir=train",
        cwd=work,
    )
    assert trained.returncode == 0, trained.stderr[-2000:]
    generate_stripes(work / "test", PER_CLASS, 40, seed=7)
    return work


def evaluate(work: Path, run: str, *args: str):
    result = run_module(
        "src.evaluate",
        "ckpt_path=train/checkpoints/best.ckpt",
        *args,
        f"hydra.run.dir={run}",
        cwd=work,
    )
    metrics_file = work / run / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else None
    return result, metrics


def error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    return lines[0]


def test_every_usable_image_of_a_test_folder_is_scored(workdir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "test"
    shutil.copytree(workdir / "test", folder)
    expected = write_broken_files(folder / "vertical")
    usable = sum(1 for expectation in expected.values() if expectation == USABLE)
    unusable = len(expected) - usable

    result, metrics = evaluate(workdir, "eval_root", f"data.root={folder}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert metrics["num_images"] == 2 * PER_CLASS + usable  # no split: all of them
    assert metrics["num_excluded"] == unusable
    assert sum(map(sum, metrics["confusion_matrix"])) == metrics["num_images"]
    excluded = (workdir / "eval_root" / "excluded_files.txt").read_text().splitlines()
    assert len(excluded) == unusable

    # The report: per-class scores that add up, calibration, curves, the worst images.
    run = workdir / "eval_root"
    per_class = metrics["per_class"]
    assert sum(row["support"] for row in per_class.values()) == metrics["num_images"]
    for row in per_class.values():
        assert 0 <= row["precision"] <= 1 and 0 <= row["recall"] <= 1
        assert 0 <= row["roc_auc"] <= 1 and 0 <= row["average_precision"] <= 1
    assert 0 <= metrics["expected_calibration_error"] <= 1
    assert 0 <= metrics["macro_f1"] <= 1 and 0 <= metrics["weighted_roc_auc"] <= 1
    worst = metrics["top_losses"]
    assert [row["loss"] for row in worst] == sorted((row["loss"] for row in worst), reverse=True)
    for name in ("confusion_matrix", "roc_pr_curves", "reliability", "top_losses"):
        assert (run / f"{name}.png").read_bytes().startswith(b"\x89PNG"), name
    report = (run / "report.md").read_text()
    assert "| horizontal | " in report and "![top_losses](top_losses.png)" in report

    # The same with a whole data option, as conf/evaluate.yaml documents it.
    result, with_option = evaluate(workdir, "eval_option", "data=folder", f"data.root={folder}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert with_option["num_images"] == metrics["num_images"]
    assert with_option["accuracy"] == pytest.approx(metrics["accuracy"])

    # With test-time augmentation: the same images, accuracy without and with it.
    result, tta = evaluate(workdir, "eval_tta", f"data.root={folder}", "tta=flip")
    assert result.returncode == 0, result.stderr[-2000:]
    assert tta["num_images"] == metrics["num_images"]
    assert tta["tta"]["accuracy_without"] == pytest.approx(metrics["accuracy"])
    assert tta["tta"]["accuracy_with"] == pytest.approx(tta["accuracy"])
    assert "without / with tta=flip" in (workdir / "eval_tta" / "report.md").read_text()

    # Only the validation split that training would make of it, when asked.
    result, split = evaluate(workdir, "eval_split", f"data.root={folder}", "split=true")
    assert result.returncode == 0, result.stderr[-2000:]
    assert 0 < split["num_images"] < metrics["num_images"]


def test_without_data_the_checkpoints_own_split_is_scored(workdir: Path) -> None:
    result, metrics = evaluate(workdir, "eval_own")
    assert result.returncode == 0, result.stderr[-2000:]
    val_files = (workdir / "train" / "val_files.txt").read_text().splitlines()
    assert metrics["num_images"] == len(val_files)


def test_class_folders_must_match_the_checkpoints_classes(workdir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(workdir / "test" / "horizontal", other / "horizontal")
    shutil.copytree(workdir / "test" / "vertical", other / "diagonal")
    line = error_line(evaluate(workdir, "eval_other", f"data.root={other}")[0])
    assert "['diagonal', 'horizontal']" in line and "['horizontal', 'vertical']" in line

    subset = tmp_path / "subset"
    shutil.copytree(workdir / "test" / "horizontal", subset / "horizontal")
    line = error_line(evaluate(workdir, "eval_subset", f"data.root={subset}")[0])
    assert "class_subset=true" in line
    allowed = ("eval_subset_ok", f"data.root={subset}", "class_subset=true")
    result, metrics = evaluate(workdir, *allowed)
    assert result.returncode == 0, result.stderr[-2000:]
    assert metrics["num_images"] == PER_CLASS
    assert metrics["per_class_accuracy"]["vertical"] is None  # no such images: no score


def test_several_devices_score_every_image_once(workdir: Path) -> None:
    """`trainer=ddp` would shard (and pad) the images over processes: evaluate uses one."""
    result, metrics = evaluate(
        workdir, "eval_ddp", "data.root=test", "trainer=ddp", "trainer.accelerator=cpu"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert metrics["num_images"] == 2 * PER_CLASS


def predictions(run: Path) -> dict[str, dict[str, str]]:
    """The rows of image files, by path (rows of skipped entries, such as the generator's hidden
    marker file, left out)."""
    with (run / "predictions.csv").open(newline="") as handle:
        rows = csv.DictReader(handle)
        return {row["path"]: row for row in rows if not row["error"].startswith("skipped")}


def test_evaluate_and_predict_give_the_same_probabilities(workdir: Path) -> None:
    """Both score in float32, whatever trainer.precision evaluate is given (bf16-true casts the
    weights, which the CSV's probabilities would not share): the report's probability of an
    image is the CSV's."""
    predicted = run_module(
        "src.predict", "ckpt_path=train/checkpoints/best.ckpt", "input=test",
        "hydra.run.dir=predict_test", cwd=workdir,
    )  # fmt: skip
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    csv_rows = {
        (Path(path).parent.name, Path(path).name): float(row["probability"])
        for path, row in predictions(workdir / "predict_test").items()
    }
    for precision in ("32-true", "bf16-true"):
        run = f"eval_{precision}"
        result, metrics = evaluate(workdir, run, "data.root=test", f"trainer.precision={precision}")
        assert result.returncode == 0, result.stderr[-2000:]
        assert metrics["num_images"] == 2 * PER_CLASS
        reported = {(row["true"], row["file"]): row["probability"] for row in metrics["top_losses"]}
        assert len(reported) == 2 * PER_CLASS
        for image, probability in reported.items():
            assert csv_rows[image] == pytest.approx(probability, abs=1e-6), (precision, image)


@pytest.fixture(scope="module")
def exported(workdir: Path) -> Path:
    """`python -m src.export` of the trained (and calibrated) checkpoint: its model.onnx."""
    result = run_module(
        "src.export", "ckpt_path=train/checkpoints/best.ckpt", "hydra.run.dir=export", cwd=workdir
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir / "export" / "model.onnx"


def checkpoint_temperature(path: Path) -> float:
    return float(
        torch.load(path, map_location="cpu", weights_only=True)["state_dict"]["temperature"]
    )


def test_exported_model_predicts_what_the_checkpoint_predicts(
    workdir: Path, exported: Path, tmp_path: Path
) -> None:
    onnx_file = exported
    metadata = json.loads(onnx_file.with_suffix(".json").read_text())
    assert metadata["class_names"] == ["horizontal", "vertical"]
    assert metadata["input"]["size"] == [32, 32] and metadata["normalisation_in_graph"]
    assert metadata["parity"]["images"] > 0 and metadata["parity"]["max_logit_difference"] < 1e-3
    # The temperature that training fitted is the checkpoint's and the graph's.
    temperature = checkpoint_temperature(workdir / "train" / "checkpoints" / "best.ckpt")
    assert temperature != 1.0 and metadata["temperature"] == pytest.approx(temperature)

    folder = tmp_path / "mixed"
    shutil.copytree(workdir / "test", folder)
    (folder / "vertical" / "broken.jpg").write_bytes(b"not a jpeg")
    runs = {}
    for name, model in (
        ("onnx", f"model_file={onnx_file}"),
        ("ckpt", "ckpt_path=train/checkpoints/best.ckpt"),
    ):
        result = run_module(
            "src.predict",
            model,
            f"input={folder}",
            f"hydra.run.dir=predict_{name}",
            cwd=workdir,
            python_options=("-X", "importtime"),  # every module loaded, on stderr
        )
        assert result.returncode == 1, result.stderr[-3000:]  # the broken file
        runs[name] = predictions(workdir / f"predict_{name}")
        loaded_lightning = re.search(r"\|\s+lightning$", result.stderr, re.MULTILINE)
        assert bool(loaded_lightning) == (name == "ckpt")  # the ONNX path runs without it
    assert runs["onnx"].keys() == runs["ckpt"].keys() and len(runs["onnx"]) == 2 * PER_CLASS + 1
    for path, row in runs["onnx"].items():
        twin = runs["ckpt"][path]
        assert (row["prediction"], bool(row["error"])) == (twin["prediction"], bool(twin["error"]))
        if not row["error"]:
            assert float(row["probability"]) == pytest.approx(float(twin["probability"]), abs=1e-4)

    both = run_module(
        "src.predict", f"model_file={onnx_file}", "ckpt_path=x.ckpt", f"input={folder}", cwd=workdir
    )
    assert "give either ckpt_path" in error_line(both)


def test_predict_with_workers_tta_and_gradcam(workdir: Path) -> None:
    """Decoding in two loader processes, flip TTA and a Grad-CAM image per prediction."""
    run = workdir / "predict_gradcam"
    result = run_module(
        "src.predict",
        "ckpt_path=train/checkpoints/best.ckpt",
        "input=test",
        "num_workers=2",
        "tta=flip",
        "gradcam=true",
        f"hydra.run.dir={run}",
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = predictions(run)
    assert len(rows) == 2 * PER_CLASS and not any(row["error"] for row in rows.values())
    overlays = sorted((run / "gradcam").glob("*.png"))
    assert len(overlays) == len(rows)
    assert all(path.read_bytes().startswith(b"\x89PNG") for path in overlays)


def test_inference_benchmark_compares_eager_and_onnxruntime(workdir: Path) -> None:
    result = run_module(
        "benchmarks.inference",
        "--ckpt=train/checkpoints/best.ckpt",
        "--images=test",
        "--num-images=4",
        "--batch-sizes",
        "1",
        "2",
        "--repeats=1",
        "--json=inference.json",
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((workdir / "inference.json").read_text())
    assert [row["batch_size"] for row in report["results"]] == [1, 2]
    assert all(row["pytorch_eager"] > 0 and row["onnxruntime"] > 0 for row in report["results"])
    assert "| 2 |" in result.stdout


def test_training_calibrates_and_evaluate_calibrate_true_reports_before_and_after(
    workdir: Path,
) -> None:
    best = workdir / "train" / "checkpoints" / "best.ckpt"
    trained = json.loads((workdir / "train" / "evaluation" / "metrics.json").read_text())
    calibration = trained["calibration"]
    assert calibration["temperature"] == pytest.approx(checkpoint_temperature(best))
    # Fitted on these very images: the loss cannot be higher than at temperature 1.
    assert calibration["after"]["loss"] <= calibration["before"]["loss"] + 1e-6
    assert calibration["after"]["loss"] == pytest.approx(trained["loss"])

    untouched = best.read_bytes()
    result, metrics = evaluate(workdir, "eval_calibrated", "data.root=test", "calibrate=true")
    assert result.returncode == 0, result.stderr[-2000:]
    assert best.read_bytes() == untouched  # the user's checkpoint is not rewritten
    run = workdir / "eval_calibrated"
    fitted = metrics["calibration"]
    assert fitted["temperature"] == pytest.approx(calibration["temperature"], rel=1e-3)
    assert "validation split" in fitted["fitted_on"]
    assert {"before", "after"} <= fitted.keys()
    assert fitted["after"]["loss"] == pytest.approx(metrics["loss"])
    assert fitted["before"]["temperature"] == 1.0
    assert checkpoint_temperature(run / "calibrated.ckpt") == pytest.approx(fitted["temperature"])
    assert fitted["checkpoint"] == str(run / "calibrated.ckpt")
    # The risk-coverage curve: answering everything is the accuracy.
    assert metrics["risk_coverage"][-1]["coverage"] == 1.0
    assert metrics["risk_coverage"][-1]["accuracy"] == pytest.approx(metrics["accuracy"])
    for name in ("reliability", "risk_coverage"):
        assert (run / f"{name}.png").read_bytes().startswith(b"\x89PNG"), name
    report = (run / "report.md").read_text()
    assert "## Calibration" in report and "## Risk and coverage" in report


def test_predict_abstains_below_a_confidence_or_a_target_precision(
    workdir: Path, exported: Path
) -> None:
    runs = {}
    for name, args in (
        ("min_confidence", ("ckpt_path=train/checkpoints/best.ckpt", "min_confidence=0.6")),
        ("ckpt", ("ckpt_path=train/checkpoints/best.ckpt", "target_precision=0.5")),
        ("onnx", (f"model_file={exported}", "target_precision=0.5")),
    ):
        result = run_module(
            "src.predict", *args, "input=test", f"hydra.run.dir=abstain_{name}", cwd=workdir
        )
        assert result.returncode == 0, result.stderr[-3000:]
        run = workdir / f"abstain_{name}"
        runs[name] = json.loads((run / "abstention.json").read_text()), predictions(run)
    for abstention, rows in runs.values():
        threshold = abstention["threshold"]
        for row in rows.values():
            unsure = float(row["probability"]) < threshold
            assert (row["prediction"] == "uncertain") == unsure, row
        uncertain = sum(row["prediction"] == "uncertain" for row in rows.values())
        assert (abstention["uncertain"], abstention["answered"]) == (
            uncertain,
            len(rows) - uncertain,
        )
    assert runs["min_confidence"][0]["threshold"] == 0.6
    val_files = (workdir / "train" / "val_files.txt").read_text().splitlines()
    chosen = runs["ckpt"][0]
    assert chosen["on_validation"]["images"] == len(val_files)
    assert chosen["on_validation"]["precision"] >= 0.5
    # The exported file chose the same threshold, on the answers export kept in model.json.
    assert runs["onnx"][0]["threshold"] == pytest.approx(chosen["threshold"], abs=1e-4)

    both = run_module(
        "src.predict",
        "ckpt_path=train/checkpoints/best.ckpt",
        "input=test",
        "min_confidence=0.6",
        "target_precision=0.9",
        cwd=workdir,
    )
    assert "not both" in error_line(both)


def card_cell(card: str, label: str) -> str:
    """The value of the row `label` of a table in MODEL_CARD.md."""
    match = re.search(rf"^\| {re.escape(label)} \| ([^|]+) \|", card, re.MULTILINE)
    assert match, label
    return match.group(1).strip()


def test_the_model_card_gives_the_reports_figures(workdir: Path, exported: Path) -> None:
    card = (exported.parent / "MODEL_CARD.md").read_text()
    metrics = json.loads((workdir / "train" / "evaluation" / "metrics.json").read_text())
    for key, label in (
        ("accuracy", "accuracy"),
        ("loss", "loss (cross-entropy)"),
        ("macro_f1", "F1, macro average"),
        ("expected_calibration_error", "expected calibration error"),
    ):
        assert float(card_cell(card, label)) == pytest.approx(metrics[key], abs=5e-5), key
    calibration = metrics["calibration"]
    for side, label in (("before", "before (temperature 1)"), ("after", "after")):
        error = calibration[side]["expected_calibration_error"]
        assert float(card_cell(card, label)) == pytest.approx(error, abs=5e-5)
    assert f"temperature {calibration['temperature']:.4f}" in card
    # The classes' training counts are those of the run's file list.
    train_files = (workdir / "train" / "train_files.txt").read_text().splitlines()
    for name in ("horizontal", "vertical"):
        count = sum(line.endswith(f"\t{name}") for line in train_files)
        assert card_cell(card, name) == str(count), name
    assert f"python -m src.predict model_file={exported}" in card
    assert "## Not evaluated on" in card
