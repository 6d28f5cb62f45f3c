"""A timm model through the command line as a user types it: trained with freezing by depth,
layer-wise decay and a warmup, then evaluated (with Grad-CAM over a ViT's tokens or a
ConvNeXt's feature map), exported and predicted on a folder it never saw."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from src.data.sources.synthetic import generate_stripes
from tests.helpers import TINY, run_module

pytestmark = pytest.mark.slow

#: The issue's command, made small: 32 px, two short epochs.
TRAINING = [
    "model=timm",
    "freeze=last_blocks",
    "optimizer.layer_decay=0.75",
    "scheduler.warmup_epochs=1",
    *[option for option in TINY if not option.startswith("model.name=")],
]


@pytest.mark.parametrize("name", ["convnext_atto", "vit_tiny_patch16_224"])
def test_trained_evaluated_exported_and_predicted(
    name: str, stripes_root: Path, tmp_path: Path
) -> None:
    trained = run_module(
        "src.train", f"model.name={name}", *TRAINING, "data=folder", f"data.root={stripes_root}",
        "trainer.limit_train_batches=3", "hydra.run.dir=train", cwd=tmp_path,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-3000:]
    log = (tmp_path / "train" / "train.log").read_text()
    assert f"Input of {name} (timm): data.image_size=32, data.crop_pct=" in log
    lrs = (tmp_path / "train" / "csv" / "metrics.csv").read_text().splitlines()[0]
    assert "lr-SGD/head" in lrs and lrs.count("lr-SGD/") == 3  # the head and 2 decayed blocks

    unseen = generate_stripes(tmp_path / "unseen", 6, 40, seed=11)
    ckpt = "ckpt_path=train/checkpoints/best.ckpt"
    evaluated = run_module(
        "src.evaluate", ckpt, f"data.root={unseen}", "tta=flip", "hydra.run.dir=eval", cwd=tmp_path
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["num_images"] == 12 and metrics["gradcam"].startswith("on ")
    assert (tmp_path / "eval" / "top_losses.png").is_file()

    exported = run_module("src.export", ckpt, "output=export/model.onnx", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr[-3000:]
    served = json.loads((tmp_path / "export" / "model.json").read_text())
    assert served["input"]["size"] == [32, 32] and served["parity"]["images"] > 0

    from_file = run_module(
        "src.predict", "model_file=export/model.onnx", f"input={unseen}", "hydra.run.dir=p1",
        cwd=tmp_path,
    )  # fmt: skip
    from_ckpt = run_module(
        "src.predict", ckpt, f"input={unseen}", "gradcam=true", "hydra.run.dir=p2", cwd=tmp_path
    )
    assert from_file.returncode == 0 and from_ckpt.returncode == 0, from_ckpt.stderr[-3000:]
    rows = [
        [
            row
            for row in csv.DictReader((tmp_path / run / "predictions.csv").open())
            if row["prediction"]
        ]
        for run in ("p1", "p2")
    ]  # the generator's hidden marker file gets a "skipped" row in both
    assert len(rows[0]) == len(rows[1]) == 12
    assert [r["prediction"] for r in rows[0]] == [r["prediction"] for r in rows[1]]
    assert len(list((tmp_path / "p2" / "gradcam").glob("*.png"))) == 12
