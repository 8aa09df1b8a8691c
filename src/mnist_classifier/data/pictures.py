"""One picture as untrusted data: decoded with Pillow (pixel limit before decoding, first frame, alpha on
white, every bit depth) and turned into a 28x28 digit. numpy and Pillow only, no torch: predict.py and
the server (serving an ONNX model without torch) decode with this one implementation.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mnist_classifier.data.mnist_style import PREPROCESSORS, ImageRejected

OK = "ok"
SIXTEEN_BIT = 65535.0
# The formats the README promises, and no others: some of Pillow's other plugins decode an embedded picture
# while opening, before its size can be checked (ICO, ICNS), or hand the file to another program (EPS:
# Ghostscript).
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP")
NOT_AN_IMAGE = "not an image (PNG, JPEG, BMP, GIF, TIFF or WebP)"

# The pixel limit is max_pixels, checked below from the header: Pillow's own warning over its MAX_IMAGE_PIXELS
# (89 Mpixels) would only repeat it on the console. Set once at import, so that the decoding processes
# (forked or spawned) have it too; Pillow still refuses pictures over twice its limit (179 Mpixels).
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning, module=r"PIL\.")


def gray_levels(image: Image.Image) -> np.ndarray:
    """Float gray levels in [0, 1] at the picture's own depth. Pillow's convert("L") clips 16-bit and float
    values to 8 bits (a 16-bit scan, ink 8000 on paper 60000, turns all white), so those modes are scaled
    by their range instead: 16-bit integers by 65535; floats as they are when in [0, 1], else by the
    8-bit or 16-bit range they fit."""
    if image.mode.startswith("I") or image.mode == "F":
        values = np.nan_to_num(np.asarray(image, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        top = float(values.max(initial=0.0))
        scale = SIXTEEN_BIT if image.mode.startswith("I") else next(s for s in (1.0, 255.0, SIXTEEN_BIT, top) if top <= s)
        return np.clip(values / scale, 0.0, 1.0)
    return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


def decode_gray(source: str | Path | IO[bytes], max_pixels: int, limit_key: str = "max_pixels") -> np.ndarray:
    """A picture in one of FORMATS (first frame; alpha composited on white) as float gray levels in [0, 1].
    The size is checked from the header, before any pixel is decoded (decompression bombs); a refusal names
    the config key of the limit (`limit_key`: predict.py's max_pixels, serve.py's limits.max_pixels)."""
    try:
        with Image.open(source, formats=FORMATS) as opened:
            width, height = opened.size
            if width * height > max_pixels:
                raise ImageRejected(
                    f"image too large: {width}x{height} pixels is over the limit of {max_pixels:,} ({limit_key})"
                )
            opened.seek(0)  # GIF, TIFF, WebP animations: the first frame
            image = ImageOps.exif_transpose(opened)  # photos: the way the camera held them
            if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
                rgba = image.convert("RGBA")
                image = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
            gray = gray_levels(image)
    except ImageRejected:
        raise
    except FileNotFoundError as err:
        raise ImageRejected("missing file") from err
    except UnidentifiedImageError as err:
        raise ImageRejected(NOT_AN_IMAGE) from err
    except Image.DecompressionBombError as err:
        raise ImageRejected(f"image too large: {err}") from err
    except Exception as err:  # noqa: BLE001  # whatever a crafted file makes a decoder raise (struct.error
        # from a malformed EXIF block, ...) is that file's fault, reported as its status
        raise ImageRejected(f"corrupt or truncated image ({err})") from err
    return gray


def decode_bytes(data: bytes, max_pixels: int) -> np.ndarray:
    return decode_gray(BytesIO(data), max_pixels)


@dataclass(frozen=True)
class Digit:
    """A preprocessed input: 28x28 pixels in [0, 1], white digit on black (zeros if it failed)."""

    pixels: np.ndarray
    status: str = OK


def failed(status: str) -> Digit:
    return Digit(np.zeros((28, 28), np.float32), status)


def prepare_digit(gray: np.ndarray, preprocess: str) -> Digit:
    try:
        return Digit(PREPROCESSORS[preprocess](gray))
    except ImageRejected as err:
        return failed(str(err))


def read_digit(
    source: str | Path | IO[bytes], preprocess: str, max_pixels: int, limit_key: str = "max_pixels"
) -> Digit:
    """Decode and preprocess one picture; a picture that cannot be used gives a Digit whose status says why."""
    try:
        gray = decode_gray(source, max_pixels, limit_key)
    except ImageRejected as err:
        return failed(str(err))
    return prepare_digit(gray, preprocess)


def read_digits(pictures: Sequence[bytes | bytearray], preprocess: str, max_pixels: int) -> list[Digit]:
    """read_digit for the uploads of one request (serve.py runs it in its decoding processes)."""
    return [read_digit(BytesIO(data), preprocess, max_pixels, "limits.max_pixels") for data in pictures]
