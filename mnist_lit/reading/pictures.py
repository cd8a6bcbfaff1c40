"""Read picture files that anyone may send: every outcome is 28x28 pixels or a one-line
PictureError, whatever the bytes hold. predict.py and serve.py both read through here.

Try it: pytest tests/reading/test_pictures.py

Order matters. Pillow's Image.open reads only the header, so the size is checked (Pillow's
decompression-bomb check, as an error) before a single pixel is decoded. A PNG's chunk checksums are
verified before decoding it, because its decoder does not look at them: overwritten compressed data
would otherwise decode into noise, and noise gets a digit. Other formats' integrity checks (a
truncated JPEG, GIF, WebP or HEIC) run as they decode.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from mnist_lit.reading import segment
from mnist_lit.reading.preprocess import MAX_DETAIL, NoInkError, preprocess
from mnist_lit.reading.segment import Reading

T = TypeVar("T")
# the largest picture read: a 48 MP phone photo fits, and decodes in about 150 MB
MAX_PIXELS = 50_000_000
# Pillow's own bomb check, set deliberately to our limit instead of its 89 MP default: it warns
# above this and
# raises above twice this, both from the header. load() turns the warning into an error too, so
# nothing larger
# is ever decoded, and no warning reaches the console.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
# HEIC/HEIF, iPhones' camera format, from the `pictures` extra; libheif applies the photo's rotation
# itself
try:
    import pillow_heif
except ImportError:
    pillow_heif = None
else:
    pillow_heif.register_heif_opener()
HEIF_SUFFIXES = {".heic", ".heif", ".heics", ".heifs", ".hif"}
# ISO BMFF ftyp brands
HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}
HEIF_ERROR = "HEIC/HEIF needs the pillow-heif package: pip install 'mnist-lit[pictures]'"
# formats Pillow identifies but has no decoder for: a folder's videos are not pictures
UNDECODABLE = {"MPEG"}
SVG_SUFFIXES = {".svg", ".svgz"}
SVG_ERROR = "SVG is not supported; export it as PNG"
# how much of a file's start is searched for an <svg> tag
SNIFF_BYTES = 512
# formats whose checksums Pillow's verify() checks and its decoder does not
VERIFIED_FORMATS = {"PNG"}
# characters of a library's error message kept
MAX_REASON = 200
# the pixel count in Pillow's decompression-bomb message
BOMB_SIZE = re.compile(r"\((\d+) pixels\)")


class PictureError(ValueError):
    """A file that is not a picture this app can read; the message is one line, for the user."""


def picture_suffixes() -> set[str]:
    """File name endings of the formats Pillow (with the HEIF plugin) can open, in lower case; SVG
    counts too, so that it gets its own error rather than being passed over."""
    # loads every plugin, so that the registry is complete
    Image.init()
    openable = {
        ext
        for ext, fmt in Image.registered_extensions().items()
        if fmt in Image.OPEN and fmt not in UNDECODABLE and not _is_stub(Image.OPEN[fmt][0])
    }
    return openable | SVG_SUFFIXES | HEIF_SUFFIXES


def _is_stub(factory: object) -> bool:
    """Whether a format's opener is one of Pillow's stubs (HDF5, GRIB, ...), which identify a file
    but decode nothing; a factory function (JPEG's) is a real one."""
    return isinstance(factory, type) and issubclass(factory, ImageFile.StubImageFile)


def list_pictures(folder: Path) -> tuple[list[str], list[str]]:
    """A folder's picture files (sorted paths) and the names of the other files in it, which are
    skipped."""
    suffixes = picture_suffixes()
    files = sorted(p for p in folder.iterdir() if p.is_file())
    pictures = [str(p) for p in files if p.suffix.lower() in suffixes]
    return pictures, [p.name for p in files if p.suffix.lower() not in suffixes]


@contextmanager
def _quiet_pillow() -> Iterator[None]:
    """Pillow's warnings (odd EXIF, odd palettes) become silent; its decompression-bomb warning
    becomes an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # added last: matched first
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def _too_large(err: Exception) -> PictureError:
    found = BOMB_SIZE.search(str(err))
    size = f"{int(found.group(1)):,} pixels" if found else "too many pixels"
    return PictureError(f"picture too large ({size}; the limit is {MAX_PIXELS:,})")


def _open(source: bytes | str) -> Image.Image:
    """Image.open on a path or on bytes, with every failure as a PictureError; reads the header
    only."""
    try:
        return Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise _too_large(err) from None
    except (FileNotFoundError, PermissionError, IsADirectoryError) as err:
        raise PictureError(f"cannot read the file ({err.strerror})") from None
    except UnidentifiedImageError:
        head = _head(source)
        if b"<svg" in head.lower():
            raise PictureError(SVG_ERROR) from None
        if pillow_heif is None and head[4:8] == b"ftyp" and head[8:12] in HEIF_BRANDS:
            raise PictureError(HEIF_ERROR) from None
        raise PictureError("not a picture (no image format this app reads recognizes it)") from None
    except Exception as err:
        # a plugin's parser on a damaged header: struct.error, IndexError, ...
        raise PictureError(f"corrupt image ({_reason(err)})") from None


def _reason(err: Exception) -> str:
    """What a library said about a failure, on one line and not too long."""
    return (" ".join(str(err).split()) or type(err).__name__)[:MAX_REASON]


def _head(source: bytes | str) -> bytes:
    """The first SNIFF_BYTES of a file, for telling the formats apart that Pillow cannot open."""
    if isinstance(source, bytes):
        return source[:SNIFF_BYTES]
    with open(source, "rb") as f:
        return f.read(SNIFF_BYTES)


def _decode(img: Image.Image) -> None:
    """Decode the pixels, reduced where the format can (JPEG): any damage the decoder finds is a
    PictureError."""
    try:
        # a phone photo: JPEG can decode at 1/2, 1/4 or 1/8 scale for a fraction of the work and
        # memory; both
        # sides stay at least MAX_DETAIL, the most that preprocessing ever looks at
        img.draft(img.mode, (MAX_DETAIL, MAX_DETAIL))
        img.load()
    except Exception as err:
        # truncated or damaged data, as each decoder reports it
        raise PictureError(f"corrupt image ({_reason(err)})") from None


def read_picture(source: bytes | str | os.PathLike) -> np.ndarray:
    """A picture file's digit in MNIST's form, (28, 28) uint8; raises PictureError (one line) for
    anything else: not a picture, too large, corrupt, no ink."""
    return _read(source, lambda img: preprocess(img).pixels)


def read_digits(
    source: bytes | str | os.PathLike, mode: str = "auto", max_pixels: int = MAX_PIXELS
) -> Reading:
    """A picture file's digits (mnist_lit.reading.segment: one, or a number), each in MNIST's form
    with its box; raises PictureError as read_picture does, and for a picture of more than
    `max_pixels`."""
    return _read(source, lambda img: segment.read(img, mode), max_pixels)


def pixel_count(head: bytes) -> int | None:
    """Width times height from the first bytes of a picture file (its header), or None when they do
    not say."""
    try:
        with _quiet_pillow(), Image.open(io.BytesIO(head)) as img:
            return img.width * img.height
    except Exception:
        # any header Pillow cannot read: the full read reports why
        return None


def _read(
    source: bytes | str | os.PathLike,
    reader: Callable[[Image.Image], T],
    max_pixels: int = MAX_PIXELS,
) -> T:
    """Open, check and decode a picture safely, then hand it to `reader`; every failure is a
    PictureError."""
    source = source if isinstance(source, bytes) else os.fspath(source)
    if isinstance(source, str) and Path(source).suffix.lower() in SVG_SUFFIXES:
        raise PictureError(SVG_ERROR)
    with _quiet_pillow():
        img = _open(source)
        # from the header: nothing decoded yet
        if img.width * img.height > max_pixels:
            img.close()
            raise PictureError(
                f"picture too large ({img.width * img.height:,} pixels; the limit is "
                f"{max_pixels:,})"
            )
        try:
            if img.format in VERIFIED_FORMATS:
                try:
                    # chunk CRCs; it leaves the file unusable, so it is opened again
                    img.verify()
                except Exception as err:
                    raise PictureError(f"corrupt image ({_reason(err)})") from None
                img.close()
                img = _open(source)
            _decode(img)
            try:
                return reader(img)
            except NoInkError as err:
                raise PictureError(str(err)) from None
            except Exception as err:
                # pixels of a kind preprocessing cannot convert (a LAB TIFF, say)
                raise PictureError(
                    f"cannot use this picture's {img.mode} pixels ({_reason(err)})"
                ) from None
        finally:
            img.close()
