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
