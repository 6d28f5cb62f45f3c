"""task=multilabel: sigmoid outputs and binary cross-entropy, MixUp / CutMix of multi-hot
targets, per-class thresholds chosen on validation and used by evaluate, predict and the exported
file; trained through the command line on generated shapes to a validation mAP of at least 0.9."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from torch.nn import functional

from src.data.transforms import mix_multi_hot
from src.models.losses import ClassificationLoss
from src.train import train
from tests.helpers import TINY, run_module
from tests.helpers.labelled_shapes import SHAPES, write_shapes_csv


def test_the_loss_is_binary_cross_entropy_of_smoothed_targets() -> None:
    logits = torch.tensor([[2.0, -1.0, 0.5]])
    targets = torch.tensor([[1.0, 0.0, 1.0]])
    smoothed = torch.tensor([[0.95, 0.05, 0.95]])  # 0.1 of smoothing moves them towards 1/2
    expected = functional.binary_cross_entropy(logits.sigmoid(), smoothed)
    loss = ClassificationLoss("multilabel", label_smoothing=0.1)(logits, targets)
    assert loss == pytest.approx(float(expected), rel=1e-6)


@pytest.mark.parametrize(("mixup", "cutmix"), [(1.0, 0.0), (0.0, 1.0)])
def test_mixing_mixes_multi_hot_targets_as_the_pixels(mixup: float, cutmix: float) -> None:
    torch.manual_seed(0)
    images = torch.stack([torch.full((3, 16, 16), 0, dtype=torch.uint8),
                          torch.full((3, 16, 16), 200, dtype=torch.uint8)])  # fmt: skip
    targets = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    mixed, mixed_targets = mix_multi_hot(images, targets, mixup, cutmix)
    # the share of image 0's own pixels is the share of its own targets
    own = 1 - mixed[0].float().mean() / 200
    assert mixed_targets[0] == pytest.approx(own * targets[0] + (1 - own) * targets[1], abs=0.01)
    assert mixed.dtype == torch.uint8 and torch.all(mixed_targets.sum(dim=1) > 0)


def write_multilabel_csv(root: Path) -> Path:
    return write_shapes_csv(root, 200, size=32, seed=0)


@pytest.mark.slow
def test_shapes_train_to_a_validation_map_of_0_9_and_serve_their_thresholds(
    tmp_path: Path,
) -> None:
    labels = write_multilabel_csv(tmp_path / "shapes")
    common = ["data.label_column=labels", "data.label_separator=' '"]
    trained = run_module(
        "src.train", "data=csv", f"data.csv={labels}", *common, "task=multilabel",
        "model.name=resnet18", "model.pretrained=false", "data.image_size=32",
        "data.num_workers=0", "trainer=cpu", "trainer.max_epochs=6", "optimizer=adamw",
        "scheduler=cosine", "data.augment.rotation_degrees=0", "hydra.run.dir=train",
        cwd=tmp_path,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-3000:]
    summary = json.loads((tmp_path / "train" / "summary.json").read_text())
    assert summary["monitor"] == "val/map" and summary["best_score"] >= 0.9
    ckpt = torch.load(tmp_path / "train/checkpoints/best.ckpt", weights_only=True)
    thresholds = ckpt["state_dict"]["thresholds"].tolist()
    assert ckpt["hyper_parameters"]["task"] == "multilabel" and len(thresholds) == 3
    report = json.loads((tmp_path / "train/evaluation/metrics.json").read_text())
    assert report["mean_average_precision"] == pytest.approx(summary["best_score"], abs=1e-4)
    assert report["thresholds"] == pytest.approx(thresholds)

    unseen = write_shapes_csv(tmp_path / "unseen", 30, size=32, seed=5)
    best = "ckpt_path=train/checkpoints/best.ckpt"
    evaluated = run_module(
        "src.evaluate", best, f"data.csv={unseen}", "hydra.run.dir=eval", cwd=tmp_path
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["num_images"] == 30 and metrics["mean_average_precision"] >= 0.8
    for row in metrics["per_class"].values():
        assert row["true_positives"] + row["false_negatives"] == row["support"]
    assert (tmp_path / "eval" / "pr_curves.png").is_file()

    exported = run_module("src.export", best, "output=export/model.onnx", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr[-3000:]
    served = json.loads((tmp_path / "export" / "model.json").read_text())
    assert served["task"] == "multilabel" and served["thresholds"] == pytest.approx(thresholds)
    assert served["output"]["name"] == "probabilities"

    images = tmp_path / "unseen" / "images"
    runs = {}
    for run, model in (("p_onnx", "model_file=export/model.onnx"), ("p_ckpt", best)):
        result = run_module("src.predict", model, f"input={images}", f"hydra.run.dir={run}",
                            cwd=tmp_path)  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        runs[run] = list(csv.DictReader((tmp_path / run / "predictions.csv").open()))
    assert len(runs["p_onnx"]) == len(runs["p_ckpt"]) == 30
    names = list(SHAPES)
    for onnx_row, ckpt_row in zip(runs["p_onnx"], runs["p_ckpt"], strict=True):
        probabilities = [float(ckpt_row[f"p_{name}"]) for name in names]
        above = [n for n, p, t in zip(names, probabilities, thresholds, strict=True) if p >= t]
        assert ckpt_row["prediction"] == ";".join(above)  # the set above the thresholds
        assert onnx_row["prediction"] == ckpt_row["prediction"]
        for name in names:
            assert float(onnx_row[f"p_{name}"]) == pytest.approx(
                float(ckpt_row[f"p_{name}"]), abs=1e-3
            )


@pytest.mark.slow
def test_multi_label_trains_on_cached_features(make_config, tmp_path: Path) -> None:
    labels = write_multilabel_csv(tmp_path / "shapes")
    overrides = ["data=csv", f"data.csv={labels}", "data.label_column=labels",
                 "data.label_separator=' '", "task=multilabel", "freeze=all", *TINY]  # fmt: skip
    assert 0.0 <= train(make_config(overrides)) <= 1.0
    assert list((tmp_path / "data" / ".cache" / "features").glob("*.pt"))
