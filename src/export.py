"""Export a checkpoint to ONNX: `python -m src.export ckpt_path=.../best.ckpt [output=model.onnx]`.

Writes the model (uint8 images in, normalisation and temperature inside, logits out, any batch
size) and a JSON of what serving needs, only after onnxruntime has reproduced PyTorch's outputs
on real images.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig

from src.data.images import pixel_limit
from src.data.samples import find_image_files
from src.models.calibration import temperature_value
from src.models.checkpoint import load_checkpoint
from src.models.tasks import MULTILABEL
from src.serving.abstention import validation_answers
from src.serving.classifiers import CheckpointClassifier
from src.serving.onnx_export import export_verified, parity_images, serving_metadata
from src.utils.console import quiet_known_messages
from src.utils.errors import UserError, exit_on_user_error, one_line

log = logging.getLogger(__name__)


def export(cfg: DictConfig) -> Path:
    """Export and verify; returns the path of the ONNX file."""
    quiet_known_messages()
    model, trained_on = load_checkpoint(cfg.ckpt_path)
    image_size, crop_pct = int(model.hparams.image_size), float(model.hparams.crop_pct)
    images_root = cfg.get("images") or (trained_on or {}).get("root")
    if not images_root:
        raise UserError("give images=path/to/images for the check of the exported model")
    files = find_image_files(Path(images_root).expanduser(), "images")
    max_pixels = pixel_limit(cfg.max_pixels, "max_pixels")
    images = parity_images(files, image_size, crop_pct, max_pixels, cfg.parity_images)
    settings = model.hparams.model
    metadata = serving_metadata(
        list(model.class_names),
        image_size,
        crop_pct,
        list(settings["mean"]),
        list(settings["std"]),
        thresholds=model.thresholds.tolist() if model.task == MULTILABEL else None,
        temperature=temperature_value(model.temperature, model.task),
    )
    if model.task != MULTILABEL:
        answers = exported_validation(CheckpointClassifier.of(model, trained_on), max_pixels)
        if answers is not None:
            metadata["validation"] = answers
    output = Path(cfg.output) if cfg.get("output") else Path(cfg.paths.output_dir) / "model.onnx"
    difference = export_verified(model, metadata, images, output)
    log.info(
        "Exported %s and %s: onnxruntime matches PyTorch on %d images of %s "
        "(largest output difference %.2g)",
        output,
        output.with_suffix(".json").name,
        len(images),
        images_root,
        difference,
    )
    return output


def exported_validation(classifier: CheckpointClassifier, max_pixels: int) -> dict | None:
    """The validation split's answers for predict's target_precision, or None (with a warning)
    when the split cannot be read here."""
    try:
        return validation_answers(classifier, max_pixels=max_pixels)
    except UserError as error:
        log.warning(
            "model.json gets no validation answers, so predict model_file=... cannot use "
            "target_precision (min_confidence works): %s",
            one_line(error),
        )
        return None


@hydra.main(version_base="1.3", config_path="../conf", config_name="export")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    export(cfg)


if __name__ == "__main__":
    main()
