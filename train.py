"""Train a model on MNIST: `python train.py [hydra overrides]` (see README)."""

import hydra
from omegaconf import DictConfig

from mnist_classifier.runtime import entry

entry.prepare(__file__)


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Returns `optimized_metric` for sweepers (Optuna maximises it). The task and its libraries (torch,
    Lightning) load here, once the config is composed (runtime/entry.py)."""
    from mnist_classifier.runtime.runner import metric_value, run_task
    from mnist_classifier.tasks.train import train

    return metric_value(run_task(train, cfg), cfg.get("optimized_metric"))


if __name__ == "__main__":
    entry.run(main)
