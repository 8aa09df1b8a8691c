"""Atomic file writes: a temp file beside the target, fsynced, then renamed over it, so a crash, a kill or
a full disk never leaves a half-written file and never destroys the previous version."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_file(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Write to the yielded file; `path` is replaced only if the block finishes without error."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, mode) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        Path(tmp_name).replace(target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def write_text(path: str | Path, text: str) -> Path:
    with atomic_file(path, "w") as file:
        file.write(text)
    return Path(path)


def write_with(path: str | Path, save: Callable[[IO], object]) -> Path:
    """For writers that take a file object (torch.save, PIL, matplotlib, pandas)."""
    with atomic_file(path) as file:
        save(file)
    return Path(path)
