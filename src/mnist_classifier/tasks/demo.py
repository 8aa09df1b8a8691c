"""Demo task: serve the draw-a-digit page on this machine until Ctrl-C."""

from __future__ import annotations

import logging
from typing import Any

from omegaconf import DictConfig

from mnist_classifier.checkpoint.loader import EXAMPLE_PATH, load_model
from mnist_classifier.errors import ConfigValueError
from mnist_classifier.tasks.run_checks import check_common, check_integer
from mnist_classifier.utils.threads import limit_threads

log = logging.getLogger(__name__)


def demo(cfg: DictConfig) -> dict[str, Any]:
    check_common(cfg)
    check_integer(cfg.get("port"), "port", 1, 65535)
    if not cfg.get("ckpt_path"):
        raise ConfigValueError(f"demo.py needs a checkpoint: python demo.py ckpt_path={EXAMPLE_PATH} (or make demo)")
    limit_threads(cfg.get("num_threads"))
    import uvicorn

    from mnist_classifier.demo.app import create_app

    app = create_app(load_model(cfg.ckpt_path))
    print(f"Draw a digit at http://{cfg.host}:{cfg.port}/  (Ctrl-C to stop)", flush=True)
    # uvicorn handles Ctrl-C itself: the server stops and the run ends normally
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="warning", access_log=False)
    return {"ckpt_path": str(cfg.ckpt_path), "url": f"http://{cfg.host}:{cfg.port}/"}
