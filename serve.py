"""The model behind a URL: `python serve.py ckpt_path=PATH` (or model_path=model.onnx), then open
http://127.0.0.1:8000 (see README). Serving an ONNX model imports neither torch nor Lightning, so this
entry does not use the training runner (runtime/runner.py): bad input is one paragraph and exit 2 here too."""

import logging
import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from mnist_classifier.errors import UserFacingError
from mnist_classifier.serving.server import serve

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parent))
EXIT_BAD_INPUT = 2


@hydra.main(version_base="1.3", config_path="configs", config_name="serve")
def main(cfg: DictConfig) -> None:
    try:
        serve(cfg)
    except UserFacingError as err:
        logging.getLogger("serve").error(" ".join(str(err).split()))
        sys.exit(EXIT_BAD_INPUT)


if __name__ == "__main__":
    main()
