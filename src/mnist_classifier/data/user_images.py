"""Images a user gives predict.py or the demo: found from paths, folders and globs, decoded with Pillow as
untrusted data (pixel limit before decoding, first frame, alpha on white), and turned into 28x28 digits.

Every input gives a row: a file that cannot be read gets a status that says why, and the others go on.
"""

from __future__ import annotations

import glob
import itertools
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import IO

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch.utils.data import Dataset

from mnist_classifier.data.mnist_style import PREPROCESSORS, ImageRejected

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
OK = "ok"
MAX_GLOB_FILES = 100_000  # a glob matching more is cut short, with a row that says so


@dataclass(frozen=True)
class InputFile:
    """One input: a path to read, or a status saying why there is nothing to read."""

    path: str
    status: str = OK


def find_inputs(inputs: str | Sequence[str]) -> list[InputFile]:
    """Files from a file, a folder (recursively, image files only), a glob, or a list of those; in the
    order given, folders and globs sorted, each file once (however many paths or links reach it). A path
    that matches nothing gives a row that says so."""
    found: list[InputFile] = []
    for item in [inputs] if isinstance(inputs, str) else list(inputs):
        path = Path(str(item)).expanduser()
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            found += [InputFile(str(p)) for p in files] or [InputFile(str(path), "no image files in this folder")]
        elif path.is_file():
            found.append(InputFile(str(path)))
        elif glob.has_magic(str(item)):
            found += _glob_inputs(path) or [InputFile(str(item), "no files match this pattern")]
        else:
            found.append(InputFile(str(path), "missing file"))
    return _each_file_once(found)


def _glob_inputs(pattern: Path) -> list[InputFile]:
    """pathlib's glob: `**` does not descend into linked folders, so a link loop (`a -> .`) is walked
    once. At most MAX_GLOB_FILES files; a row says where the pattern was cut short."""
    parts = pattern.parts
    first_magic = next(i for i, part in enumerate(parts) if glob.has_magic(part))
    root = Path(*parts[:first_magic]) if first_magic else Path()
    matches = (p for p in root.glob(str(Path(*parts[first_magic:]))) if p.is_file())
    files = sorted(itertools.islice(matches, MAX_GLOB_FILES + 1))
    rows = [InputFile(str(p)) for p in files[:MAX_GLOB_FILES]]
    if len(files) > MAX_GLOB_FILES:
        rows.append(InputFile(str(pattern), f"pattern stopped after {MAX_GLOB_FILES} files: narrow it"))
    return rows


def _each_file_once(found: list[InputFile]) -> list[InputFile]:
    """The first row of each file; paths through links to the same file are dropped."""
    seen: set[Path] = set()
    once = []
    for item in found:
        real = Path(os.path.realpath(item.path))
        if item.status == OK and real in seen:
            continue
        seen.add(real)
        once.append(item)
    return once


def decode_gray(source: str | Path | IO[bytes], max_pixels: int) -> np.ndarray:
    """Any image Pillow opens (first frame; alpha composited on white) as float gray levels in [0, 1].
    The size is checked from the header, before any pixel is decoded (decompression bombs)."""
    try:
        with Image.open(source) as opened:
            width, height = opened.size
            if width * height > max_pixels:
                raise ImageRejected(
                    f"image too large: {width}x{height} pixels is over the limit of {max_pixels:,} (max_pixels)"
                )
            opened.seek(0)  # GIF, TIFF, WebP animations: the first frame
            image = ImageOps.exif_transpose(opened)  # photos: the way the camera held them
            if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
                rgba = image.convert("RGBA")
                image = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
            gray = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    except ImageRejected:
        raise
    except FileNotFoundError as err:
        raise ImageRejected("missing file") from err
    except UnidentifiedImageError as err:
        raise ImageRejected("not an image (Pillow cannot read it)") from err
    except Image.DecompressionBombError as err:
        raise ImageRejected(f"image too large: {err}") from err
    except (OSError, ValueError, SyntaxError, EOFError) as err:
        raise ImageRejected(f"corrupt or truncated image ({err})") from err
    return gray


def decode_bytes(data: bytes, max_pixels: int) -> np.ndarray:
    return decode_gray(BytesIO(data), max_pixels)


@dataclass(frozen=True)
class Digit:
    """A preprocessed input: 28x28 pixels in [0, 1], white digit on black (zeros if it failed)."""

    pixels: np.ndarray
    status: str = OK


def prepare_digit(gray: np.ndarray, preprocess: str) -> Digit:
    try:
        return Digit(PREPROCESSORS[preprocess](gray))
    except ImageRejected as err:
        return Digit(np.zeros((28, 28), np.float32), str(err))


class UserImages(Dataset):
    """The inputs as a dataset for trainer.predict: (pixels (1, 28, 28), index) per file; decoding and
    preprocessing run in the loader (its workers, if any), the model sees whole batches."""

    def __init__(self, files: Sequence[InputFile], preprocess: str = "mnist", max_pixels: int = 40_000_000) -> None:
        if preprocess not in PREPROCESSORS:
            raise ValueError(f"preprocess must be one of {sorted(PREPROCESSORS)}, got {preprocess!r}")
        self.files = list(files)
        self.preprocess = preprocess
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.files)

    def load(self, index: int) -> Digit:
        item = self.files[index]
        if item.status != OK:
            return Digit(np.zeros((28, 28), np.float32), item.status)
        try:
            gray = decode_gray(item.path, self.max_pixels)
        except ImageRejected as err:
            return Digit(np.zeros((28, 28), np.float32), str(err))
        return prepare_digit(gray, self.preprocess)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, str]:
        digit = self.load(index)
        return torch.from_numpy(digit.pixels).unsqueeze(0), index, digit.status


def collate_digits(items: Iterable[tuple[torch.Tensor, int, str]]) -> tuple[torch.Tensor, list[int], list[str]]:
    pixels, indices, statuses = zip(*items, strict=True)
    return torch.stack(pixels), list(indices), list(statuses)
