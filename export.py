"""Export a checkpoint's model: `python export.py ckpt_path=PATH format=onnx|pt2|safetensors` (see README)."""

import hydra
from omegaconf import DictConfig

from mnist_classifier.runtime import entry

entry.prepare(__file__)


@hydra.main(version_base="1.3", config_path="configs", config_name="export")
def main(cfg: DictConfig) -> None:
    """The task and its libraries load here, once the config is composed (runtime/entry.py)."""
    from mnist_classifier.runtime.runner import run_task
    from mnist_classifier.tasks.export import export

    run_task(export, cfg)


if __name__ == "__main__":
    entry.run(main)
