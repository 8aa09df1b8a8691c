"""Errors a user can fix. Every entry (train.py, eval.py, predict.py, export.py, serve.py) prints them as one
paragraph and exits 2, instead of a traceback."""


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
