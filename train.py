"""Train a model on MNIST: `python train.py [hydra overrides]` (see README)."""

import os
from pathlib import Path

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parent))

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from mnist_classifier.train import train  # noqa: E402
from mnist_classifier.utils.resolvers import register_resolvers  # noqa: E402
from mnist_classifier.utils.task import metric_value, run_task  # noqa: E402

register_resolvers()


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Returns `optimized_metric` for sweepers (Optuna maximises it)."""
    return metric_value(run_task(train, cfg), cfg.get("optimized_metric"))


if __name__ == "__main__":
    main()
