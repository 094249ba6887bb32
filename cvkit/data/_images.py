"""Reading images safely: the one function every cvkit module uses to turn a file into pixels.

Why one function: every way an image can surprise you (EXIF rotation, CMYK, 16-bit, palette with
transparency, a truncated download, a text file named ``.jpg``, a decompression bomb) is handled
here once, so the featurizer, the widgets and the web service all see the same RGB ``uint8`` array.

Example:
    >>> from cvkit.data import read_image
    >>> read_image("sample_data/bird/owl.jpg", size=224).shape
    (224, 224, 3)
"""
from __future__ import annotations

import io
import os
import stat
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "resize", "PathLike", "read_file", "check_regular_file", "MAX_FILE_BYTES",
    "IMAGE_EXTENSIONS",
    "MAX_IMAGE_PIXELS",
    "ImageReadError",
    "EncodedImage",
    "is_image_path",
    "open_image",
    "read_image",
    "check_image",
    "check_image_batch",
]

#: File extensions treated as images (compared case-insensitively).
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})

#: Decompression-bomb guard: images with more pixels than this are refused (about 16k x 10k).
#: This is the one pixel limit: ``read_image(..., max_pixels=...)`` overrides it per call.
MAX_IMAGE_PIXELS = 178_956_970

# Pillow has a pixel limit of its own (a warning above 89,478,485 pixels, an error above twice
# that), read from a global on every Image.open. It would refuse images cvkit's documented limit
# allows, and max_pixels=None could never lift it; changing the global around each call would race
# between reader threads. So cvkit turns Pillow's check off once, here, and checks every image's
# size from its header itself (open_image) before a single pixel is decoded. Note for other code in
# the same process: after cvkit.data._images is imported, plain Image.open no longer warns about
# huge images; read through cvkit.data.read_image to keep a limit.
Image.MAX_IMAGE_PIXELS = None

#: The largest image file cvkit reads, in bytes: far above any real photo (a 100-megapixel camera
#: JPEG is 30-60 MB), yet it stops a link to ``/dev/zero`` named ``x.jpg`` from eating the memory.
MAX_FILE_BYTES = 512 * 1024 * 1024

#: A file system path, as ``open`` takes it.
PathLike = str | os.PathLike
#: What :func:`read_image` reads: a path, bytes, or a binary file object.
EncodedImage = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO

# Grey value used when flattening transparency: white, the background cut-outs expect.
_BACKGROUND = (255, 255, 255)


class ImageReadError(ValueError):
    """An image could not be read. ``source`` names the file (or ``<bytes>``), ``reason`` says why."""

    def __init__(self, source: object, reason: str):
        self.source = str(source)
        self.reason = reason
        super().__init__(f"{self.source}: {reason}")


def is_image_path(path: str | os.PathLike) -> bool:
    """True when ``path`` has an image extension and is not a hidden file (``.name`` or ``._name``)."""
    p = Path(path)
    return not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS


def check_regular_file(path: PathLike, max_bytes: int | None = MAX_FILE_BYTES) -> int:
    """The size of ``path`` if it is a regular file (links followed) of at most ``max_bytes``.

    Raises :class:`ImageReadError` otherwise, before anything opens the file: a FIFO, socket or
    device named ``x.jpg`` would block ``open()`` or never end, so it is refused by its ``stat``.

    Example:
        >>> try:
        ...     check_regular_file("/dev/null")
        ... except ImageReadError as exc:
        ...     print(exc.reason)
        not a regular file (a character device)
    """
    name = os.fspath(path)
    try:
        info = os.stat(name)
    except FileNotFoundError:
        raise ImageReadError(name, "file not found") from None
    except OSError as exc:
        raise ImageReadError(name, f"cannot open file ({exc.strerror or exc})") from None
    if not stat.S_ISREG(info.st_mode):
        raise ImageReadError(name, f"not a regular file ({_file_kind(info.st_mode)})")
    if max_bytes is not None and info.st_size > max_bytes:
        raise ImageReadError(name, f"file too large: {info.st_size} bytes exceeds the limit of {max_bytes}")
    return info.st_size


def _file_kind(mode: int) -> str:
    kinds = [(stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")]
    return next((kind for test, kind in kinds if test(mode)), "not a file")


def read_file(path: PathLike, max_bytes: int | None = MAX_FILE_BYTES) -> bytes:
    """The bytes of an image file, after :func:`check_regular_file`; raises :class:`ImageReadError`.

    Reads at most ``max_bytes + 1`` bytes, so a file that grows while it is read is still bounded.
    """
    check_regular_file(path, max_bytes)
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            data = f.read() if max_bytes is None else f.read(max_bytes + 1)
    except OSError as exc:
        raise ImageReadError(name, f"cannot read file ({exc.strerror or exc})") from None
    if max_bytes is not None and len(data) > max_bytes:
        raise ImageReadError(name, f"file too large: more than {max_bytes} bytes")
    return data


def _describe(source: EncodedImage) -> str:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "<bytes>"
    if hasattr(source, "read"):
        return str(getattr(source, "name", "<stream>"))
    return os.fspath(source)


def _as_size(size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    """Normalise ``size`` to ``(width, height)``; an int means a square."""
    if size is None:
        return None
    if isinstance(size, int):
        return (size, size)
    width, height = size
    return (int(width), int(height))


def open_image(source: EncodedImage, size: int | tuple[int, int] | None = None,
               max_pixels: int | None = MAX_IMAGE_PIXELS) -> Image.Image:
    """Open ``source`` as a fully loaded RGB :class:`PIL.Image.Image`, upright per its EXIF tag.

    ``size`` is only a hint for JPEG draft mode (decode at 1/2, 1/4 or 1/8 scale when the result
    stays at least that large); the image is *not* resized here. ``max_pixels`` (width x height,
    read from the header before decoding) is the only pixel limit; ``None`` lifts it. Raises
    :class:`ImageReadError`.

    Example:
        >>> open_image("sample_data/bird/adelaide-rosella.jpg", size=64).mode
        'RGB'
    """
    return _open(source, size, max_pixels, upright_rgb=True)


def _open(source: EncodedImage, size: int | tuple[int, int] | None, max_pixels: int | None,
          upright_rgb: bool) -> Image.Image:
    """:func:`open_image`; with ``upright_rgb=False`` the decoded image is returned as stored
    (no EXIF turn, no colour conversion): enough to know that it decodes, at a fraction of the memory."""
    name = _describe(source)
    target = _as_size(size)
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise ImageReadError(name, "empty data (0 bytes)")
        stream: BinaryIO = io.BytesIO(bytes(source))
    elif hasattr(source, "read"):
        stream = source  # type: ignore[assignment]
    else:
        check_regular_file(source)  # a FIFO or device would block open() or never end
        try:
            stream = open(source, "rb")  # closed below; Pillow never closes a file it was handed
        except FileNotFoundError:
            raise ImageReadError(name, "file not found") from None
        except OSError as exc:
            raise ImageReadError(name, f"cannot open file ({exc.strerror or exc})") from None

    try:
        if stream.seek(0, os.SEEK_END) == 0:
            raise ImageReadError(name, "empty file (0 bytes)")
        stream.seek(0)
        img = Image.open(stream)  # reads the header only: the size is known, nothing is decoded
        w, h = img.size
        if max_pixels is not None and w * h > max_pixels:
            raise ImageReadError(name, f"image too large: {w}x{h} = {w * h} pixels exceeds the "
                                       f"limit of {max_pixels} (possible decompression bomb)")
        if target is not None and img.format == "JPEG":
            # Draft mode decodes at a reduced scale inside libjpeg: far less work for big photos.
            # Ask for the larger side both ways, since EXIF rotation may swap width and height.
            side = max(target)
            img.draft("RGB", (side, side))
        img.load()  # pixels are in memory from here on, so closing the file is safe
        if not upright_rgb:
            img.getexif()  # a corrupt EXIF block is found here too, not only when reading
            return img
        if img.getexif().get(0x0112, 1) != 1:  # only rotated images pay for a transpose
            img = ImageOps.exif_transpose(img)
        return _to_rgb(img)
    except ImageReadError:
        raise
    except UnidentifiedImageError:
        raise ImageReadError(name, "not an image file, or a format Pillow cannot read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageReadError(name, f"image too large (possible decompression bomb): {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as exc:
        reason = str(exc) or type(exc).__name__
        if "truncated" in reason.lower():
            reason = f"truncated or corrupt image data ({reason})"
        raise ImageReadError(name, f"corrupt image: {reason}") from None
    finally:
        if stream is not source:
            stream.close()


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB; transparency is flattened onto white."""
    if img.mode == "RGB":
        return img
    if img.mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.clip(arr / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        img = Image.fromarray(arr)
    elif img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        hi = arr.max() if arr.size and arr.max() > 1.0 else 1.0
        img = Image.fromarray(np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8))
    if img.mode in ("LA", "PA", "La"):
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "RGBa"):
        background = Image.new("RGB", img.size, _BACKGROUND)
        background.paste(img, mask=img.getchannel("A"))
        return background
    return img.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV ...


def _resize_image(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    # reducing_gap makes large downscales cheap (box-reduce first) with negligible quality loss.
    return img.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)


def resize(pixels: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resize an RGB ``uint8`` array to ``size`` (an int, or ``(width, height)``) as :func:`read_image` does.

    The one resize of cvkit (bilinear, aspect ratio not kept), so arrays and files given to a model
    come out identical. An array already at ``size`` is returned as it is.

    Example:
        >>> resize(np.zeros((10, 20, 3), np.uint8), (40, 30)).shape
        (30, 40, 3)
    """
    width, height = _as_size(size)
    if pixels.shape[0] == height and pixels.shape[1] == width:
        return pixels
    img = Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8))
    return np.asarray(_resize_image(img, (width, height)), dtype=np.uint8)


def read_image(source: EncodedImage, size: int | tuple[int, int] | None = None,
               max_pixels: int | None = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Read an image file (or bytes, or a binary stream) as an RGB ``uint8`` array of shape (H, W, 3).

    - EXIF orientation is applied; grayscale, palette, RGBA (flattened onto white), CMYK and 16-bit
      images all come out as 8-bit RGB.
    - ``size`` (an int for a square, or ``(width, height)``) resizes to exactly that size. JPEGs are
      then decoded at a reduced scale where possible (Pillow's draft mode), which is much faster for
      large photos.
    - Images above ``max_pixels`` are refused (decompression-bomb guard).

    Raises :class:`ImageReadError` naming the file and the reason; it never modifies the file.

    Example:
        >>> img = read_image("sample_data/bird/adelaide-rosella.jpg", size=224)
        >>> img.dtype, img.shape
        (dtype('uint8'), (224, 224, 3))
    """
    img = open_image(source, size=size, max_pixels=max_pixels)
    target = _as_size(size)
    if target is not None and img.size != target:
        img = _resize_image(img, target)
    return np.asarray(img, dtype=np.uint8)


def check_image(path: str | os.PathLike) -> str | None:
    """Return ``None`` if ``path`` decodes as an image, else the reason it does not.

    Decodes the whole file (a truncated JPEG is only found by decoding it) but at the smallest
    draft scale, so checking is cheap. Used by :class:`~cvkit.data.ImageDataset` to skip bad files.

    Example:
        >>> check_image("sample_data/bird/adelaide-rosella.jpg") is None, check_image("/dev/null")
        (True, 'not a regular file (a character device)')
    """
    try:
        _open(path, (8, 8), MAX_IMAGE_PIXELS, upright_rgb=False)
    except ImageReadError as exc:
        return exc.reason
    return None


def check_image_batch(images: np.ndarray) -> None:
    """Raise a clear error unless ``images`` is a uint8 RGB batch of shape (n, height, width, 3).

    Used wherever cvkit accepts arrays of pixels instead of files (featurizer, classifiers).
    """
    if images.ndim != 4 or images.shape[-1] != 3:
        hint = " (a single image: pass x[None])" if images.ndim == 3 else ""
        raise ValueError(f"image arrays must have shape (n, height, width, 3), got {images.shape}{hint}")
    if images.dtype != np.uint8:
        raise TypeError(f"image arrays must be uint8 RGB (0..255), got dtype {images.dtype}; "
                        "convert with np.clip(x, 0, 255).astype(np.uint8)")
