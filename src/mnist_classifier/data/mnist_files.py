"""Finding, verifying and decoding the four MNIST files with torchvision's own MNIST parser."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from mnist_classifier.errors import DataNotFoundError
from mnist_classifier.utils.atomic import disk_fault

MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def raw_folder(data_dir: str | Path) -> Path:
    """torchvision keeps MNIST in <data_dir>/MNIST/raw/."""
    return Path(data_dir).expanduser() / "MNIST" / "raw"


def _missing_message(data_dir: str | Path, reason: str) -> str:
    names = ", ".join(f"{name}.gz" for name in MNIST_FILES)
    return (
        f"MNIST is not available in {raw_folder(data_dir)} ({reason}). Put the four files {names} "
        f"(or their unpacked versions) in that folder, e.g. `mkdir -p {raw_folder(data_dir)} && "
        f"cp /path/to/MNIST/raw/*.gz {raw_folder(data_dir)}/` (`make data` copies them from "
        f"../shared/data/MNIST), or point `data.data_dir=...` at a folder that holds MNIST/raw/, "
        f"or run once with network access so torchvision can download them."
    )


def _first_missing(path: Path) -> Path | None:
    """The outermost folder of `path` that does not exist yet (what a download would create)."""
    missing = None
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing = folder
    return missing


@contextmanager
def _one_unpacker_at_a_time(root: Path) -> Iterator[None]:
    """torchvision unpacks each .gz in place and reads any file that exists: a second process started at the
    same time (sweep jobs, two test workers) read a half-written one. A lock file next to raw/ lets one
    verify and unpack while the others wait. A folder where it cannot be made (read-only) is one that
    nothing unpacks into, so there is nothing to wait for."""
    from filelock import FileLock

    folder = raw_folder(root).parent
    lock = FileLock(folder / ".unpack.lock")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock.acquire()
        held = True
    except OSError:
        held = False
    try:
        yield
    finally:
        if held:
            lock.release()


def ensure_mnist(data_dir: str | Path) -> None:
    """Verify (md5) and unpack the .gz files, downloading only what is missing. Folders made for a
    download that then fails are removed again: a typo'd data_dir leaves nothing behind."""
    from torchvision.datasets import MNIST

    root = Path(data_dir).expanduser()
    not_a_folder = next((p for p in (root, *root.parents) if p.exists() and not p.is_dir()), None)
    if not_a_folder is not None:
        raise DataNotFoundError(
            f"data.data_dir={data_dir} cannot hold MNIST: {not_a_folder} is a file, not a folder. Point "
            f"data.data_dir at a folder (its MNIST/raw/ holds the four files), e.g. data.data_dir=data."
        )
    created = _first_missing(raw_folder(root))
    try:
        with _one_unpacker_at_a_time(root):
            _check_archives(raw_folder(root))
            for train in (True, False):
                MNIST(str(root), train=train, download=True)
    except (RuntimeError, OSError) as err:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        fault = disk_fault(err)
        if fault is not None:  # the four files are there; unpacking them is what failed
            raise DataNotFoundError(
                f"MNIST's files in {raw_folder(root)} cannot be unpacked there ({fault.strerror}). Make the folder "
                f"writable, or unpack them yourself (gunzip -k {raw_folder(root)}/*.gz) where you can write, "
                f"or point data.data_dir at a copy."
            ) from err
        raise DataNotFoundError(_missing_message(root, f"download failed: {err}")) from err


def _check_archives(raw: Path) -> None:
    """A .gz that is there but damaged (truncated, another file of its name) and not yet unpacked: torchvision
    would take it for missing and try to download it, and the message would say to copy in what is there."""
    from torchvision.datasets import MNIST
    from torchvision.datasets.utils import check_integrity

    for name, md5 in MNIST.resources:
        archive = raw / name
        if archive.is_file() and not (raw / archive.stem).exists() and not check_integrity(str(archive), md5):
            raise DataNotFoundError(
                f"{archive} is there but damaged: its md5 is not MNIST's (a truncated copy, or another file of "
                f"that name). Copy it again (`make data`, or cp /path/to/MNIST/raw/{name} {raw}/), or delete it "
                f"so that a run with network access downloads it."
            )


def load_split(data_dir: str | Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode one official split to (uint8 images [N, 28, 28], int64 labels [N])."""
    from torchvision.datasets import MNIST

    try:
        dataset = MNIST(str(Path(data_dir).expanduser()), train=train, download=False)
    except RuntimeError as err:
        raise DataNotFoundError(_missing_message(data_dir, "files not found or not unpacked")) from err
    return dataset.data, dataset.targets.long()
