"""Tests for safe image decoding: every bad or odd kind of file found in real photo folders."""

from __future__ import annotations

import time
import tracemalloc
import warnings
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image, ImageFile
from torchvision.transforms.v2.functional import pil_to_tensor

from src.config.compose import CONF_DIR
from src.data.images import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    UnusableImageError,
    check_image,
    open_rgb,
    pixel_limit,
    read_rgb_tensor,
)
from src.utils.errors import UserError
from tests.helpers.image_factory import USABLE, write_broken_files, write_rgb_jpeg


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """One file of each kind, written once for the whole module."""
    folder = tmp_path_factory.mktemp("zoo")
    return folder, write_broken_files(folder)


def test_constants() -> None:
    assert {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"} == IMAGE_EXTENSIONS
    assert DEFAULT_MAX_PIXELS == 89_478_485


@pytest.mark.parametrize("config", ["data/folder.yaml", "predict.yaml", "export.yaml"])
def test_every_config_takes_the_one_default_pixel_limit(config: str) -> None:
    """`max_pixels: null` in each config, the number in one place: DEFAULT_MAX_PIXELS."""
    assert OmegaConf.load(CONF_DIR / config).max_pixels is None
    assert pixel_limit(None, "max_pixels") == DEFAULT_MAX_PIXELS
    assert pixel_limit(1000, "max_pixels") == 1000
    with pytest.raises(UserError, match=r"data\.max_pixels=0 must be"):
        pixel_limit(0, "data.max_pixels")


def test_every_kind_is_rgb_or_refused_with_reason(zoo: tuple[Path, dict[str, str]]) -> None:
    folder, expected = zoo
    for name, expectation in expected.items():
        path = folder / name
        if expectation == USABLE:
            img = open_rgb(path)
            assert img.mode == "RGB", name
            assert check_image(path) is None, name
        else:
            with pytest.raises(UnusableImageError, match=expectation):
                open_rgb(path)
            reason = check_image(path)
            assert reason is not None and expectation in reason, (name, reason)
    assert not ImageFile.LOAD_TRUNCATED_IMAGES


def test_exif_orientation_applied(zoo: tuple[Path, dict[str, str]]) -> None:
    folder, _ = zoo
    assert open_rgb(folder / "exif_rotated.jpg").size == (32, 48)  # stored as 48x32


def test_odd_modes_keep_their_colours(zoo: tuple[Path, dict[str, str]]) -> None:
    folder, _ = zoo
    red = open_rgb(folder / "cmyk.jpg").getpixel((0, 0))
    assert red[0] > 200 and red[1] < 50 and red[2] < 50
    assert open_rgb(folder / "grayscale.jpg").getpixel((0, 0)) == (128, 128, 128)
    # 16-bit value 30000 of 65535 must come out mid-grey, not clipped to white.
    assert open_rgb(folder / "gray16.png").getpixel((0, 0)) == (116, 116, 116)
    # Fully transparent palette pixels and half-transparent blue are composited onto white.
    assert open_rgb(folder / "palette.png").getpixel((0, 0)) == (255, 255, 255)
    assert open_rgb(folder / "rgba.png").getpixel((0, 0)) == (127, 127, 255)


def test_bomb_refused_before_decoding(zoo: tuple[Path, dict[str, str]]) -> None:
    folder, _ = zoo
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(UnusableImageError) as info:
        open_rgb(folder / "bomb.png")
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert "20000x20000" in str(info.value) and str(DEFAULT_MAX_PIXELS) in str(info.value)
    assert "data.max_pixels" in str(info.value)
    assert elapsed < 0.5 and peak < 10_000_000


def test_max_pixels_is_ours_not_pils(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_rgb_jpeg(tmp_path / "a.jpg", size=(100, 80))
    assert "8000 pixels > limit 7999" in (check_image(path, max_pixels=7999) or "")
    # A strict PIL global must neither refuse nor warn about images within our own limit...
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert open_rgb(path).size == (100, 80)
    # ...and is left as it was.
    assert Image.MAX_IMAGE_PIXELS == 1000


def test_draft_size_speeds_up_jpeg_only(tmp_path: Path) -> None:
    jpeg = write_rgb_jpeg(tmp_path / "big.jpg", size=(800, 600))
    small = open_rgb(jpeg, draft_size=(64, 64))
    assert 64 <= small.width < 800 and 64 <= small.height < 600
    assert open_rgb(jpeg).size == (800, 600)
    png = tmp_path / "big.png"
    Image.new("RGB", (800, 600), (1, 2, 3)).save(png)
    assert open_rgb(png, draft_size=(64, 64)).tobytes() == open_rgb(png).tobytes()


def test_missing_file_is_unusable(tmp_path: Path) -> None:
    assert "cannot read file" in (check_image(tmp_path / "nope.jpg") or "")


def test_tensor_decoding_matches_pil_on_every_kind(zoo: tuple[Path, dict[str, str]]) -> None:
    """The fast JPEG path and the PIL fallback give open_rgb's pixels and open_rgb's refusals."""
    folder, expected = zoo
    for name, expectation in expected.items():
        path = folder / name
        if expectation == USABLE:
            assert torch.equal(read_rgb_tensor(path), pil_to_tensor(open_rgb(path))), name
        else:
            with pytest.raises(UnusableImageError, match=expectation):
                read_rgb_tensor(path)
    upright = read_rgb_tensor(folder / "exif_rotated.jpg")
    assert upright.shape == (3, 48, 32) and upright.dtype == torch.uint8


def test_tensor_decoding_of_photos_and_drafts(tmp_path: Path) -> None:
    jpeg = write_rgb_jpeg(tmp_path / "big.jpg", size=(800, 600))
    assert torch.equal(read_rgb_tensor(jpeg), pil_to_tensor(open_rgb(jpeg)))
    drafted = read_rgb_tensor(jpeg, draft_size=(64, 64))
    assert torch.equal(drafted, pil_to_tensor(open_rgb(jpeg, draft_size=(64, 64))))
    assert drafted.shape[1] < 600
    assert torch.equal(read_rgb_tensor(jpeg, draft_size=(512, 512)), read_rgb_tensor(jpeg))
    with pytest.raises(UnusableImageError, match="8000 pixels > limit 7999"):
        read_rgb_tensor(write_rgb_jpeg(tmp_path / "a.jpg", size=(100, 80)), max_pixels=7999)
