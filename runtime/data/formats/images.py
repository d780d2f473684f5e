"""Cheap up-front checks of one image file, so bad images are found (and counted) when
the data is read rather than mid-training, where tf.data decodes lazily.

Per image: the header (PIL opens it without decoding pixels) gives the format and size,
which catches empty files, text named .jpg, and images beyond the decompression-bomb
limit (tf.io decodes with no limit at all); the last bytes of a JPEG or PNG are checked
for its end marker, which catches truncated files, the usual corruption. Only a file
whose end marker is missing is decoded fully (by PIL) to confirm, so legal files with
trailing bytes are still accepted. Cost: one open and two small reads per image.
"""

from __future__ import annotations

from dataclasses import dataclass
import os
from pathlib import Path
import warnings

from runtime.data.errors import BadRow

PIXELS_ENV = "NETSPEC_MAX_IMAGE_PIXELS"
_TAIL = 4096
NATIVE, VIA_RGB, VIA_PIL = 0, 1, 2  # pipeline decoders, see `pipeline_decoder`
_END_MARKERS = {"JPEG": b"\xff\xd9", "MPO": b"\xff\xd9", "PNG": b"IEND"}


@dataclass(frozen=True)
class ImageInfo:
    path: str  # absolute
    width: int
    height: int
    format: str
    mode: str

    @property
    def kind(self) -> str:
        return f"{self.format}/{self.mode}"  # e.g. "JPEG/L"; see `pipeline_decoder`


def max_pixels() -> int | None:
    """The decompression-bomb limit: PIL's (about 89.5 M pixels) unless `NETSPEC_MAX_IMAGE_
    PIXELS` sets another (0 = no limit), for users who trust their large images."""
    from PIL import Image

    raw = os.environ.get(PIXELS_ENV, "").strip()
    if not raw:
        return Image.MAX_IMAGE_PIXELS
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        raise BadRow(f"{PIXELS_ENV}={raw!r} is not a whole number of pixels",
                     hint=f"e.g. {PIXELS_ENV}=200000000, or 0 for no limit") from None
    return value if value > 0 else None


def bomb_row(path: str, width: int, height: int, limit: int) -> BadRow:
    return BadRow(f"image {path} is {width}x{height} = {width * height:,} pixels, beyond the "
                  f"decompression-bomb limit of {limit:,} pixels",
                  hint=f"if you trust the file, allow it with {PIXELS_ENV}="
                       f"{width * height} (0 = no limit); else shrink or remove it")


def read_header(path: str | Path) -> ImageInfo:
    """Format and size of an existing image file, or a `BadRow` saying why it is unusable."""
    from PIL import Image, UnidentifiedImageError

    full = os.path.abspath(path)
    try:
        size = os.path.getsize(full)
    except OSError as exc:
        raise BadRow(f"cannot read image {full} ({exc.strerror or exc})") from None
    if size == 0:
        raise BadRow(f"image file {full} is empty (0 bytes)", hint="re-export or delete it")
    limit = max_pixels()
    saved = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = None  # the header allocates nothing; the limit is ours
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(full) as im:
                info = ImageInfo(full, int(im.width), int(im.height), str(im.format), im.mode)
    except UnidentifiedImageError:
        raise BadRow(f"{full} is not an image file (unknown or corrupt format)",
                     hint="use JPEG, PNG or BMP images, or delete the file") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadRow(f"image {full} cannot be decoded ({exc})",
                     hint="the file is damaged or truncated; re-export or delete it") from None
    finally:
        Image.MAX_IMAGE_PIXELS = saved
    if info.width < 1 or info.height < 1:
        raise BadRow(f"image {full} is empty ({info.width}x{info.height})")
    if limit is not None and info.width * info.height > limit:
        raise bomb_row(full, info.width, info.height, limit)
    return info


def check_complete(info: ImageInfo) -> None:
    """A `BadRow` when a JPEG/PNG lacks its end marker and PIL confirms it is truncated."""
    marker = _END_MARKERS.get(info.format)
    if marker is None:
        return
    with open(info.path, "rb") as f:
        f.seek(max(0, os.path.getsize(info.path) - _TAIL))
        if marker in f.read():
            return
    decode_fully(info.path)


def decode_fully(path: str) -> None:
    """Decodes every pixel (PIL); a `BadRow` when that fails. The caller checked the size."""
    from PIL import Image

    saved = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = None  # read_header already applied the limit
        with Image.open(path) as im:
            im.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadRow(f"image {path} cannot be decoded ({exc})",
                     hint="the file is damaged or truncated; re-export or delete it") from None
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def pipeline_decoder(fmt: str, channels: int) -> int:
    """How the tf.data pipeline decodes an image of PIL format/mode `fmt` ("JPEG/L"):
    NATIVE (tf.io at `channels`), VIA_RGB (tf.io at 3 channels, then converted: BMP, GIF,
    WebP and CMYK JPEG fail a gray request) or VIA_PIL (formats tf.io cannot read: PPM,
    TIFF, 1-bit BMP, ...)."""
    name, _, mode = fmt.partition("/")
    if name == "PNG" or (name in ("JPEG", "MPO") and mode in ("L", "RGB")):
        return NATIVE
    if name in ("BMP", "GIF", "WEBP", "JPEG", "MPO") and mode != "1":
        return NATIVE if channels == 3 else VIA_RGB
    return VIA_PIL


def decoder_for_suffix(path: str, channels: int) -> int:
    """`pipeline_decoder` guessed from the file name, for images no reader looked at."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix in (".png", ".jpg", ".jpeg"):
        return NATIVE
    if suffix in (".bmp", ".gif", ".webp"):
        return NATIVE if channels == 3 else VIA_RGB
    return VIA_PIL


def pil_decode(path: str, channels: int):  # noqa: ANN201 - numpy array for tf.numpy_function
    """uint8 [H, W, channels] of the first frame (gray = PIL's ITU-R 601 luma)."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as im:
        im.seek(0)
        return np.asarray(im.convert("L" if channels == 1 else "RGB"), np.uint8).reshape(
            im.height, im.width, channels)
