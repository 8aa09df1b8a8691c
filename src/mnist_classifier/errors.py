"""Errors a user can fix. Every entry (train.py, eval.py, predict.py, export.py, serve.py) prints them as one
paragraph and exits 2, instead of a traceback.

The networks, the augmentation and the datamodule are plain objects that know no config: they raise
ArgumentError, naming their own argument. Whoever reads the config names the key: an object built from
a sub-config (the classifier's `net`) re-raises it `under` that argument, the runner under Hydra's key
(`model.net.channels ...`), and `keys_under` for checks that run after the object is built."""

from __future__ import annotations

import reprlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_SHOWN = reprlib.Repr()
_SHOWN.maxlevel, _SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxlong = 2, 80, 80, 40
_SHOWN.maxlist = _SHOWN.maxtuple = _SHOWN.maxdict = _SHOWN.maxset = 4


def shown(value: object) -> str:
    """A value read from a file, as a message shows it: a few items and characters, however large or deep
    (a crafted checkpoint's value can unfold into millions of items; its full repr would hang)."""
    return _SHOWN.repr(value)


KeyOf = Callable[[str], str]  # an argument's name -> how the message writes it (the bare name or a config key)


# why no tool here loads a TorchScript or torch.export file (checkpoint/loader.py, models/onnx_model.py)
UNPICKLES = "loading one unpickles it, which can run code from the file"


class UserFacingError(Exception):
    """Bad input (config value, path, file, checkpoint): the message says what is wrong and how to fix it."""


class ConfigValueError(UserFacingError, ValueError):
    """A config value is out of range or of the wrong shape."""


class DataNotFoundError(UserFacingError):
    """The MNIST files are missing and could not be downloaded."""


class CheckpointError(UserFacingError):
    """A checkpoint path is missing, unreadable or not one of ours."""


class TrainingDivergedError(UserFacingError):
    """The training loss stopped being a sensible number (NaN/inf, exploded, or chance accuracy after
    training); a sweep records the trial as failed."""


class InputError(UserFacingError):
    """An input file a task was given (pictures to predict, an exported model) cannot be used."""


class DiskWriteError(UserFacingError, OSError):
    """A file could not be written (disk full, file too large, read-only or not writable folder); the
    previous version of the file is intact."""


class ArgumentError(ValueError):
    """A plain object was given a bad argument. `message(key)` writes the message with each argument's name
    as `key(name)`: the bare name (`channels must be positive integers, got [0].`), or once the error is
    `under` a config path, the key (`model.net.channels ...`). Not user-facing: a program passing a bad
    argument has a bug; the code that read the value from a config makes it a ConfigValueError."""

    def __init__(self, argument: str, message: Callable[[KeyOf], str], path: str = "") -> None:
        self.argument, self.message, self.path = argument, message, path
        super().__init__(message(self.key))

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def under(self, path: str) -> ArgumentError:
        """The same error, for an object built from the config at `path`."""
        return ArgumentError(self.argument, self.message, f"{path}.{self.path}" if self.path else path)


@contextmanager
def keys_under(path: str) -> Iterator[None]:
    """A bad argument found in this block (the datamodule's checks against its files, in setup()) is one of
    the object built from the config at `path`: the user reads the key, as one paragraph and exit 2."""
    try:
        yield
    except ArgumentError as err:
        raise ConfigValueError(str(err.under(path))) from err
