"""Export task: a checkpoint's model as model.onnx (onnxruntime), model.pt2 (torch.export) or
model.safetensors + model.json (weights without pickle), checked on the official test set before success
is reported (export_check.json)."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from mnist_classifier.checkpoint.loader import EXAMPLE_PATH, load_checkpoint
from mnist_classifier.checkpoint.weights_file import write_weights
from mnist_classifier.digits import CLASS_LABELS, NUM_CLASSES
from mnist_classifier.errors import ConfigValueError, UserFacingError
from mnist_classifier.models.ensemble import AveragedNet, ensemble_paths, load_averaged_net, network_name
from mnist_classifier.models.onnx_model import INPUT_NAME, OUTPUT_NAMES, OnnxModel
from mnist_classifier.models.probability_model import ProbabilityModel
from mnist_classifier.models.trained_net import build_net, load_net
from mnist_classifier.utils.atomic import write_text, write_with

log = logging.getLogger(__name__)
FORMATS = {"onnx": "model.onnx", "pt2": "model.pt2", "safetensors": "model.safetensors"}
MAX_ACCURACY_GAP = 0.0001  # 0.01 percentage points: one test image in 10,000
MAX_PROBABILITY_GAP = 1e-4
INPUT_CONVENTION = "float32 pixels in [0, 1], shape (N, 1, 28, 28), white digit on black; MNIST normalisation inside"

Predictor = Callable[[np.ndarray], np.ndarray]


class ExportCheckError(UserFacingError):
    """The exported model does not reproduce the checkpoint on the test set."""


def sha256(path: str | Path) -> str:
    with Path(path).open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def test_set_pixels(cfg: DictConfig) -> tuple[np.ndarray, np.ndarray]:
    """The official 10k test images as the exported model takes them, and their labels."""
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("test")
    images, labels = datamodule.test_set.images, datamodule.test_set.labels
    return (images.float() / 255.0).unsqueeze(1).numpy(), labels.numpy()


def batched(predict: Predictor, pixels: np.ndarray, batch: int = 1000) -> np.ndarray:
    return np.concatenate([predict(pixels[i : i + batch]) for i in range(0, len(pixels), batch)])


def export_onnx(model: ProbabilityModel, path: Path, metadata: dict[str, str]) -> Predictor:
    import onnx

    example = torch.rand(2, 1, 28, 28)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "model.onnx"
        torch.onnx.export(
            model, (example,), str(raw), input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
            dynamic_shapes={"pixels": {0: torch.export.Dim("batch")}}, dynamo=True, verbose=False,
        )  # fmt: skip
        proto = onnx.load(str(raw))
    onnx.helper.set_model_props(proto, metadata)
    proto.doc_string = f"MNIST digit classifier. Input: {INPUT_CONVENTION}. Outputs: probabilities, logits."
    write_with(path, lambda file: file.write(proto.SerializeToString()))
    return OnnxModel(path).probabilities


def torch_predictor(model: torch.nn.Module) -> Predictor:
    def predict(pixels: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(pixels))[0].numpy()

    return predict


def export_pt2(model: ProbabilityModel, path: Path, metadata: dict[str, str]) -> Predictor:
    """torch.export's ExportedProgram (.pt2), with any batch size; loaded back as its users will load it.
    The weights in the default layout: torch.export.save stores a channels_last weight as a storage no tensor
    covers whole, and warns that the file may load wrongly off the CPU."""
    model = model.to(memory_format=torch.contiguous_format)
    program = torch.export.export(model, (torch.rand(2, 1, 28, 28),), dynamic_shapes=({0: torch.export.Dim.DYNAMIC},))
    # built in memory, then written by Python: torch's zip writer aborts the process on a full disk
    archive = io.BytesIO()
    torch.export.save(program, archive, extra_files={"metadata.json": json.dumps(metadata)})
    write_with(path, lambda file: file.write(archive.getvalue()))
    return torch_predictor(torch.export.load(str(path)).module())


def export_safetensors(
    model: ProbabilityModel, path: Path, metadata: dict[str, str], hyper_parameters: dict[str, Any]
) -> Predictor:
    """The network's weights and the plain configs that rebuild it, read back through the safe loader."""
    write_weights(path, model.net, hyper_parameters, metadata)
    return torch_predictor(ProbabilityModel(load_net(path)).eval())


def ensemble_model(cfg: DictConfig) -> tuple[ProbabilityModel, dict[str, Any]]:
    """`ckpt_path=[a,b,c]`: one graph for the ensemble, its members' networks averaged (models/ensemble.py);
    what it records of its members, in place of one checkpoint's path and sha256."""
    if cfg.format == "safetensors":
        raise ConfigValueError(
            "format=safetensors writes one network's weights, not an ensemble's: export ckpt_path=[...] as "
            "format=onnx or format=pt2 (one graph averaging the members), or each member on its own."
        )
    paths = ensemble_paths(cfg.ckpt_path)
    net = load_averaged_net(paths)
    model = ProbabilityModel(net).eval()
    rows = [
        {"checkpoint": path, "checkpoint_sha256": sha256(path), "network": network_name(member)}
        for path, member in zip(paths, net.members, strict=True)
    ]
    return model, {"members": rows, "network": f"{AveragedNet.__module__}.{AveragedNet.__name__}"}


def export(cfg: DictConfig) -> dict[str, Any]:
    if not cfg.get("ckpt_path"):
        raise ConfigValueError(f"export.py needs a checkpoint: python export.py ckpt_path={EXAMPLE_PATH}")
    if cfg.format not in FORMATS:
        raise ConfigValueError(f"format must be one of {', '.join(FORMATS)}, got {cfg.format!r}.")
    if cfg.get("output") and Path(cfg.output).is_dir():
        raise ConfigValueError(
            f"output={cfg.output} is a folder; name the file to write, e.g. "
            f"output={Path(cfg.output) / FORMATS[cfg.format]}."
        )
    suffix = Path(FORMATS[cfg.format]).suffix
    if cfg.get("output") and Path(cfg.output).suffix != suffix:  # `output=.../epoch_000.ckpt` wrote over it
        raise ConfigValueError(
            f"output={cfg.output} does not end in {suffix}, as a format={cfg.format} file does: name the file "
            f"to write with it, e.g. output={Path(cfg.output).with_suffix(suffix)}."
        )
    outputs = f"probabilities (N, {NUM_CLASSES}), logits (N, {NUM_CLASSES})"
    hyper_parameters: dict[str, Any] = {}  # what model.json records (format=safetensors: one checkpoint only)
    if isinstance(cfg.ckpt_path, str):
        checkpoint = load_checkpoint(cfg.ckpt_path)
        hyper_parameters = checkpoint["hyper_parameters"]
        model = ProbabilityModel(build_net(checkpoint, cfg.ckpt_path)).eval()
        source: dict[str, Any] = {
            "checkpoint": str(cfg.ckpt_path),
            "checkpoint_sha256": sha256(cfg.ckpt_path),
            "network": str(hyper_parameters["net"]["_target_"]),
        }
    else:
        model, source = ensemble_model(cfg)
        outputs += f"; an ensemble of {len(source['members'])}: the mean of its members' probabilities, and its log"
    pixels, labels = test_set_pixels(cfg)
    reference = batched(torch_predictor(model), pixels)
    reference_acc = float((reference.argmax(1) == labels).mean())

    output = Path(cfg.output) if cfg.get("output") else Path(cfg.paths.output_dir) / FORMATS[cfg.format]
    metadata = {
        "input": INPUT_CONVENTION,
        "outputs": outputs,
        "class_labels": json.dumps(list(CLASS_LABELS)),
        **{key: value if isinstance(value, str) else json.dumps(value) for key, value in source.items()},
        "test_accuracy": f"{reference_acc:.6f}",
    }
    exporters: dict[str, Callable[[ProbabilityModel, Path, dict[str, str]], Predictor]] = {
        "onnx": export_onnx,
        "pt2": export_pt2,
        "safetensors": partial(export_safetensors, hyper_parameters=hyper_parameters),
    }
    exporter = exporters[cfg.format]
    exported = batched(exporter(model, output, metadata), pixels)
    exported_acc = float((exported.argmax(1) == labels).mean())
    gap = float(np.abs(exported - reference).max())
    passed = abs(exported_acc - reference_acc) <= MAX_ACCURACY_GAP and gap <= MAX_PROBABILITY_GAP
    check = {
        "format": cfg.format,
        "model_path": str(output),
        **{key: value for key, value in source.items() if key != "network"},
        "test_images": len(labels),
        "checkpoint_test_acc": reference_acc,
        "exported_test_acc": exported_acc,
        "max_abs_prob_diff": gap,
        "passed": passed,
    }
    write_text(Path(cfg.paths.output_dir) / "export_check.json", json.dumps(check, indent=2) + "\n")
    if not passed:
        raise ExportCheckError(
            f"The exported model does not reproduce the checkpoint on the test set: accuracy {100 * exported_acc:.2f}% "
            f"vs {100 * reference_acc:.2f}%, largest probability difference {gap:.1e} (allowed: 0.01 points, "
            f"{MAX_PROBABILITY_GAP:.0e}). Details in export_check.json; do not ship {output}."
        )
    return {"model_path": str(output), **{k: check[k] for k in ("checkpoint_test_acc", "exported_test_acc",
                                                               "max_abs_prob_diff", "test_images")}}  # fmt: skip
