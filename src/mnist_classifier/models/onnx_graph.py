"""What an ONNX graph from somewhere else may hold before onnxruntime runs it.

A graph is a program of operators. onnxruntime runs no Python, but a 32 KB graph can loop 2**62 times (Loop)
or allocate 10 GB (ConstantOfShape, Expand, broadcasting), on every batch, and a signal cannot stop it. So a
graph is run only if it is made of standard layers (no control flow, no operators that compute shapes), and
if onnx's shape inference gives every tensor a known size, at most MAX_VALUES_PER_PICTURE per picture and
growing with the batch in proportion: with no shape arithmetic, a tensor's size is a constant times a power
of the batch, so sizes at batches of 1 and 2 settle it for every batch."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from mnist_classifier.errors import InputError

EXPORT_EXAMPLE = "logs/export/runs/<run>/model.onnx"

# the layers export.py writes for this project's networks (and what a user's own network commonly adds)
ALLOWED_OPS = frozenset(
    {"Conv", "ConvTranspose", "BatchNormalization", "InstanceNormalization", "LayerNormalization", "MaxPool",
     "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Gemm", "MatMul", "Dropout", "Identity", "Constant",
     "Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Gelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh",
     "Softplus", "Clip", "Erf", "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Reciprocal", "Exp", "Log", "Neg",
     "Abs", "Max", "Min", "Sum", "Mean", "Cast", "Softmax", "LogSoftmax", "ReduceMean", "ReduceSum", "ReduceMax",
     "ReduceMin", "ReduceLogSumExp", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Concat"}
)  # fmt: skip
STANDARD_DOMAINS = frozenset({"", "ai.onnx"})
# 36x the largest activation of experiment=cnn_best and twice its largest weight matrix
MAX_VALUES_PER_PICTURE = 1_000_000
MAX_FILE_BYTES = 256 * 2**20


def check_graph(model_bytes: bytes, path: str | Path) -> None:
    """Raise InputError unless the graph holds only standard layers whose tensors stay bounded."""
    import onnx

    try:
        model = onnx.load_model_from_string(model_bytes)
    except Exception as err:  # protobuf's DecodeError and onnx's own
        raise InputError(
            f"model_path={path} cannot be read as an ONNX model ({str(err)[:100] or type(err).__name__}). It may be "
            f"truncated or not an ONNX model; pass a model written by export.py, e.g. {EXPORT_EXAMPLE}."
        ) from err
    odd_domains = sorted({o.domain for o in model.opset_import} - STANDARD_DOMAINS)
    if odd_domains or model.functions:
        raise _refused(path, f"it uses operators of its own ({', '.join(odd_domains) or 'local functions'})")
    for node in model.graph.node:
        if node.domain not in STANDARD_DOMAINS or node.op_type not in ALLOWED_OPS:
            raise _refused(path, f"it uses the operator {node.op_type[:40]!r}, which is not a standard layer")
    sizes = [_tensor_sizes(model, batch, path) for batch in (1, 2)]
    for name, one in sizes[0].items():
        two = sizes[1].get(name, 0)
        if one > MAX_VALUES_PER_PICTURE or two not in (one, 2 * one):
            raise _refused(
                path,
                f"its tensor {name[:40]!r} holds {one:,} values for one picture and {two:,} for two (at most "
                f"{MAX_VALUES_PER_PICTURE:,} per picture, in proportion to the batch)",
            )


def _tensor_sizes(model: Any, batch: int, path: str | Path) -> dict[str, int]:
    """Every tensor's number of values, by onnx's shape inference with the batch dimension set to `batch`."""
    import onnx

    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    for graph_input in fixed.graph.input:
        dims = graph_input.type.tensor_type.shape.dim
        if dims:
            dims[0].dim_value = batch
    try:
        inferred = onnx.shape_inference.infer_shapes(fixed, strict_mode=True, data_prop=True)
    except Exception as err:  # onnx's InferenceError and ValidationError
        raise _refused(path, f"its shapes cannot be inferred ({str(err).splitlines()[0][:150]})") from err
    sizes = {}
    for value in [*inferred.graph.value_info, *inferred.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if not all(d.HasField("dim_value") for d in dims):
            raise _refused(path, f"the size of its tensor {value.name[:40]!r} is not known before it runs")
        sizes[value.name] = math.prod(d.dim_value for d in dims)
    return sizes


def _refused(path: str | Path, why: str) -> InputError:
    return InputError(
        f"model_path={path} is refused: {why}. A graph from elsewhere is run only if it is made of standard "
        f"layers (no loops, conditions or operators that compute shapes) with tensors of bounded size, so that a "
        f"crafted one cannot run forever or fill the memory; export.py writes such graphs. Pass a model "
        f"written by export.py, e.g. {EXPORT_EXAMPLE}."
    )
