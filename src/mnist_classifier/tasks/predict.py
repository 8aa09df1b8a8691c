"""Prediction task: the digits in a user's own pictures, from a checkpoint or from an exported ONNX model,
through the one Predictor interface (predictor.py) that serve.py uses too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, ListConfig
from torch.utils.data import DataLoader

from mnist_classifier.data.mnist_style import PREPROCESSORS
from mnist_classifier.data.user_images import UserImages, collate_digits, find_inputs
from mnist_classifier.digits import NUM_CLASSES
from mnist_classifier.errors import ConfigValueError, InputError
from mnist_classifier.predictor import Predictor, check_one_model, load_predictor
from mnist_classifier.reports.predictions import (
    GRID_IMAGES,
    make_predictions,
    print_predictions,
    write_predictions,
    write_preprocessed_grid,
)
from mnist_classifier.runtime.run_checks import check_integer
from mnist_classifier.utils.threads import usable_cores

AUTO_WORKERS_FROM = 1000


def check_predict_config(cfg: DictConfig) -> None:
    """predict.py's own values (the common ones are checked by the runner)."""
    if not cfg.get("inputs"):
        raise ConfigValueError(
            "predict.py needs inputs: a file, a folder, a glob or a list, e.g. inputs=my_digit.png, "
            "inputs=photos/ or inputs='[a.png,scans/]'."
        )
    if not isinstance(cfg.inputs, (str, ListConfig)):
        raise ConfigValueError(f"inputs must be a path, a glob or a list of them, got {cfg.inputs!r}.")
    if cfg.preprocess not in PREPROCESSORS:
        raise ConfigValueError(
            f"preprocess must be one of {', '.join(sorted(PREPROCESSORS))}: mnist turns any picture into an "
            f"MNIST digit, none takes 28x28 white-on-black images as they are; got {cfg.preprocess!r}."
        )
    for key, minimum in (("batch_size", 1), ("max_pixels", 1)):
        check_integer(cfg.get(key), key, minimum)
    check_integer(cfg.get("num_workers"), "num_workers", 0, null_means="one per core for large folders")


def loader_workers(configured: int | None, inputs: int) -> int:
    """Decoding is per picture: many pictures are worth a process per core; a few are not worth starting one."""
    if configured is not None:
        return configured
    return min(usable_cores(), 8) if inputs >= AUTO_WORKERS_FROM else 0


def model_threads(configured: int | None, workers: int) -> int | None:
    """The model's threads: of this job's share of the cores (runtime/runner.py set torch to it), those the
    loader workers leave, at least one. Its small forward passes
    are a fraction of the decoding, and idle threads that spin next to busy workers slow them down (10,000
    PNGs on 2 AVX2 cores: the loop took 3.5-3.9 s with one thread against 4.2-4.8 s with two)."""
    if configured is not None or not workers:
        return configured
    return max(1, torch.get_num_threads() - workers)


def _probabilities(predictor: Predictor, loader: DataLoader) -> tuple[np.ndarray, list[str], list[np.ndarray]]:
    """Per input, in order: the class probabilities and the status of its image; and the first GRID_IMAGES
    preprocessed pictures for the preview grid (each picture is decoded once)."""
    statuses: list[str] = [""] * len(loader.dataset)  # type: ignore[arg-type]  # UserImages has a length
    probabilities = np.zeros((len(statuses), NUM_CLASSES), np.float32)
    shown: list[np.ndarray] = []
    for pixels, indices, batch_statuses in loader:
        batch = pixels.numpy()
        probabilities[indices] = predictor.probabilities(batch)
        for index, status in zip(indices, batch_statuses, strict=True):
            statuses[index] = status
        shown += list(batch[: max(0, GRID_IMAGES - len(shown)), 0])
    return probabilities, statuses, shown


def predict(cfg: DictConfig) -> dict[str, Any]:
    check_predict_config(cfg)
    check_one_model(cfg.get("ckpt_path"), cfg.get("model_path"), "predict.py")  # before a long folder walk
    inputs = cfg.inputs if isinstance(cfg.inputs, str) else [str(item) for item in cfg.inputs]
    dataset = UserImages(find_inputs(inputs), cfg.preprocess, cfg.max_pixels)
    workers = loader_workers(cfg.get("num_workers"), len(dataset))
    threads = model_threads(cfg.get("num_threads"), workers)
    predictor = load_predictor(cfg.get("ckpt_path"), cfg.get("model_path"), "predict.py", threads)
    loader = DataLoader(dataset, batch_size=cfg.batch_size, num_workers=workers, collate_fn=collate_digits)
    probabilities, statuses, shown = _probabilities(predictor, loader)

    rows = make_predictions([item.path for item in dataset.files], statuses, torch.from_numpy(probabilities))
    output_dir = Path(cfg.paths.output_dir)
    written = write_predictions(rows, output_dir)
    written.append(write_preprocessed_grid(shown, rows, output_dir / "preprocessed.png"))
    print_predictions(rows)
    failed = sum(row.status != "ok" for row in rows)
    model = cfg.get("model_path") or cfg.ckpt_path
    if failed == len(rows):
        reasons = sorted({row.status for row in rows})
        raise InputError(
            f"None of the {len(rows)} input(s) could be read ({'; '.join(reasons[:3])}). Check the paths in "
            f"inputs=... (a file, a folder, a glob or a list) and that they are pictures Pillow opens (PNG, JPEG, "
            f"BMP, GIF, TIFF, WebP). The rows are in {written[0]}."
        )
    return {
        "status": "partial" if failed else "ok",
        "inputs": len(rows),
        "predicted": len(rows) - failed,
        "failed": failed,
        "predictions": [str(path) for path in written],
        "model": str(model) if isinstance(model, str) else list(model),  # a list: an ensemble's checkpoints
    }
