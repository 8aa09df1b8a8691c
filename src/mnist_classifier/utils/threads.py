"""Per-process CPU thread limits, so parallel sweep jobs do not oversubscribe the cores."""

from __future__ import annotations

import logging
import os

import torch
from hydra.core.hydra_config import HydraConfig

log = logging.getLogger(__name__)


def parallel_jobs() -> int:
    """How many jobs Hydra's launcher runs at once (1 unless it is the joblib launcher)."""
    if not HydraConfig.initialized():
        return 1
    launcher = HydraConfig.get().launcher
    n_jobs = launcher.get("n_jobs", 1) if "joblib" in str(launcher.get("_target_", "")) else 1
    cores = os.cpu_count() or 1
    return cores if n_jobs in (None, -1) else max(1, min(int(n_jobs), cores))


def limit_threads(num_threads: int | None) -> int:
    """Use `num_threads` if given, else the cores divided among the launcher's parallel jobs."""
    if num_threads is None:
        num_threads = max(1, (os.cpu_count() or 1) // parallel_jobs())
    if num_threads != torch.get_num_threads():
        torch.set_num_threads(num_threads)
        log.info("torch uses %d CPU thread(s)", num_threads)
    return num_threads
