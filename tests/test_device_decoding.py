"""`data.decode_on_device`: the workers pass JPEG bytes, the training device decodes them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from src.data.dataset import ImageFileDataset
from src.data.device_decoding import collate_undecoded, decode_batch
from src.data.samples import Sample
from src.data.transforms import eval_transform
from src.evaluate import evaluate
from src.train import train
from tests.conftest import TINY
from tests.image_factory import write_broken_files


def _photo(path: Path, size: tuple[int, int] = (60, 44)) -> Path:
    """A JPEG with detail in it (a gradient), so that decoders could disagree."""
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    image.save(path, "JPEG", quality=90)
    return path


@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory: pytest.TempPathFactory) -> list[Sample]:
    """Plain RGB and grayscale JPEGs, and files the workers must decode themselves
    (EXIF-rotated and CMYK JPEGs, PNG, GIF)."""
    folder = tmp_path_factory.mktemp("mixed")
    write_broken_files(folder)
    names = ["exif_rotated.jpg", "cmyk.jpg", "grayscale.jpg", "png_named.jpg", "gif_named.jpg"]
    paths = [_photo(folder / "plain.jpg"), *(folder / name for name in names)]
    return [Sample(path, index % 2) for index, path in enumerate(paths)]


def test_device_decoding_gives_the_worker_pixels(mixed_folder: list[Sample]) -> None:
    transform = eval_transform(32)
    in_workers = ImageFileDataset(mixed_folder, transform)
    expected = torch.stack([in_workers[i][0] for i in range(len(mixed_folder))])
    undecoded = ImageFileDataset(mixed_folder, None, jpeg_bytes=True)
    images, labels = collate_undecoded([undecoded[i] for i in range(len(mixed_folder))])
    assert [image.dim() for image in images] == [1, 3, 3, 1, 3, 3]  # the plain JPEGs: bytes
    pixels, kept_labels = decode_batch(images, labels, torch.device("cpu"), transform)
    assert torch.equal(pixels, expected)
    assert kept_labels.tolist() == [sample.label for sample in mixed_folder]


def test_a_jpeg_broken_since_the_scan_is_left_out(tmp_path: Path) -> None:
    good = torch.frombuffer(bytearray(_photo(tmp_path / "a.jpg").read_bytes()), dtype=torch.uint8)
    broken = good[: len(good) // 2].clone()
    pixels, labels = decode_batch(
        [good, broken, good], torch.tensor([0, 1, 0]), torch.device("cpu"), eval_transform(16)
    )
    assert pixels.shape == (2, 3, 16, 16) and labels.tolist() == [0, 0]


def test_training_and_evaluation_with_decoding_on_device(
    make_config, stripes_root: Path, tmp_path: Path
) -> None:
    root = tmp_path / "jpegs"
    for png in stripes_root.rglob("*.png"):
        target = root / png.parent.name / f"{png.stem}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.open(png).convert("RGB").save(target, "JPEG", quality=95)
    overrides = ["data=folder", f"data.root={root}", "data.decode_on_device=true"]
    cfg = make_config([*overrides, *TINY])
    assert train(cfg) is not None
    run_dir = Path(cfg.paths.output_dir)
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "finished"
    best = run_dir / "checkpoints" / "best.ckpt"
    metrics = evaluate(make_config([f"ckpt_path={best}"], config_name="evaluate"))
    assert metrics["num_images"] > 0
