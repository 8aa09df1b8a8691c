"""Images a user gives predict.py: found from paths, folders and globs, and decoded into 28x28 digits by
data/pictures.py (the decoder the server uses too).

Every input gives a row: a file that cannot be read gets a status that says why, and the others go on.
"""

from __future__ import annotations

import glob
import itertools
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from mnist_classifier.data.mnist_style import PREPROCESSORS
from mnist_classifier.data.pictures import OK, Digit, failed, read_digit

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
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
            found += [InputFile(p) for p in _image_files(path)] or [InputFile(str(path), "no image files in this folder")]
        elif path.is_file():
            found.append(InputFile(str(path)))
        elif glob.has_magic(str(item)):
            found += _glob_inputs(path) or [InputFile(str(item), "no files match this pattern")]
        elif path.exists():  # /dev/zero, a pipe, a socket: reading one may never end
            found.append(InputFile(str(path), "not a regular file (a device, pipe or socket)"))
        else:
            found.append(InputFile(str(path), "missing file"))
    return _each_file_once(found)


def _image_files(folder: Path) -> list[str]:
    """The image files under `folder`, sorted as paths; like pathlib's rglob, linked folders are not
    entered (a link loop is walked once). os.walk with string paths: a tenth of rglob's time on 10,000 files."""
    files = []
    for root, _, names in os.walk(folder):
        files += [
            path
            for name in names
            if os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES and os.path.isfile(path := os.path.join(root, name))
        ]
    return sorted(files, key=lambda path: path.split(os.sep))


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
    """The first row of each file; paths through links (symbolic or hard) to the same file are dropped."""
    seen: set[object] = set()
    once = []
    for item in found:
        if item.status == OK:
            try:
                stat = os.stat(item.path)
                # some network and FUSE filesystems report no inode numbers: the resolved path, then
                key: object = (stat.st_dev, stat.st_ino) if stat.st_ino else os.path.realpath(item.path)
            except OSError:  # gone since it was found: its decoding says so
                key = item.path
            if key in seen:
                continue
            seen.add(key)
        once.append(item)
    return once


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
            return failed(item.status)
        return read_digit(item.path, self.preprocess, self.max_pixels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, str]:
        digit = self.load(index)
        return torch.from_numpy(digit.pixels).unsqueeze(0), index, digit.status


def collate_digits(items: Iterable[tuple[torch.Tensor, int, str]]) -> tuple[torch.Tensor, list[int], list[str]]:
    pixels, indices, statuses = zip(*items, strict=True)
    return torch.stack(pixels), list(indices), list(statuses)
