"""Safe image decoding shared by the training dataset and the data-preparation step.

Real-world image folders contain zero-byte files, truncated JPEGs, ``Thumbs.db``, HTML pages
saved as ``.jpg``, odd pixel modes and decompression bombs. Everything here turns those into a
single, catchable :class:`UnusableImageError` with a short human reason, and turns every usable
image into a plain 8-bit RGB picture the right way up.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError
from torchcodec.decoders import decode_jpeg
from torchvision.transforms.v2.functional import pil_to_tensor

from src.utils.errors import require_int

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
)
#: The one place the default pixel limit is set: PIL's own bomb limit (Image.MAX_IMAGE_PIXELS).
#: Configs leave `max_pixels: null` to take it.
DEFAULT_MAX_PIXELS: int = 89_478_485

# EXIF orientations that swap width and height (rotations by 90 or 270 degrees).
_TRANSPOSING_ORIENTATIONS = frozenset({5, 6, 7, 8})
_EXIF_ORIENTATION = 0x0112
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
#: How images become pixels (part of the feature cache key): change it with the decoding rules.
DECODING = "TorchCodec for RGB/L JPEGs unless PIL drafts at 1/4 or less; else PIL"
# JPEG modes TorchCodec's decoder turns into RGB exactly as PIL's convert("RGB") does.
_PLAIN_JPEG_MODES = frozenset({"RGB", "L"})
# Background for transparent pixels: white, as image viewers and browsers show them.
_BACKGROUND = (255, 255, 255)

# PIL's bomb check reads the module global Image.MAX_IMAGE_PIXELS. We apply our own, per-call limit
# instead, so the global is lifted only while a lock is held (see _pil_bomb_check_off).
_PIL_LIMIT_LOCK = threading.RLock()

# PIL warns about broken EXIF blocks, which are common in photos from the wild and harmless for the
# pixels. Silenced by message (not with catch_warnings, which is not thread-safe before 3.14).
warnings.filterwarnings(
    "ignore",
    message=r"(Possibly corrupt EXIF|Corrupt EXIF|Truncated File Read|Metadata Warning)",
    category=UserWarning,
)


def pixel_limit(max_pixels: int | None, setting: str) -> int:
    """The configured `max_pixels` (named `setting` in errors), or the default for null."""
    if max_pixels is None:
        return DEFAULT_MAX_PIXELS
    require_int(max_pixels, setting, 1)
    return max_pixels


class UnusableImageError(ValueError):
    """A file cannot be used as an image; ``str(err)`` is a short reason for reports and logs."""


@contextmanager
def _pil_bomb_check_off() -> Iterator[None]:
    """Disable PIL's global pixel limit for the block, so only our own ``max_pixels`` applies.

    Without this, PIL would warn about (or refuse) images below a raised ``max_pixels``, and warn
    about large ones before we get the chance to refuse them cleanly. The lock keeps concurrent
    callers from restoring the global under each other's feet.
    """
    with _PIL_LIMIT_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _bomb_reason(size: tuple[int, int], max_pixels: int) -> str | None:
    """Return why an image of ``size`` is refused, or None when it is within ``max_pixels``."""
    width, height = size
    pixels = width * height
    if pixels <= max_pixels:
        return None
    return (
        f"decompression bomb: {width}x{height} = {pixels} pixels > limit {max_pixels} "
        "(raise data.max_pixels to allow)"
    )


def _pil_limit_may_bite(max_pixels: int) -> bool:
    """True when PIL's global limit is stricter than ours, so decoding must run with it lifted.

    Some formats (GIF, TIFF) check the global again while loading frames or tiles.
    """
    limit = Image.MAX_IMAGE_PIXELS
    return limit is not None and limit < max_pixels


def _reason_from_exception(exc: BaseException) -> str:
    """Map whatever PIL raised into a short, stable reason string."""
    if isinstance(exc, UnidentifiedImageError):
        return "not an image (cannot identify image file)"
    if isinstance(exc, Image.DecompressionBombError | Image.DecompressionBombWarning):
        return f"decompression bomb ({exc})"
    message = str(exc).strip() or type(exc).__name__
    lowered = message.lower()
    if "truncated" in lowered or "broken data stream" in lowered or "premature end" in lowered:
        return "truncated image data"
    if len(message) > 120:
        message = message[:117] + "..."
    return f"cannot decode image ({type(exc).__name__}: {message})"


def _scale_to_8bit(img: Image.Image) -> Image.Image:
    """Bring integer/float single-channel images (``I;16``, ``I``, ``F``) to mode ``L``.

    A plain ``convert("L")`` clips everything above 255, so a 16-bit photo comes out all white.
    16-bit data is scaled by 1/256; other ranges are stretched from their min..max to 0..255.
    """
    if img.mode.startswith("I;16"):
        img = img.convert("I")
        low, high = 0, 65535
    else:
        low, high = img.getextrema()  # type: ignore[misc]
        if img.mode == "F" and low >= 0 and high <= 1:
            low, high = 0, 1  # float images in [0, 1]
        elif low >= 0 and high <= 255:
            low, high = 0, 255  # already 8-bit range: keep values as they are
        elif low >= 0 and high <= 65535:
            low, high = 0, 65535  # 16-bit data held in a 32-bit mode
    if high <= low:
        high = low + 1
    scale = 255.0 / (high - low)
    offset = -low * scale
    return img.point(lambda value: value * scale + offset).convert("L")


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB; transparency is composited onto a white background."""
    if img.mode == "RGB":
        return img
    if img.mode.startswith(("I", "F")):
        return _scale_to_8bit(img).convert("RGB")
    if img.mode in _ALPHA_MODES or "transparency" in img.info:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*_BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _orientation(img: Image.Image) -> int | None:
    """The EXIF orientation tag, None when absent or unreadable."""
    try:
        return img.getexif().get(_EXIF_ORIENTATION)
    except Exception:  # broken EXIF: exif_transpose will deal with it (or not) later
        return None


def _draft(img: Image.Image, draft_size: tuple[int, int]) -> None:
    """Ask libjpeg to decode at a reduced scale; PIL keeps the result at least ``draft_size``.

    The size is given in display orientation, so it is swapped for images EXIF rotates by 90°.
    """
    width, height = draft_size
    if _orientation(img) in _TRANSPOSING_ORIENTATIONS:
        width, height = height, width
    img.draft("RGB", (width, height))


def _decode(
    path: str | os.PathLike[str], max_pixels: int, draft_size: tuple[int, int] | None
) -> Image.Image:
    """Open, check, decode and convert; may raise anything PIL raises."""
    with _pil_bomb_check_off():
        img = Image.open(path)  # reads the header only
    with img:
        reason = _bomb_reason(img.size, max_pixels)
        if reason is not None:
            raise UnusableImageError(reason)
        if draft_size is not None and img.format == "JPEG":
            _draft(img, draft_size)
        if _pil_limit_may_bite(max_pixels):
            with _pil_bomb_check_off():
                img.load()
        else:
            img.load()
        upright = ImageOps.exif_transpose(img)
        return _to_rgb(upright)


def _unreadable(exc: OSError) -> UnusableImageError:
    return UnusableImageError(f"cannot read file ({type(exc).__name__}: {exc})")


def _check_file(path: str | os.PathLike[str]) -> None:
    """Refuse empty or unreadable files, and warn when PIL would hide truncation."""
    try:
        if os.path.getsize(path) == 0:
            raise UnusableImageError("zero-byte file")
    except OSError as exc:
        raise _unreadable(exc) from exc
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        warnings.warn(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True: truncated images will not be detected",
            RuntimeWarning,
            stacklevel=3,
        )


def open_rgb(
    path: str | os.PathLike[str],
    max_pixels: int = DEFAULT_MAX_PIXELS,
    draft_size: tuple[int, int] | None = None,
) -> Image.Image:
    """Return the image at ``path`` fully loaded, EXIF-upright and in 8-bit RGB.

    Images whose header claims more than ``max_pixels`` pixels are refused before any pixel is
    decoded. ``draft_size`` is a speed hint for JPEGs (decode at 1/2, 1/4 or 1/8 scale while
    staying at least that large); it never changes whether an image is usable.
    Multi-frame images (GIF, TIFF) yield their first frame.

    Raises:
        UnusableImageError: the file is empty, not an image, truncated, too large or otherwise
            undecodable; the message is a short reason.
    """
    _check_file(path)
    return _open_checked(path, max_pixels, draft_size)


def _open_checked(
    path: str | os.PathLike[str], max_pixels: int, draft_size: tuple[int, int] | None
) -> Image.Image:
    try:
        return _decode(path, max_pixels, draft_size)
    except (UnusableImageError, MemoryError):
        raise
    except Exception as exc:  # PIL raises many types on bad input (OSError, SyntaxError, ...)
        raise UnusableImageError(_reason_from_exception(exc)) from exc


def read_rgb_tensor(
    path: str | os.PathLike[str],
    max_pixels: int = DEFAULT_MAX_PIXELS,
    draft_size: tuple[int, int] | None = None,
) -> torch.Tensor:
    """:func:`open_rgb` as a uint8 [3, H, W] tensor, decoded faster where that is safe.

    RGB and grayscale JPEGs that draft mode would not shrink to 1/4 go through TorchCodec's
    libjpeg-turbo decoder (same pixels, quicker than PIL on raw-size photos:
    ``python -m benchmarks.decode``).
    Everything else, and any JPEG that decoder rejects, goes through :func:`open_rgb`, so which
    files are usable, why not, and how they are oriented stay the same.
    """
    _check_file(path)
    if _is_plain_jpeg(path, max_pixels, draft_size, upright_only=False):
        try:
            return decode_jpeg(os.fspath(path), mode="RGB")  # EXIF orientation applied
        except Exception:  # truncated or corrupt: open_rgb says why
            pass
    return pil_to_tensor(_open_checked(path, max_pixels, draft_size))


def read_jpeg_bytes_or_rgb(
    path: str | os.PathLike[str],
    max_pixels: int = DEFAULT_MAX_PIXELS,
    draft_size: tuple[int, int] | None = None,
) -> torch.Tensor:
    """For decoding on the training device: the file's bytes (1-D uint8) when it is a plain,
    upright JPEG within ``max_pixels`` that draft mode would not shrink to 1/4, else the image
    as :func:`read_rgb_tensor` returns it.

    EXIF-rotated JPEGs are decoded here, so no device decoder has to get orientation right.
    """
    if not _is_plain_jpeg(path, max_pixels, draft_size, upright_only=True):
        return read_rgb_tensor(path, max_pixels, draft_size)
    try:
        return torch.frombuffer(bytearray(Path(path).read_bytes()), dtype=torch.uint8)
    except OSError as exc:
        raise _unreadable(exc) from exc


def _is_plain_jpeg(
    path: str | os.PathLike[str],
    max_pixels: int,
    draft_size: tuple[int, int] | None,
    upright_only: bool,
) -> bool:
    """Whether the header shows an RGB or grayscale JPEG within ``max_pixels`` that PIL's draft
    mode would not decode faster (and, with ``upright_only``, without an EXIF rotation)."""
    try:
        with _pil_bomb_check_off():
            img = Image.open(path)  # reads the header only
        with img:
            return (
                img.format == "JPEG"
                and img.mode in _PLAIN_JPEG_MODES
                and _bomb_reason(img.size, max_pixels) is None
                and not _draft_pays_off(img.size, draft_size)
                and not (upright_only and _orientation(img) not in (None, 1))
            )
    except Exception:  # unreadable, not an image: open_rgb says why
        return False


def _draft_pays_off(size: tuple[int, int], draft_size: tuple[int, int] | None) -> bool:
    """Whether PIL's draft mode would decode at 1/4 scale or less: only then does it beat a full
    TorchCodec decode plus tensor resize (README, Benchmarks)."""
    if draft_size is None:
        return False
    return min(size[0] // draft_size[0], size[1] // draft_size[1]) >= 4


def check_image(path: str | os.PathLike[str], max_pixels: int = DEFAULT_MAX_PIXELS) -> str | None:
    """Return None if :func:`open_rgb` would succeed on ``path``, else the reason it would not.

    The whole file is decoded (truncation only shows up then), but JPEGs at 1/8 scale for speed.
    """
    try:
        open_rgb(path, max_pixels=max_pixels, draft_size=(64, 64))
    except UnusableImageError as exc:
        return str(exc)
    return None
