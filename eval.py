"""Evaluate a checkpoint on the MNIST test set: `python eval.py ckpt_path=PATH` (see README)."""

import os
from pathlib import Path

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parent))

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from mnist_classifier.evaluate import evaluate  # noqa: E402
from mnist_classifier.utils.resolvers import register_resolvers  # noqa: E402
from mnist_classifier.utils.task import run_task  # noqa: E402

register_resolvers()


@hydra.main(version_base="1.3", config_path="configs", config_name="eval")
def main(cfg: DictConfig) -> None:
    run_task(evaluate, cfg)


if __name__ == "__main__":
    main()
