"""Atomic file writes: a temp file beside the target, fsynced, then renamed over it, so a crash, a kill or
a full disk never leaves a half-written file and never destroys the previous version."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from mnist_classifier.errors import DiskWriteError

# Faults of the disk or the folder, not of the program: the user fixes them (exit 2).
_DISK_FAULTS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EFBIG: "the file is over the file size limit",
    errno.EROFS: "the folder is on a read-only file system",
    errno.EACCES: "the folder is not writable",
    errno.EPERM: "the folder is not writable",
    errno.EIO: "the disk reported an I/O error",
}
# a path of the wrong shape (paths.log_dir=<a file>, hydra.run.dir=<a file>): where a folder must be, a file is
_PATH_FAULTS = {
    errno.ENOTDIR: "a part of its path is a file, not a folder",
    errno.EEXIST: "a file stands where its folder must be made",
    errno.EISDIR: "a folder stands where the file must be",
}


def disk_fault(err: BaseException) -> OSError | None:
    """The disk fault behind `err`, if any. Writers wrap it: torch's zip writer raises
    `RuntimeError: [enforce fail ...] unexpected pos` with the OSError as its context."""
    seen: set[int] = set()
    cause: BaseException | None = err
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, OSError) and (cause.errno in _DISK_FAULTS or cause.errno in _PATH_FAULTS):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None


def disk_fault_message(path: str | Path, fault: OSError, then: str = "run again") -> str:
    """One paragraph: which file, why, that the previous one is intact, and what to do."""
    target = Path(path)
    kept = f" The previous {target.name} is intact." if target.is_file() else ""
    if fault.errno in _PATH_FAULTS:
        return (
            f"Could not write {target}: {_PATH_FAULTS[fault.errno]} ({fault.strerror}).{kept} Point paths.log_dir, "
            f"hydra.run.dir or the output path at a folder (or at a place where one can be made), then {then}."
        )
    reason = _DISK_FAULTS.get(fault.errno or 0, "the disk or folder refused the write")
    return (
        f"Could not write {target}: {reason} ({fault.strerror}).{kept} Free some space or make the folder "
        f"writable (or point paths.log_dir / hydra.run.dir at a disk with room), then {then}."
    )


def _file_mode() -> int:
    """The mode open() gives a new file here: 0666 less the process's umask (read once, at import)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


FILE_MODE = _file_mode()


@contextlib.contextmanager
def atomic_file(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Write to the yielded file; `path` is replaced only if the block finishes without error. A disk
    fault (full, read-only, not writable) is a DiskWriteError that says so."""
    target = Path(path)
    tmp_name: str | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        if hasattr(os, "fchmod"):  # POSIX: mkstemp's 0600 would make every result readable by its owner alone
            os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, mode) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        Path(tmp_name).replace(target)
    except BaseException as err:
        if tmp_name is not None:
            Path(tmp_name).unlink(missing_ok=True)
        fault = disk_fault(err)
        if fault is None or isinstance(err, DiskWriteError):
            raise
        raise DiskWriteError(disk_fault_message(target, fault)) from err


def write_text(path: str | Path, text: str) -> Path:
    with atomic_file(path, "w") as file:
        file.write(text)
    return Path(path)


def write_with(path: str | Path, save: Callable[[IO], object]) -> Path:
    """For writers that take a file object (torch.save, PIL, matplotlib, pandas)."""
    with atomic_file(path) as file:
        save(file)
    return Path(path)
