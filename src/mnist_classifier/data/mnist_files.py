"""Finding, verifying and decoding the four MNIST files with torchvision's own MNIST parser."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from mnist_classifier.errors import DataNotFoundError

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
            for train in (True, False):
                MNIST(str(root), train=train, download=True)
    except (RuntimeError, OSError) as err:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise DataNotFoundError(_missing_message(root, f"download failed: {err}")) from err


def load_split(data_dir: str | Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode one official split to (uint8 images [N, 28, 28], int64 labels [N])."""
    from torchvision.datasets import MNIST

    try:
        dataset = MNIST(str(Path(data_dir).expanduser()), train=train, download=False)
    except RuntimeError as err:
        raise DataNotFoundError(_missing_message(data_dir, "files not found or not unpacked")) from err
    return dataset.data, dataset.targets.long()
