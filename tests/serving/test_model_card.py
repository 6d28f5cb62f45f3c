"""The model card of a run in a seeded sweep gives each metric's interval over the seeds; an
uncalibrated model's card says so."""

from __future__ import annotations

from pathlib import Path

import torch

from src.evaluation.intervals import mean_interval
from src.serving.model_card import CardFacts, model_card
from src.serving.onnx_export import serving_metadata
from tests.helpers import build_classifier


def facts(temperature: float, seeds: list[float]) -> CardFacts:
    model = build_classifier(image_size=32, seed=0).eval()
    model.set_temperature(torch.tensor([temperature]))
    metadata = serving_metadata(
        list(model.class_names), 32, 0.875, [0.5] * 3, [0.25] * 3, temperature=temperature
    )
    metadata["input"]["name"] = "images"
    metadata["parity"] = {"images": 4, "max_logit_difference": 1e-6}
    report = {"num_images": 20, "accuracy": 0.85, "loss": 0.4, "macro_f1": 0.84}
    runs = [Path(f"sweep/{index}") for index in range(len(seeds))]
    return CardFacts(
        ckpt_path=Path("run/checkpoints/best.ckpt"),
        onnx_file=Path("export/model.onnx"),
        model=model,
        trained_on=None,
        metadata=metadata,
        training={"epoch": 3, "global_step": 30, "weight_averaging": False},
        report=report,
        report_path=Path("run/evaluation/metrics.json"),
        intervals={"accuracy": mean_interval(seeds)} if seeds else {},
        seed_runs=runs if seeds else [],
    )


def test_a_seeded_sweeps_run_gets_intervals() -> None:
    seeds = [0.85, 0.80, 0.90]
    card = model_card(facts(1.7, seeds))
    interval = mean_interval(seeds)
    assert f"| accuracy | 0.8500 | {interval.text()} |" in card
    assert "| loss (cross-entropy) | 0.4000 | - |" in card  # no interval where none was given
    assert "`0`, `1`, `2`" in card and "temperature 1.7000" in card
    assert "Other seeds" not in card  # the spread between runs was measured


def test_an_uncalibrated_models_card_says_so() -> None:
    card = model_card(facts(1.0, []))
    assert "Temperature 1: the probabilities are the network's as trained" in card
    assert "over seeds" not in card and "Other seeds: one training run" in card
