"""MODEL_CARD.md beside every exported model: what it is, what it was trained and checked on, how
far its probabilities can be trusted, how to run it, and what it was not evaluated on. Every
figure comes from the checkpoint, its run dir (file lists, config, summary) and its evaluation
report (metrics.json); nothing is written by hand."""

from __future__ import annotations

import datetime
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from src.evaluation.intervals import Interval
from src.evaluation.selective import threshold_for_precision
from src.models.tasks import MULTILABEL
from src.utils.markdown import markdown_table

CARD_FILE = "MODEL_CARD.md"
#: The headline metrics of each task's card, with their labels (metrics.json keys).
METRICS = {
    "multiclass": (
        ("accuracy", "accuracy"),
        ("loss", "loss (cross-entropy)"),
        ("macro_f1", "F1, macro average"),
        ("macro_roc_auc", "ROC-AUC, one vs rest, macro"),
        ("expected_calibration_error", "expected calibration error"),
    ),
    "multilabel": (
        ("mean_average_precision", "mean average precision (macro)"),
        ("f1_macro", "F1, macro average"),
        ("exact_match", "exact match"),
        ("loss", "loss (binary cross-entropy)"),
        ("expected_calibration_error", "expected calibration error"),
    ),
}
#: Target precisions whose validation coverage the card lists.
PRECISIONS = (0.9, 0.95, 0.99)


@dataclass
class ClassCounts:
    """Images per class in training and validation, files left out, and where the counts are
    from."""

    train: dict[str, int]
    val: dict[str, int]
    excluded: int
    source: str


@dataclass
class CardFacts:
    """What the card is written from."""

    ckpt_path: Path
    onnx_file: Path
    model: Any  # ImageClassifier (hparams, class_names, task, temperature, thresholds)
    trained_on: dict[str, Any] | None
    metadata: dict[str, Any]
    training: dict[str, Any]  # the checkpoint's epoch and global step, EMA
    run: dict[str, Any] = field(default_factory=dict)  # run_record
    counts: ClassCounts | None = None
    report: dict[str, Any] | None = None
    report_path: Path | None = None
    intervals: dict[str, Interval] = field(default_factory=dict)
    seed_runs: list[Path] = field(default_factory=list)


def run_dir_of(ckpt_path: Path) -> Path | None:
    """The run dir of `<run dir>/checkpoints/<name>.ckpt`."""
    parent = ckpt_path.resolve().parent
    return parent.parent if parent.name == "checkpoints" else None


def counts_from_file_lists(run_dir: Path | None, class_names: list[str]) -> ClassCounts | None:
    """The run's train_files.txt and val_files.txt (`path<TAB>class[;class]` lines)."""
    if run_dir is None or not (run_dir / "train_files.txt").is_file():
        return None
    sides = {}
    for side in ("train", "val"):
        path = run_dir / f"{side}_files.txt"
        lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
        counter = Counter(
            label for line in lines if "\t" in line for label in line.split("\t", 1)[1].split(";")
        )
        sides[side] = {name: counter.get(name, 0) for name in class_names}
    excluded_file = run_dir / "excluded_files.txt"
    excluded = 0
    if excluded_file.is_file():
        excluded = len(excluded_file.read_text(encoding="utf-8").splitlines())
    return ClassCounts(sides["train"], sides["val"], excluded, str(run_dir / "train_files.txt"))


def counts_from_data(
    trained_on: dict[str, Any] | None, class_names: list[str], multi_label: bool
) -> ClassCounts | None:
    """The counts of the checkpoint's data rebuilt from its settings; None when it cannot be
    read here."""
    from src.config.instantiation import build_from_config
    from src.evaluation.data import evaluation_data_settings
    from src.utils.errors import UserError

    if trained_on is None:
        return None
    try:
        settings = evaluation_data_settings({}, trained_on, split=False)
        datamodule = build_from_config(settings, file_list_dir=None, multi_label=multi_label)
        datamodule.prepare_data()
        datamodule.setup("validate")
    except UserError:
        return None
    sides = {}
    for side, samples in (("train", datamodule.train_samples), ("val", datamodule.val_samples)):
        counts = dict(zip(datamodule.class_names, datamodule.class_counts(samples), strict=True))
        sides[side] = {name: counts.get(name, 0) for name in class_names}
    source = f"the data settings, read again from {datamodule.root}"
    return ClassCounts(sides["train"], sides["val"], len(datamodule.excluded), source)


def run_record(run_dir: Path | None) -> dict[str, Any]:
    """What the run dir says about the run: its command-line overrides, seed, epochs and precision
    (.hydra/), and its summary (summary.json)."""
    if run_dir is None:
        return {}
    record: dict[str, Any] = {}
    hydra = run_dir / ".hydra"
    if (hydra / "overrides.yaml").is_file():
        record["overrides"] = yaml.safe_load((hydra / "overrides.yaml").read_text("utf-8")) or []
    if (hydra / "config.yaml").is_file():
        config = yaml.safe_load((hydra / "config.yaml").read_text("utf-8")) or {}
        trainer = config.get("trainer") or {}
        record |= {
            "seed": config.get("seed"),
            "max_epochs": trainer.get("max_epochs"),
            "precision": trainer.get("precision"),
        }
    if (run_dir / "summary.json").is_file():
        record["summary"] = json.loads((run_dir / "summary.json").read_text("utf-8"))
    return record


def _number(value: Any, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _classes(facts: CardFacts) -> list[str]:
    names = list(facts.model.class_names)
    counts = facts.counts
    report = (facts.report or {}).get("per_class", {})
    multi_label = facts.model.task == MULTILABEL
    header = ["class", "training images", "validation images"]
    header += ["average precision", "threshold"] if multi_label else ["precision", "recall", "F1"]
    rows = []
    for name in names:
        row: list[Any] = [
            name,
            "-" if counts is None else counts.train[name],
            "-" if counts is None else counts.val[name],
        ]
        scores = report.get(name, {})
        if multi_label:
            row += [_number(scores.get("average_precision")), _number(scores.get("threshold"), 3)]
        else:
            row += [_number(scores.get(key)) for key in ("precision", "recall", "f1")]
        rows.append(tuple(row))
    where = "" if counts is None else f" Counts from `{counts.source}`."
    return [
        "## Classes",
        "",
        *markdown_table(tuple(header), rows),
        "",
        f"{len(names)} classes.{where}",
        "",
    ]


def _data(facts: CardFacts) -> list[str]:
    data = facts.trained_on or {}
    counts = facts.counts
    lines = ["## Data", ""]
    if not data:
        return [*lines, "The checkpoint records no data settings.", ""]
    source = data.get("csv") or data.get("root")
    lines.append(f"- Source: `{source}` (data module `{data.get('_target_', '-')}`).")
    if counts is not None:
        train, val = sum(counts.train.values()), sum(counts.val.values())
        lines.append(
            f"- Size: {train} training and {val} validation images ({counts.excluded} files "
            "excluded as unusable or unlabelled)."
        )
    split = data.get("val_fraction")
    lines.append(
        f"- Split: validation fraction {split}, split seed {data.get('split_seed')} "
        "(or the source's own train/val folders)."
    )
    return [*lines, ""]


def _starting_weights(model: dict[str, Any]) -> str:
    if model.get("weights_path"):
        return f"the weights file `{model['weights_path']}`"
    if model.get("pretrained"):
        return f"{model.get('source') or 'torchvision'}'s pretrained weights of `{model['name']}`"
    return "random weights"


def _model(facts: CardFacts) -> list[str]:
    hparams = facts.model.hparams
    settings = hparams.model
    parameters = sum(p.numel() for p in facts.model.parameters())
    return [
        "## Model",
        "",
        f"- Network: `{settings['name']}` ({settings.get('source') or 'torchvision'}), "
        f"{parameters:,} parameters, task `{facts.model.task}`.",
        f"- Starting weights: {_starting_weights(settings)}.",
        f"- Checkpoint: `{facts.ckpt_path}` (epoch {facts.training.get('epoch')}, step "
        f"{facts.training.get('global_step')}"
        f"{', weights averaged (EMA)' if facts.training.get('weight_averaging') else ''}).",
        "",
    ]


def _training(facts: CardFacts) -> list[str]:
    hparams, run = facts.model.hparams, facts.run
    data = facts.trained_on or {}
    optimizer = {key: value for key, value in hparams.optimizer.items() if key != "_target_"}
    augment = json.dumps(data.get("augment") or {})
    freeze = hparams.freeze or {}
    if freeze.get("cache_features") and not freeze.get("cached_views"):
        augment = "none (the head trained on cached features of center crops)"
    summary = run.get("summary") or {}
    lines = [
        "## Training",
        "",
        f"- Command: `python -m src.train {' '.join(run.get('overrides') or [])}`"
        if "overrides" in run
        else "- Command: not recorded (no .hydra/ beside the checkpoint).",
        f"- Freezing: {json.dumps(hparams.freeze)}.",
        f"- Optimizer: `{hparams.optimizer.get('_target_')}` {json.dumps(optimizer)}; "
        f"schedule {json.dumps(hparams.scheduler)}.",
        f"- Images: {hparams.image_size} px (crop {hparams.crop_pct}), batch "
        f"{data.get('batch_size', '-')}, augmentation {augment}.",
        f"- Label smoothing {hparams.label_smoothing}; seed {run.get('seed', '-')}; "
        f"precision {run.get('precision', '-')}; at most {run.get('max_epochs', '-')} epochs",
    ]
    if summary:
        lines[-1] += (
            f", {summary.get('epochs')} run, the best at epoch {summary.get('best_epoch')} "
            f"(the whole run {summary.get('wall_time_s')} s)"
        )
    lines[-1] += "."
    return [*lines, ""]


def _metrics(facts: CardFacts) -> list[str]:
    lines = ["## Validation metrics", ""]
    report = facts.report
    if report is None:
        return [
            *lines,
            "No evaluation report of this checkpoint was found (its run dir's "
            "evaluation/metrics.json); python -m src.evaluate writes one, and report= passes it.",
            "",
        ]
    lines += [
        f"From `{facts.report_path}`: {report['num_images']} images of "
        f"`{report.get('data_root')}`, the report of `{report.get('ckpt_path')}`.",
        "",
    ]
    header: tuple[str, ...] = ("metric", "value")
    if facts.intervals:
        header += ("over seeds: mean ± 95% interval",)
    rows = []
    for key, label in METRICS[facts.model.task]:
        row: tuple[Any, ...] = (label, _number(report.get(key)))
        if facts.intervals:
            interval = facts.intervals.get(key)
            row += ("-" if interval is None else interval.text(),)
        rows.append(row)
    lines += markdown_table(header, rows)
    if facts.seed_runs:
        runs = ", ".join(f"`{path.name}`" for path in facts.seed_runs)
        lines += ["", f"The intervals come from the seeded sweep's runs {runs} (Student's t)."]
    return [*lines, ""]


def _calibration(facts: CardFacts) -> list[str]:
    temperature = facts.metadata.get("temperature", 1.0)
    lines = ["## Calibration", ""]
    calibration = (facts.report or {}).get("calibration") or {}
    if temperature == 1.0 or temperature == [1.0] * len(facts.model.class_names):
        return [
            *lines,
            "Temperature 1: the probabilities are the network's as trained, not calibrated "
            "(python -m src.evaluate calibrate=true fits a temperature).",
            "",
        ]
    per_class = isinstance(temperature, list)
    lines.append(
        "Temperature scaling, inside the ONNX graph: "
        + (
            "one temperature per class: "
            + ", ".join(
                f"{name} {value:.4f}"
                for name, value in zip(facts.model.class_names, temperature, strict=True)
            )
            if per_class
            else f"temperature {temperature:.4f}"
        )
        + f" ({calibration.get('fitted_on') or 'fitted on the validation split'})."
    )
    if "before" in calibration:
        rows = [
            (label, _number(side["expected_calibration_error"]), _number(side["loss"]))
            for label, side in (
                ("before (temperature 1)", calibration["before"]),
                ("after", calibration["after"]),
            )
        ]
        lines += ["", *markdown_table(("", "expected calibration error", "loss"), rows)]
    if per_class:
        lines += ["", "The per-class thresholds are on the calibrated probabilities."]
    return [*lines, ""]


def _abstention(facts: CardFacts) -> list[str]:
    validation = facts.metadata.get("validation")
    if facts.model.task == MULTILABEL or not validation:
        return []
    confidence = torch.tensor(validation["confidence"], dtype=torch.float64)
    correct = torch.tensor(validation["correct"], dtype=torch.bool)
    rows = []
    for target in PRECISIONS:
        choice = threshold_for_precision(confidence, correct, target)
        if choice is None:
            rows.append((target, "not reached", "-", "-"))
        else:
            coverage = f"{choice.coverage:.1%}"
            rows.append((target, f"{choice.threshold:.4f}", _number(choice.precision), coverage))
    return [
        "## Abstention",
        "",
        f"On the {validation['images']} validation images of `{validation['data']}` (in "
        "model.json), `target_precision=` answers at these confidences:",
        "",
        *markdown_table(("target precision", "confidence at least", "precision", "answered"), rows),
        "",
    ]


def _input(facts: CardFacts) -> list[str]:
    meta = facts.metadata
    size = meta["input"]["size"]
    return [
        "## Input and output",
        "",
        f"- Input `{meta['input']['name']}`: uint8 RGB images, layout NCHW, "
        f"[batch, 3, {size[0]}, {size[1]}], any batch size; {meta['input']['resize']}.",
        f"- Normalisation inside the graph (mean {meta['mean']}, std {meta['std']}).",
        f"- Output `{meta['output']['name']}`: {meta['output']['meaning']}.",
        f"- Checked against PyTorch on {meta['parity']['images']} images (largest difference "
        f"{meta['parity']['max_logit_difference']:.2g}).",
        "",
    ]


def _how_to_run(facts: CardFacts) -> list[str]:
    name = facts.onnx_file.name
    size = facts.metadata["input"]["size"][0]
    return [
        "## How to run",
        "",
        "```bash",
        f"python -m src.predict model_file={facts.onnx_file} input=path/to/images",
        f"python -m src.predict model_file={facts.onnx_file} input=path/to/images "
        "target_precision=0.95",
        "```",
        "",
        "Or with onnxruntime alone, on images resized and cropped as above:",
        "",
        "```python",
        "import numpy as np, onnxruntime",
        f'session = onnxruntime.InferenceSession("{name}")',
        f"images = np.zeros((1, 3, {size}, {size}), dtype=np.uint8)  # your images",
        f'outputs = session.run(["{facts.metadata["output"]["name"]}"], {{"images": images}})[0]',
        "```",
        "",
    ]


def _not_evaluated(facts: CardFacts) -> list[str]:
    data = facts.trained_on or {}
    source = data.get("csv") or data.get("root") or "the training data"
    items = [
        f"Images from other sources than `{source}` (other cameras, resolutions, lighting, "
        "subjects): no figure here says how it does on them.",
        f"Images of none of its {len(facts.model.class_names)} classes: it always answers one "
        "of them; abstention lowers the risk but was not measured on such images.",
        "The validation figures come from the split that chose the best epoch and fitted the "
        "temperature: expect them to be somewhat optimistic on new images.",
        "Other runtimes than onnxruntime on the CPU, and other resizing than described above.",
    ]
    if not facts.intervals:
        items.append("Other seeds: one training run, so the spread between runs is not measured.")
    return ["## Not evaluated on", "", *(f"- {item}" for item in items), ""]


def model_card(facts: CardFacts) -> str:
    """MODEL_CARD.md's text."""
    names = ", ".join(facts.model.class_names)
    today = datetime.date.today().isoformat()
    lines = [
        f"# Model card: {facts.model.hparams.model['name']} for {names}",
        "",
        f"Written by `python -m src.export` on {today} from `{facts.ckpt_path}` and its report; "
        "export again rather than edit it.",
        "",
    ]
    for section in (
        _classes,
        _data,
        _model,
        _training,
        _metrics,
        _calibration,
        _abstention,
        _input,
        _how_to_run,
        _not_evaluated,
    ):
        lines += section(facts)
    return "\n".join(lines)
