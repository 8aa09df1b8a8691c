"""The one interface predict.py and serve.py run a model through: `probabilities(pixels)`, float pixels in
[0, 1] (N, 1, 28, 28), white on black -> (N, 10) class probabilities, numpy in and out.

Two models implement it: a checkpoint, read by the safe loader (checkpoint/loader.py) and run by torch, and
an exported model.onnx, run by onnxruntime. torch is imported only for a checkpoint, so serving an ONNX
model needs neither torch nor Lightning.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from mnist_classifier.errors import ConfigValueError
from mnist_classifier.models.onnx_model import EXPORT_EXAMPLE, OnnxModel

if TYPE_CHECKING:
    import torch


class Predictor(Protocol):
    def probabilities(self, pixels: np.ndarray) -> np.ndarray: ...


class CheckpointPredictor:
    """A checkpoint's network in inference mode (without Lightning), on the GPU when there is one.
    `ckpt_path=[a,b,c]`, a list, is an ensemble: one AveragedNet, whose probabilities are the mean of its
    members' (models/ensemble.py), the same network export.py writes."""

    def __init__(self, ckpt_path: str | Path | Sequence[str], threads: int | None = None) -> None:
        import torch

        from mnist_classifier.models.probability_model import ProbabilityModel

        if threads:
            torch.set_num_threads(threads)
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model = ProbabilityModel(trained_net(ckpt_path)).to(self.device).eval()

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            batch = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32)).to(self.device)
            probabilities, _ = self.model(batch)
            return probabilities.cpu().numpy()


def trained_net(ckpt_path: str | Path | Sequence[str]) -> torch.nn.Module:
    if isinstance(ckpt_path, (str, Path)):
        from mnist_classifier.models.trained_net import load_net

        return load_net(ckpt_path)
    from mnist_classifier.models.ensemble import ensemble_paths, load_averaged_net

    return load_averaged_net(ensemble_paths(ckpt_path))


def check_one_model(ckpt_path: str | Sequence[str] | None, model_path: str | None, script: str) -> None:
    """Exactly one of a checkpoint (ckpt_path) or an exported ONNX model (model_path)."""
    if bool(ckpt_path) == bool(model_path):
        from mnist_classifier.checkpoint.loader import EXAMPLE_PATH  # torch, but only to say what is wrong

        raise ConfigValueError(
            f"{script} needs exactly one model: ckpt_path={EXAMPLE_PATH} (a checkpoint written by train.py) "
            f"or model_path={EXPORT_EXAMPLE} (an exported model)."
        )


def load_predictor(
    ckpt_path: str | Sequence[str] | None,
    model_path: str | None,
    script: str,
    threads: int | None = None,
    sleep_when_idle: bool = False,
) -> Predictor:
    """`sleep_when_idle`: onnxruntime's idle threads sleep instead of spinning (a server, between its small
    batches); a checkpoint's torch threads follow OMP_WAIT_POLICY, which serve.py sets."""
    check_one_model(ckpt_path, model_path, script)
    if model_path:
        return OnnxModel(model_path, threads, sleep_when_idle)
    assert ckpt_path  # check_one_model
    return CheckpointPredictor(ckpt_path, threads)
