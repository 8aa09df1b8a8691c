"""Warnings from libraries that a user of this project cannot act on, each filtered by its own text and
module, never by category alone: a warning about our code, or a new one, still shows. (Library log
messages are quietened by logger level in configs/hydra/default.yaml, or one by one with LibraryNotes.)"""

from __future__ import annotations

import logging
import re
import warnings

LIBRARY_WARNINGS = (
    # Lightning 2.6 calls a torch pytree API that torch 2.10+ deprecates; Lightning's to fix, not ours
    (r".*isinstance\(treespec, LeafSpec\)` is deprecated", r"lightning\..*"),
    # the model summary callback is ours (console/network_summary.py); Lightning's own never runs, but
    # its precision check still speaks when another summary is asked for
    (r"Precision .* is not supported by the model summary", r"lightning\..*"),
    # an in-memory dataset needs no loader workers: num_workers=0 is the fastest here (README, Speed)
    (r".*does not have many workers which may be a bottleneck", r"lightning\..*"),
    # a mid-epoch resume is exact: the datamodule restores the data position itself (data/resumable_sampler.py)
    (r"You're resuming from a checkpoint that ended before the epoch ended", r"lightning\..*"),
    # a resumed run has a run dir of its own, so its checkpoints go elsewhere than the first run's: intended
    (r"The dirpath has changed from .* won't be reloaded", r"lightning\..*"),
    # on a machine with SLURM installed (a login node, CI), a run started by hand is meant to be one: an
    # sbatch/srun job is detected and set up by itself (runtime/cluster.py)
    (r"The `srun` command is available on your system but is not used", r"lightning\..*"),
    # under DDP the epoch values logged are torchmetrics' compute(), already reduced across the processes (a
    # test compares a 3-process run's test/acc with one process's); sync_dist would reduce them again
    (r"It is recommended to use `self.log\('(train|val|test)/.*sync_dist=True", r"lightning\..*"),
    # Lightning 2.6's all_gather (the test report's, under DDP) calls a torch function torch 2.14 deprecates
    (r"torch.distributed.nn.functional.all_gather is deprecated", r"lightning\..*"),
    # a training resumed in its own run dir, or a requeued job, finds its earlier checkpoints there: meant to
    # (any other run into a dir with checkpoints is refused before it starts: runtime/run_dir_guard.py)
    (r"Checkpoint directory .* exists and is not empty", r"lightning\..*"),
    # debug=overfit: Lightning replays the same batches in order, as the preset means it to
    (r"You requested to overfit but enabled train dataloader shuffling", r"lightning\..*"),
)


def quiet_library_warnings() -> None:
    for message, module in LIBRARY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, module=module)


# log messages a library writes at WARNING about what is meant to happen, by logger and text
LIBRARY_NOTES = (
    # logger=mlflow, the first run into a tracking database: MLflow's experiment is made for it, as intended
    ("lightning.pytorch.loggers.mlflow", r"Experiment with name .* not found\. Creating it\."),
)


class LibraryNotes(logging.Filter):
    """Drops the LIBRARY_NOTES (configs/hydra/default.yaml puts it on their loggers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(
            record.name == name and re.fullmatch(pattern, record.getMessage()) for name, pattern in LIBRARY_NOTES
        )
