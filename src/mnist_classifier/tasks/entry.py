"""What every top-level entry (train.py, eval.py, ...) does before Hydra composes its config."""

from __future__ import annotations

import os
from pathlib import Path

from mnist_classifier.console.noise import quiet_library_warnings
from mnist_classifier.utils.resolvers import register_resolvers


def prepare(entry_file: str) -> None:
    """`paths.root_dir` is the folder of the entry script (configs read it from PROJECT_ROOT)."""
    os.environ.setdefault("PROJECT_ROOT", str(Path(entry_file).resolve().parent))
    register_resolvers()
    quiet_library_warnings()
