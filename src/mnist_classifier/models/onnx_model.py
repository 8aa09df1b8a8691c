"""An exported model.onnx, run by onnxruntime: what predict.py and serve.py (model_path=...) use, with no
torch, no Lightning and no checkpoint. The file is data: onnxruntime runs its graph of standard operators, and a
file that is not such a model is refused with a clear message."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from mnist_classifier.digits import NUM_CLASSES
from mnist_classifier.errors import UNPICKLES, InputError
from mnist_classifier.models.onnx_graph import EXPORT_EXAMPLE, MAX_BATCH, MAX_FILE_BYTES, check_graph

# an exported model's contract (models/probability_model.py): pixels in; probabilities and logits out
INPUT_NAME, OUTPUT_NAMES = "pixels", ("probabilities", "logits")


class OnnxModel:
    def __init__(self, path: str | Path, threads: int | None = None, sleep_when_idle: bool = False) -> None:
        import onnxruntime as ort

        file = Path(str(path)).expanduser()
        if file.suffix in {".pt", ".pt2"}:
            raise InputError(
                f"model_path={path} is a TorchScript or torch.export (.pt2) file: {UNPICKLES}, so neither "
                f"predict.py nor serve.py loads one. Pass model.onnx "
                f"(export.py format=onnx), or ckpt_path= a checkpoint or model.safetensors (export.py "
                f"format=safetensors)."
            )
        if file.suffix == ".safetensors":
            raise InputError(
                f"model_path={path} is exported weights, not an ONNX model: pass it as ckpt_path={path} "
                f"(with its model.json beside it)."
            )
        if not file.is_file():
            raise InputError(
                f"model_path={path}: no such file. Pass a model written by export.py, e.g. {EXPORT_EXAMPLE}."
            )
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        if sleep_when_idle:  # a server's: its decoding needs the CPU that spinning threads take (300 -> 360/s)
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if file.stat().st_size > MAX_FILE_BYTES:
            raise InputError(
                f"model_path={path} is {file.stat().st_size / 2**20:,.0f} MiB, over the {MAX_FILE_BYTES // 2**20} MiB "
                f"an MNIST model needs (export.py writes a few MiB). Pass a model written by export.py, e.g. "
                f"{EXPORT_EXAMPLE}."
            )
        model_bytes = file.read_bytes()
        check_graph(model_bytes, path)
        try:
            self.session = _session_without_neighbours(model_bytes, options)
        except Exception as err:  # onnxruntime raises its own exception types for unreadable graphs
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise InputError(
                f"model_path={path} cannot be loaded by onnxruntime ({reason[:300]}). It may be truncated, not "
                f"an ONNX model, or name external data files (export.py writes none); pass a model written by "
                f"export.py, e.g. {EXPORT_EXAMPLE}."
            ) from err
        inputs = {i.name: i.shape for i in self.session.get_inputs()}
        outputs = [o.name for o in self.session.get_outputs()]
        if list(inputs) != [INPUT_NAME] or len(inputs[INPUT_NAME]) != 4 or OUTPUT_NAMES[0] not in outputs:
            raise InputError(
                f"model_path={path} is an ONNX model, but not one export.py writes: it takes {inputs} and gives "
                f"{outputs}, where `{INPUT_NAME}` (N, 1, 28, 28) in and `{OUTPUT_NAMES[0]}` out are expected."
            )
        self.path = path
        for batch in (1, 2):  # a fixed batch size or another output shape fails here, not on a user's pictures
            OnnxModel.probabilities(self, np.zeros((batch, 1, 28, 28), np.float32))  # not a subclass's

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """Float pixels in [0, 1] (N, 1, 28, 28), white on black -> (N, 10) class probabilities, run at most
        MAX_BATCH at a time: the largest batch the graph check sized the graph at."""
        if len(pixels) > MAX_BATCH:
            chunks = range(0, len(pixels), MAX_BATCH)
            return np.concatenate([self.probabilities(pixels[i : i + MAX_BATCH]) for i in chunks])
        try:
            (probabilities,) = self.session.run([OUTPUT_NAMES[0]], {INPUT_NAME: pixels.astype(np.float32)})
        except Exception as err:  # onnxruntime's own types
            raise InputError(
                f"onnxruntime cannot run model_path={self.path} on a batch of {len(pixels)} "
                f"({str(err).strip()[:200]}). A model export.py writes takes any batch; pass one, e.g. "
                f"{EXPORT_EXAMPLE}."
            ) from err
        probabilities = np.asarray(probabilities)
        if probabilities.shape != (len(pixels), NUM_CLASSES) or not np.issubdtype(probabilities.dtype, np.floating):
            raise self._not_ours(
                f"on a batch of {len(pixels)} it gives {probabilities.dtype} of shape {probabilities.shape}, not "
                f"({len(pixels)}, {NUM_CLASSES}) probabilities"
            )
        return probabilities

    def _not_ours(self, what: str) -> InputError:
        return InputError(
            f"model_path={self.path} is an ONNX model, but not one export.py writes: {what}. Pass a model written "
            f"by export.py, e.g. {EXPORT_EXAMPLE}."
        )


def _session_without_neighbours(model_bytes: bytes, options: Any) -> Any:
    """An onnxruntime session of the checked bytes, written alone into an empty folder. A graph may name
    external data files for its weights, and onnxruntime reads any file in or below the model's folder
    (it refuses only absolute paths and ones that leave it): a crafted model.onnx saved in a home folder
    could load .ssh/id_rsa as weights and have serve.py answer with its bytes. export.py writes no external
    data, so here any file a graph names is missing and the load fails. (Loaded from bytes instead,
    onnxruntime would look in the current folder.)"""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="mnist-onnx-") as folder:
        copy = Path(folder) / "model.onnx"
        copy.write_bytes(model_bytes)
        return ort.InferenceSession(str(copy), options, providers=["CPUExecutionProvider"])
