"""Hydra takes sweepers from the `hydra_plugins` namespace package only, and imports every module in it
at each start-up: this plugin is a thin front, and the search (mnist_classifier/sweeps/optuna_search.py,
with Optuna) is imported when a sweep runs."""

from __future__ import annotations

from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class OptunaSweeper(Sweeper):
    def __init__(self, **settings: Any) -> None:
        self.settings = settings

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from mnist_classifier.sweeps.optuna_search import OptunaSearch

        self.search = OptunaSearch(**self.settings)
        self.search.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> Any:
        return self.search.sweep(arguments)
