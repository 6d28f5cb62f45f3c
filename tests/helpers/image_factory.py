"""Small synthetic image files for tests: good photos and every bad or odd kind found in the wild.

Everything is generated on the fly (no network, no shared data), tiny and fast to write.
"""

from __future__ import annotations

import os
import random
import struct
import zlib
from pathlib import Path

from PIL import Image

USABLE = "usable"
"""Value in :func:`write_broken_files`'s result for files that must decode fine."""

BOMB_SIZE = (20_000, 20_000)


def _noise_rgb(size: tuple[int, int], seed: int = 0) -> Image.Image:
    """Random pixels: they compress badly, so a cut file really misses scan data."""
    rng = random.Random(seed)
    return Image.frombytes("RGB", size, rng.randbytes(size[0] * size[1] * 3))


def write_rgb_jpeg(
    path: str | os.PathLike[str],
    size: tuple[int, int] = (48, 40),
    color: tuple[int, int, int] = (200, 60, 30),
    quality: int = 90,
) -> Path:
    """Write a plain RGB JPEG of one colour and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, "JPEG", quality=quality)
    return path


def write_class_folders(root: str | os.PathLike[str], counts: dict[str, int]) -> Path:
    """Write ``counts[name]`` small JPEGs into ``root/name/`` for each class, one colour per class.

    The file names hold a space and a non-ASCII letter (``img 0 é.jpg``), as photo folders do.
    Returns ``root``.
    """
    root = Path(root)
    for index, (name, count) in enumerate(counts.items()):
        for number in range(count):
            write_rgb_jpeg(
                root / name / f"img {number} é.jpg", size=(40, 30), color=(60 * index, 9, 9)
            )
    return root


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_bomb_png(path: str | os.PathLike[str], size: tuple[int, int] = BOMB_SIZE) -> Path:
    """Write a valid 1-bit PNG of ``size`` (400 megapixels by default) that is ~50 KB on disk.

    Built chunk by chunk with zlib, so writing it never holds the pixels in memory.
    """
    width, height = size
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed 1-bit pixels, all black
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    data = (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )
    path = Path(path)
    path.write_bytes(data)
    return path


def write_broken_files(folder: str | os.PathLike[str]) -> dict[str, str]:
    """Write one file of each bad or odd kind into ``folder``.

    Returns ``{file name: expectation}`` where the expectation is :data:`USABLE` for files that
    must decode to RGB, and otherwise a phrase the refusal reason must contain.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    expected: dict[str, str] = {}

    def put(name: str, expectation: str) -> Path:
        expected[name] = expectation
        return folder / name

    put("zero_bytes.jpg", "zero-byte").write_bytes(b"")

    noisy = folder / "_noisy.jpg"
    _noise_rgb((96, 96), seed=1).save(noisy, "JPEG", quality=95)
    whole = noisy.read_bytes()
    noisy.unlink()
    put("truncated.jpg", "truncated").write_bytes(whole[: len(whole) // 2])
    put("trailing_garbage.jpg", USABLE).write_bytes(whole + b"\x00garbage after EOI" * 20)

    put("Thumbs.db", "not an image").write_bytes(random.Random(2).randbytes(4096))
    put("html_page.jpg", "not an image").write_bytes(
        b"<!DOCTYPE html><html><head><title>404 Not Found</title></head>"
        b"<body><h1>Not Found</h1></body></html>\n"
    )

    Image.new("RGB", (30, 20), (10, 200, 10)).save(put("png_named.jpg", USABLE), "PNG")
    frames = [Image.new("P", (30, 20), index) for index in (1, 2)]
    frames[0].save(put("gif_named.jpg", USABLE), "GIF", save_all=True, append_images=frames[1:])

    Image.new("L", (30, 20), 128).save(put("grayscale.jpg", USABLE), "JPEG")
    Image.new("CMYK", (30, 20), (0, 255, 255, 0)).save(put("cmyk.jpg", USABLE), "JPEG")
    Image.new("RGBA", (30, 20), (0, 0, 255, 128)).save(put("rgba.png", USABLE), "PNG")
    palette = Image.new("P", (30, 20), 0)
    palette.putpalette([255, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 6))
    palette.save(put("palette.png", USABLE), "PNG", transparency=0)
    Image.new("I;16", (30, 20), 30_000).save(put("gray16.png", USABLE), "PNG")

    rotated = Image.new("RGB", (48, 32), (200, 60, 30))
    exif = rotated.getexif()
    exif[0x0112] = 6  # display rotated by 90 degrees clockwise: shown as 32x48
    rotated.save(put("exif_rotated.jpg", USABLE), "JPEG", exif=exif.tobytes())

    write_bomb_png(put("bomb.png", "decompression bomb"))
    return expected


def unusable_names(expected: dict[str, str]) -> set[str]:
    """Names from :func:`write_broken_files`'s result that must be refused."""
    return {name for name, expectation in expected.items() if expectation != USABLE}
