"""The draw-a-digit page: `python demo.py ckpt_path=PATH`, then open http://127.0.0.1:8000 (see README)."""

import hydra
from omegaconf import DictConfig

from mnist_classifier.tasks import entry
from mnist_classifier.tasks.demo import demo
from mnist_classifier.tasks.runner import run_task

entry.prepare(__file__)


@hydra.main(version_base="1.3", config_path="configs", config_name="demo")
def main(cfg: DictConfig) -> None:
    run_task(demo, cfg)


if __name__ == "__main__":
    entry.run(main)
