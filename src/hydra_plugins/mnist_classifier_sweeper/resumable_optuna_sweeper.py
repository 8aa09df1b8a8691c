"""Hydra's Optuna sweeper, resumable: trials already finished in the stored study count toward n_trials.

Hydra imports every module of `hydra_plugins` at start-up, so optuna is imported only when sweeping.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper

log = logging.getLogger(__name__)


def finished_trials(storage: str | None, study_name: str | None) -> int:
    """Trials of `study_name` that ran to an end (complete, failed or pruned); 0 for a new study."""
    import optuna

    if storage is None or study_name is None:
        return 0
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:  # no such study yet
        return 0
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL, optuna.trial.TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=finished))


class ResumableOptunaSweeper(OptunaSweeper):
    """Re-running the same command continues the study: a search of 20 that died after 12 runs 8 more.

    Trials left RUNNING by a killed process stay in the study, are not counted, and are not re-run.
    """

    def sweep(self, arguments: list[str]) -> Any:
        impl = self.sweeper
        storage = impl.storage
        if isinstance(storage, str) and storage.startswith("sqlite:///"):
            Path(storage.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        done = finished_trials(storage, impl.study_name)
        if done:
            log.info(
                "Study %r already has %d finished trial(s) in %s; %d to go of n_trials=%d",
                impl.study_name,
                done,
                storage,
                max(0, impl.n_trials - done),
                impl.n_trials,
            )
        impl.n_trials = max(0, impl.n_trials - done)
        return impl.sweep(arguments)
