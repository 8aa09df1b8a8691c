"""The model behind a URL: `python serve.py ckpt_path=PATH` (or model_path=model.onnx), then open
http://127.0.0.1:8000 (see README). Serving an ONNX model imports neither torch nor Lightning, so this
entry does not use the training runner (runtime/runner.py); bad input, whether Hydra finds it while composing
the config (`porrt=1`, `limits=x`) or the server does, is one paragraph and exit 2 here too."""

import logging
import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from mnist_classifier.runtime import entry
from mnist_classifier.runtime.error_messages import EXIT_BAD_INPUT, user_error_message

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parent))
# a checkpoint's torch threads sleep between the small batches of a server instead of spinning, which took
# the CPU its decoding processes need (32 clients, 2 cores: 350 -> 700 predictions/s); set before torch loads
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@hydra.main(version_base="1.3", config_path="configs", config_name="serve")
def main(cfg: DictConfig) -> None:
    # imported here: the decoding processes (spawned) import this file again, and need none of the server
    from mnist_classifier.serving.server import serve

    try:
        serve(cfg)
    except Exception as err:
        message = user_error_message(err)  # bad input: a model file, a value, an interpolation
        if message is None:
            raise
        logging.getLogger("serve").error(" ".join(message.split()))  # to the console and the run's serve.log
        sys.exit(EXIT_BAD_INPUT)


if __name__ == "__main__":
    entry.run(main)
