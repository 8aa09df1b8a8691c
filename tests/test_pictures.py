"""Pictures of every bit depth keep their ink: 16-bit gray, 16-bit RGB and 32-bit float scans are scaled by
their own range, not clipped to 8 bits (predict.py and serve.py decode with data/pictures.py)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from drawn_digits import render
from PIL import Image

from mnist_classifier.data.mnist_style import ImageRejected
from mnist_classifier.data.pictures import decode_gray, read_digit

PAPER, INK = 60000, 8000  # a 16-bit scan: dark ink on light paper, both far above 255


def sixteen_bit_levels() -> np.ndarray:
    """A drawn 4 as 16-bit levels: ink 8000 on paper 60000."""
    ink = np.asarray(render(4, size=120), dtype=np.float32) / 255.0  # black ink (0) on white (1)
    return np.round(INK + ink * (PAPER - INK)).astype(np.uint16)


def rgb48_png(levels: np.ndarray) -> bytes:
    """A 16-bit-per-channel RGB PNG, written by hand: Pillow reads such files but does not write them."""
    height, width = levels.shape
    rgb = np.repeat(levels[..., None], 3, axis=2).astype(">u2")
    raw = b"".join(b"\x00" + row.tobytes() for row in rgb)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def saved(image: Image.Image, path: Path) -> Path:
    image.save(path)
    return path


@pytest.mark.parametrize(
    ("kind", "write"),
    [
        ("16-bit gray PNG", lambda d, v: saved(Image.fromarray(v), d / "gray16.png")),
        ("16-bit RGB PNG", lambda d, v: (d / "rgb48.png").write_bytes(rgb48_png(v)) and d / "rgb48.png"),
        ("float TIFF in [0, 1]", lambda d, v: saved(Image.fromarray((v / 65535.0).astype(np.float32)), d / "unit.tif")),
        (
            "float TIFF in 16-bit units",
            lambda d, v: saved(Image.fromarray(v.astype(np.float32)), d / "f.tif"),
        ),
    ],
)
def test_every_bit_depth_keeps_its_ink(kind: str, write, tmp_path: Path) -> None:
    levels = sixteen_bit_levels()
    path = write(tmp_path, levels)
    gray = decode_gray(path, 10**6)
    assert np.abs(gray - levels / 65535).max() < 0.01, kind
    digit = read_digit(path, "mnist", 10**6)
    assert digit.status == "ok", kind
    eight_bit = read_digit(io.BytesIO(rgb48_png(sixteen_bit_levels())), "mnist", 10**6)
    assert np.abs(digit.pixels - eight_bit.pixels).max() < 0.05, "the same digit at every depth"


def exif_png(exif: bytes) -> bytes:
    """A white 40x30 PNG with a black bar, carrying the given EXIF block."""
    image = Image.new("L", (40, 30), 255)
    image.paste(0, (10, 5, 20, 25))
    buffer = io.BytesIO()
    image.save(buffer, "PNG", exif=exif)
    return buffer.getvalue()


def test_a_malformed_exif_block_is_the_pictures_status_not_a_crash() -> None:
    """Orientation 6 (so the picture is turned) beside a SHORT tag stored as a LONG too large for it: Pillow
    raises struct.error while writing the turned picture's EXIF back. It was a traceback in predict.py
    (no predictions.csv for the other inputs) and an HTTP 500 from serve.py."""
    entries = struct.pack(">HHLHH", 0x0112, 3, 1, 6, 0) + struct.pack(">HHLL", 0x0128, 4, 1, 70_000)
    exif = b"MM\x00*" + struct.pack(">L", 8) + struct.pack(">H", 2) + entries + struct.pack(">L", 0)
    digit = read_digit(io.BytesIO(exif_png(exif)), "mnist", 10**6)
    assert digit.status.startswith("corrupt or truncated image ("), digit.status
    turned = b"MM\x00*" + struct.pack(">LHHHLHHL", 8, 1, 0x0112, 3, 1, 6, 0, 0)
    well_formed = read_digit(io.BytesIO(exif_png(turned)), "mnist", 10**6)
    assert well_formed.status == "ok", "a good EXIF orientation still turns the picture"


def ico_around(png: bytes) -> bytes:
    """An ICO file whose directory says 16x16 and whose one entry is the given PNG."""
    header = struct.pack("<HHH", 0, 1, 1) + struct.pack("<BBBBHHII", 16, 16, 0, 0, 1, 32, len(png), 22)
    return header + png


@pytest.mark.filterwarnings("ignore:Image was not the expected size")  # Pillow's, opening the ICO below
@pytest.mark.parametrize("kind", ["ICO around a 3000x3000 PNG", "EPS", "PPM"])
def test_formats_outside_the_promised_six_are_refused_unread(kind: str) -> None:
    """Pillow decodes an ICO's embedded PNG while opening it, before its size can be checked (a 16x16 header
    around 9 Mpixels here, against a 1 Mpixel limit); EPS goes to Ghostscript. Neither is opened."""
    big = io.BytesIO()
    Image.new("L", (3000, 3000), 255).save(big, "PNG")
    files = {
        "ICO around a 3000x3000 PNG": ico_around(big.getvalue()),
        "EPS": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\nshowpage\n",
        "PPM": ppm_file(),
    }
    assert Image.open(io.BytesIO(files[kind])).format, f"Pillow itself identifies the {kind} file"
    with pytest.raises(ImageRejected, match=r"not an image \(PNG, JPEG, BMP, GIF, TIFF or WebP\)"):
        decode_gray(io.BytesIO(files[kind]), 10**6)


def ppm_file() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (28, 28), 0).save(buffer, "PPM")
    return buffer.getvalue()
