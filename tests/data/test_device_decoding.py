"""`data.decode_on_device`: the workers pass JPEG bytes, the training device decodes them."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

import src.data.device_decoding as device_decoding
from src.data.dataset import ImageFileDataset, TooManyUnreadableFiles
from src.data.device_decoding import collate_undecoded, decode_batch
from src.data.samples import Sample
from src.data.sources.folder import ImageFolderDataModule
from src.data.transforms import eval_transform
from src.evaluate import evaluate
from src.train import train
from tests.helpers import TINY
from tests.helpers.image_factory import write_broken_files


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
    batch = collate_undecoded([undecoded[i] for i in range(len(mixed_folder))])
    assert [len(shape) for shape in batch.shapes] == [1, 3, 3, 1, 3, 3]  # plain JPEGs: bytes
    failures: dict[Path, str] = {}
    pixels, labels = decode_batch(batch, torch.device("cpu"), transform, failures, 0)
    assert torch.equal(pixels, expected) and not failures
    assert labels.tolist() == [sample.label for sample in mixed_folder]


def test_a_jpeg_broken_since_the_scan_is_replaced_and_counted(tmp_path: Path, caplog) -> None:
    samples = [Sample(_photo(tmp_path / f"{name}.jpg"), label) for label, name in enumerate("abc")]
    dataset = ImageFileDataset(samples, None, jpeg_bytes=True)
    items = [dataset[i] for i in range(3)]
    broken = samples[1].path
    whole = broken.read_bytes()
    broken.write_bytes(whole[:-100])  # the header is intact, the pixels are not
    items[1] = dataset[1]
    assert items[1][0].dim() == 1  # the worker only reads the header: sent as bytes
    failures: dict[Path, str] = {}
    pixels, labels = decode_batch(
        collate_undecoded(items), torch.device("cpu"), eval_transform(16), failures, 5
    )
    assert pixels.shape == (3, 3, 16, 16) and labels.tolist() == [0, 2, 2]  # the next image
    assert list(failures) == [broken] and str(broken) in caplog.text
    with pytest.raises(TooManyUnreadableFiles, match="max_read_failures=0"):
        decode_batch(collate_undecoded(items), torch.device("cpu"), eval_transform(16), {}, 0)


@pytest.fixture(scope="module")
def jpeg_stripes(stripes_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated stripes as JPEGs, which the device decodes."""
    root = tmp_path_factory.mktemp("jpegs")
    for png in stripes_root.rglob("*.png"):
        target = root / png.parent.name / f"{png.stem}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.open(png).convert("RGB").save(target, "JPEG", quality=95)
    return root


def test_training_and_evaluation_with_decoding_on_device(
    make_config, jpeg_stripes: Path, probe, monkeypatch
) -> None:
    """Every training batch reaches the device as JPEG bytes and is decoded there."""
    decoded: list[str] = []

    def decode(batch, device, *args, **kwargs):
        decoded.append("train" if "batch_transform" in kwargs else "eval")
        return decode_batch(batch, device, *args, **kwargs)

    monkeypatch.setattr("src.data.batch_transforms.decode_batch", decode)
    root = jpeg_stripes
    overrides = ["data=folder", f"data.root={root}", "data.decode_on_device=true"]
    cfg = make_config([*overrides, *TINY])
    assert train(cfg) is not None
    assert decoded.count("train") == len(probe.steps) == 4 and "eval" in decoded
    run_dir = Path(cfg.paths.output_dir)
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "finished"
    best = run_dir / "checkpoints" / "best.ckpt"
    metrics = evaluate(make_config([f"ckpt_path={best}"], config_name="evaluate"))
    assert metrics["num_images"] > 0


def _photos(folder: Path, count: int) -> list[Sample]:
    folder.mkdir(parents=True, exist_ok=True)
    return [Sample(_photo(folder / f"{index}.jpg", (48, 48)), index % 2) for index in range(count)]


def _undecoded(samples: list[Sample]):
    dataset = ImageFileDataset(samples, None, jpeg_bytes=True)
    return collate_undecoded([dataset[i] for i in range(len(samples))])


def _training_views(samples: list[Sample], rank: int) -> torch.Tensor:
    """A training batch augmented on the device by DDP process `rank`, after the run's seed
    was set as `seed_everything` sets it in every process."""
    datamodule = ImageFolderDataModule(root=samples[0].path.parent, image_size=24)
    datamodule.decode_on_device = True
    datamodule.trainer = SimpleNamespace(  # what the hook reads of a fitting Trainer
        training=True, global_rank=rank, strategy=SimpleNamespace(root_device=torch.device("cpu"))
    )
    torch.manual_seed(42)
    outside = torch.get_rng_state()
    pixels, _ = datamodule.on_before_batch_transfer(_undecoded(samples), 0)
    assert torch.equal(torch.get_rng_state(), outside)  # training's own draws are untouched
    return pixels


def test_each_process_draws_its_own_augmentations(tmp_path: Path) -> None:
    samples = _photos(tmp_path / "photos", 6)
    first, again = _training_views(samples, 0), _training_views(samples, 0)
    assert torch.equal(first, again)  # reproducible from the seed
    assert not torch.equal(first, _training_views(samples, 1))


def test_device_errors_are_raised_not_counted_as_broken_files(tmp_path: Path, monkeypatch) -> None:
    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(device_decoding, "decode_jpeg", out_of_memory)
    failures: dict[Path, str] = {}
    batch = _undecoded(_photos(tmp_path / "photos", 2))
    with pytest.raises(torch.cuda.OutOfMemoryError):
        decode_batch(batch, torch.device("cpu"), eval_transform(16), failures, 5)
    assert failures == {}


def test_a_jpeg_the_device_decoder_refuses_is_decoded_on_the_cpu(
    tmp_path: Path, monkeypatch
) -> None:
    """nvJPEG refuses some files that the CPU decoder takes: they are decoded there instead of
    being counted as unreadable (the 'meta' device stands in for the GPU)."""
    real = device_decoding.decode_jpeg

    def device_refuses(data, mode, device="cpu"):
        if torch.device(device).type != "cpu":
            raise RuntimeError("nvjpegDecode failed: unsupported JPEG")
        return real(data, mode=mode, device=device)

    monkeypatch.setattr(device_decoding, "decode_jpeg", device_refuses)
    failures: dict[Path, str] = {}
    batch = _undecoded(_photos(tmp_path / "photos", 2))
    pixels, _ = decode_batch(batch, torch.device("meta"), lambda image: image, failures, 0)
    assert pixels.shape == (2, 3, 48, 48) and pixels.device.type == "meta"
    assert failures == {}


@pytest.mark.parametrize("decode_on_device", [False, True])
def test_training_with_modern_augmentation(
    make_config, jpeg_stripes: Path, decode_on_device: bool, probe
) -> None:
    """TrivialAugment, RandomErasing, MixUp / CutMix and progressive resizing, decoded in the
    workers or on the device."""
    augment = [
        "data.progressive_resizing.enabled=true",
        "data.augment.policy=trivial",
        "data.augment.random_erasing=0.25",
        "data.augment.mixup=0.2",
        "data.augment.cutmix=1.0",
    ]
    data = ["data=folder", f"data.root={jpeg_stripes}", f"data.decode_on_device={decode_on_device}"]
    assert train(make_config([*data, *augment, *TINY])) is not None
    # 16 px in the first of two epochs, 32 px in the last; every batch's labels mixed (one
    # probability per class) by MixUp or CutMix
    assert {(step.epoch, step.inputs[2:]) for step in probe.steps} == {(0, (16, 16)), (1, (32, 32))}
    assert {step.targets[1:] for step in probe.steps} == {(2,)}
