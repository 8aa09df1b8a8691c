"""Export a checkpoint's model: `python export.py ckpt_path=PATH format=onnx|pt2|safetensors` (see README)."""

import hydra
from omegaconf import DictConfig

from mnist_classifier.tasks import entry
from mnist_classifier.tasks.export import export
from mnist_classifier.tasks.runner import run_task

entry.prepare(__file__)


@hydra.main(version_base="1.3", config_path="configs", config_name="export")
def main(cfg: DictConfig) -> None:
    run_task(export, cfg)


if __name__ == "__main__":
    entry.run(main)
