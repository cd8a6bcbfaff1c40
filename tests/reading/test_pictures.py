"""The picture loader: every format people have, bombs, corrupt data, folders, and fuzzed bytes.

Run: pytest tests/reading/test_pictures.py
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from mnist_lit.inference.sources import find_images
from mnist_lit.reading.pictures import (
    MAX_PIXELS,
    SVG_ERROR,
    PictureError,
    list_pictures,
    read_picture,
)
from mnist_lit.reading.samples import FORMATS, FUZZED, encode, png_declaring, seven

# a damaged file must be answered within this, on the slowest CI machine
CASE_SECONDS = 5.0


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return read_picture(encode(seven(), "PNG"))


def similar(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of two 28x28 inputs: 1 for the same picture."""
    return float(np.corrcoef(a.ravel().astype(float), b.ravel().astype(float))[0, 1])


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_reads_as_the_same_digit(fmt, reference):
    assert similar(read_picture(encode(seven(), fmt)), reference) > 0.95


@pytest.mark.parametrize(
    ("mode", "make"),
    [
        (
            "16-bit grey",
            lambda img: Image.fromarray(np.asarray(img.convert("L")).astype(np.uint16) * 257),
        ),
        ("CMYK", lambda img: img.convert("CMYK")),
        ("palette with transparency", lambda img: img.convert("P", colors=8)),
    ],
)
def test_unusual_pixel_modes_read_as_the_same_digit(mode, make, reference):
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    assert similar(read_picture(encode(make(seven()), fmt)), reference) > 0.95, mode


def test_the_first_frame_of_an_animated_gif_is_read(reference):
    blank = Image.new("RGB", (96, 96), (236, 234, 228))
    data = encode(seven(), "GIF", save_all=True, append_images=[blank, blank])
    assert similar(read_picture(data), reference) > 0.95


@pytest.mark.parametrize("fmt", ["HEIF", "JPEG"])
def test_a_phone_photo_with_exif_rotation_is_read_upright(fmt, reference):
    # a phone stores the sensor's pixels sideways, with an EXIF orientation that says how to turn
    # them: 6 = the
    # viewer turns them 90 degrees clockwise, so the stored pixels are the upright picture turned
    # anticlockwise
    sideways = seven().transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    read = read_picture(encode(sideways, fmt, exif=exif.tobytes()))
    assert similar(read, reference) > 0.95
    # without the tag it is another picture
    assert similar(read_picture(encode(sideways, fmt)), reference) < 0.5


# above twice the limit (Pillow's error), and above it (its warning)
@pytest.mark.parametrize("side", [20000, 8000])
def test_a_decompression_bomb_is_refused_from_its_header_without_warnings(side):
    assert side * side > MAX_PIXELS
    with warnings.catch_warnings():
        # any warning reaching the caller fails the test
        warnings.simplefilter("error")
        with pytest.raises(
            PictureError, match=rf"picture too large \({side * side:,} pixels; the limit is"
        ):
            read_picture(png_declaring(side, side))


def test_png_with_overwritten_data_is_corrupt_not_a_digit():
    data = bytearray(encode(seven((200, 200)), "PNG"))
    start = data.index(b"IDAT") + 4
    middle = start + (len(data) - start) // 2
    # the chunk's CRC no longer matches
    data[middle : middle + 8] = bytes(8)
    with pytest.raises(PictureError, match="corrupt image"):
        read_picture(bytes(data))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP", "TIFF", "BMP", "HEIF"])
@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_a_truncated_picture_is_corrupt(fmt, keep):
    data = encode(seven((160, 160)), fmt)
    with pytest.raises(PictureError, match="corrupt image|not a picture"):
        read_picture(data[: int(len(data) * keep)])


def test_svg_gets_its_own_error(tmp_path):
    svg = (
        b'<?xml version="1.0"?>'
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>'
    )
    (tmp_path / "d.svg").write_bytes(svg)
    for source in (svg, tmp_path / "d.svg"):
        with pytest.raises(PictureError, match=SVG_ERROR):
            read_picture(source)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"just some text, not a picture", "not a picture"), (b"", "not a picture")],
)
def test_other_files_are_not_pictures(content, message):
    with pytest.raises(PictureError, match=message):
        read_picture(content)


def test_a_missing_file_is_a_one_line_error(tmp_path):
    with pytest.raises(PictureError, match="cannot read the file"):
        read_picture(tmp_path / "gone.png")


def test_a_folder_lists_every_picture_format_and_names_what_it_skips(tmp_path):
    for fmt, name in (
        ("PNG", "a.png"),
        ("ICO", "b.ico"),
        ("HEIF", "c.heic"),
        ("AVIF", "d.avif"),
        ("TIFF", "e.tif"),
    ):
        (tmp_path / name).write_bytes(encode(seven(), fmt))
    (tmp_path / "f.svg").write_text("<svg></svg>")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "data.csv").write_text("1,2")
    pictures, skipped = list_pictures(tmp_path)
    assert [p.rsplit("/", 1)[-1] for p in pictures] == [
        "a.png",
        "b.ico",
        "c.heic",
        "d.avif",
        "e.tif",
        "f.svg",
    ]
    assert skipped == ["data.csv", "notes.txt"]
    assert (
        find_images(str(tmp_path)).skipped_line()
        == "skipped 2 file(s) that are not pictures: data.csv, notes.txt"
    )


def samples() -> dict[str, bytes]:
    """The project's own small valid pictures, one per fuzzed format."""
    return {fmt: encode(seven((64, 64)), fmt) for fmt in FUZZED}


SAMPLES = samples()


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    """A valid sample damaged one way: random bytes, a truncation, bit flips, or a header declaring
    a huge size."""
    data = bytearray(SAMPLES[draw(st.sampled_from(FUZZED))])
    how = draw(st.sampled_from(["random", "truncate", "flip", "huge"]))
    if how == "random":
        return draw(st.binary(max_size=2048))
    # every length class: the header, its end, the data, the last bytes
    if how == "truncate":
        return bytes(data[: draw(st.integers(0, len(data) - 1))])
    if how == "flip":
        for _ in range(draw(st.integers(1, 16))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
        return bytes(data)
    # huge: large numbers written over the header, where the width and height live in most formats
    at = draw(st.integers(0, min(64, len(data) - 4)))
    data[at : at + 4] = draw(
        st.sampled_from([b"\xff\xff\xff\xff", b"\x00\x00\xff\xff", b"\x7f\xff\x00\x00"])
    )
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged())
def test_damaged_pictures_get_an_answer_or_a_one_line_error_in_bounded_time(data):
    start = time.perf_counter()
    try:
        outcome = read_picture(data)
    except PictureError as err:
        outcome = str(err)
    assert time.perf_counter() - start < CASE_SECONDS
    if isinstance(outcome, str):
        assert outcome
        assert "\n" not in outcome
    else:
        assert outcome.shape == (28, 28)
        assert outcome.dtype == np.uint8
