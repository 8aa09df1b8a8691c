"""What an ONNX graph from somewhere else may hold before onnxruntime runs it.

A graph is a program of operators. onnxruntime runs no Python, but a 32 KB graph can loop 2**62 times (Loop)
or allocate 10 GB (ConstantOfShape, Expand, broadcasting), on every batch, and a signal cannot stop it. So a
graph is run only if it is made of standard layers (no control flow), and if onnx's shape inference gives
every tensor a known size, at most MAX_VALUES_PER_PICTURE per picture and growing with the batch in
proportion, never empty. A shape read from a tensor (Shape, as torch.onnx.export writes for interpolate or
expand_as) may only be moved around (sliced, gathered, concatenated) and used as the size of what Reshape,
Expand, ConstantOfShape or Resize (stretching) make, never computed with nor used to pick a number: then every
dimension is a number or the batch, a tensor's size is a constant times a power of the batch, and sizes at
batches of 1 and 2 settle it for every batch (a batch times itself shows as 4x at a batch of 2). Four reviews
attacked this check; each graph they got through is a test in tests/test_export.py."""

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
     "ReduceMin", "ReduceLogSumExp", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Concat",
     # what torch.onnx.export writes for interpolate, pad, slicing, chunk, indexing, expand, repeat,
     # masked_fill and zeros_like
     "Resize", "Pad", "Slice", "Split", "Gather", "Expand", "Tile", "Where", "Equal", "Greater", "Less", "Not",
     "Sign", "Floor", "Ceil", "Round", "Shape", "ConstantOfShape", "ReduceL2", "DepthToSpace", "SpaceToDepth"}
)  # fmt: skip
# a shape read from a tensor may pass through these (their first input; any input of Concat), which move its
# numbers around without computing with them...
SHAPE_MOVERS = frozenset({"Concat", "Gather", "Slice", "Squeeze", "Unsqueeze", "Identity", "Cast"})
# ...and end as one of these inputs, the size of what a layer makes. Nowhere else: as the indices of a Gather
# or the ends of a Slice of a table, the batch picks any number from it, and as Pad's pads it adds to a size
SIZE_INPUTS = {"Reshape": {1}, "Expand": {1}, "ConstantOfShape": {0}, "Resize": {3}}
# the integers a graph computes (shapes, indices): onnx's shape inference stores them dimension by dimension,
# so a chain of 23 Concats doubling a shape took it 5 GB before any size was checked (a graph computes a few dozen)
MAX_INTEGERS = 10_000
INTEGER_TYPES = (7, 6)  # onnx.TensorProto.INT64 and INT32: the types it follows
SMALL_CONSTANT = 64  # values: real-valued weights up to this size are kept whole for shape inference
STANDARD_DOMAINS = frozenset({"", "ai.onnx"})
# 36x the largest activation of experiment=cnn_best and twice its largest weight matrix
MAX_VALUES_PER_PICTURE = 1_000_000
# all the tensors a picture makes, and the units of work of its layers (a multiply-add, a pooled value, and
# OVERHEAD_UNITS below): experiment=cnn_best makes about 0.1 M values and 7 M units a picture, so 70 of them
# fit in one ensemble
MAX_TOTAL_VALUES_PER_PICTURE = 10_000_000
MAX_WORK_PER_PICTURE = 500_000_000
MAX_FILE_BYTES = 256 * 2**20
# the layers of a graph (experiment=cnn_best: 20; a ResNet-50 about 500): the check costs about 2 KB a node,
# and 300,000 tiny nodes took 700 MB and 8 s
MAX_NODES = 10_000
# the largest batch a graph is run on (onnx_model.py splits larger ones): sizes are checked at it as well, as
# at 1 and 2, since a layer can compute with the batch dimension itself (a Resize of it by 1.499 keeps 1 and
# 2 and grows from 3 on)
MAX_BATCH = 256
# units of work for what onnxruntime does per small matrix and per convolution group beyond the multiply-adds
# (about 100 ns each, against about 1 ns a multiply-add)
OVERHEAD_UNITS = 100
# the matrices one MatMul multiplies for a picture (attention: one per head): onnxruntime keeps about 90 bytes
# for each, and a million 1x1 matrices took 88 MB a picture
MAX_MATRICES_PER_PICTURE = 1_000


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
    _check_operators(model, path)
    _check_constants(model.graph, path)
    _check_order(model.graph, path)
    _check_shapes_are_not_computed(model.graph.node, path)
    skeleton, pictures = _skeleton(model)
    _check_integers(_inferred(skeleton, pictures, 2, path, data_prop=False), path)
    shapes = {batch: _shapes(_inferred(skeleton, pictures, batch, path, True)) for batch in (1, 2, MAX_BATCH)}
    computed = [output for node in model.graph.node for output in node.output if output]
    try:
        _check_sizes(model.graph.node, computed, shapes, path)
        _check_work(model.graph.node, computed, shapes, path)
    except (KeyError, IndexError) as err:  # a node this check did not foresee: refused, not a traceback
        raise _refused(path, f"its shapes cannot be checked ({type(err).__name__}: {str(err)[:80]})") from err


def _check_operators(model: Any, path: str | Path) -> None:
    odd_domains = sorted({o.domain for o in model.opset_import} - STANDARD_DOMAINS)
    if odd_domains or model.functions:
        raise _refused(path, f"it uses operators of its own ({', '.join(odd_domains) or 'local functions'})")
    if model.graph.sparse_initializer:  # export.py writes none, and shape inference reads them apart
        raise _refused(path, "it has sparse weights")
    if len(model.graph.node) > MAX_NODES:
        raise _refused(path, f"it has {len(model.graph.node):,} nodes (at most {MAX_NODES:,})")
    for node in model.graph.node:
        if node.domain not in STANDARD_DOMAINS or node.op_type not in ALLOWED_OPS:
            raise _refused(path, f"it uses the operator {node.op_type[:40]!r}, which is not a standard layer")
        if any(a.name == "keep_aspect_ratio_policy" and a.s != b"stretch" for a in node.attribute):
            # one scale for every axis, the largest (or smallest) of them: sizes from the batch then grow as
            # a power of it (max(N, 3)**5 values)
            raise _refused(
                path, f"its {node.op_type} keeps the aspect ratio, which makes sizes grow faster than the batch"
            )


def _check_sizes(
    nodes: Any, computed: list[str], shapes: dict[int, dict[str, tuple[int, ...]]], path: str | Path
) -> None:
    """Every tensor a node makes: known, not empty (an empty one hides how it grows: a slice from row 2 on
    is empty at batches of 1 and 2), bounded per picture, constant or in proportion to the batch."""
    constants = {output for node in nodes if node.op_type == "Constant" for output in node.output}
    for name in computed:
        one, two, most = (math.prod(shapes[b][name]) if name in shapes[b] else None for b in (1, 2, MAX_BATCH))
        if one is None or two is None or most is None:
            raise _refused(path, f"the size of its tensor {name[:40]!r} is not known before it runs")
        empty = one == 0 and name not in constants
        if empty or one > MAX_VALUES_PER_PICTURE or two not in (one, 2 * one) or most not in (one, MAX_BATCH * one):
            raise _refused(
                path,
                f"its tensor {name[:40]!r} holds {one:,} values for one picture, {two:,} for two and {most:,} for "
                f"{MAX_BATCH} (at least one and at most {MAX_VALUES_PER_PICTURE:,} per picture, in proportion to "
                "the batch)",
            )


def _check_work(
    nodes: Any, computed: list[str], shapes: dict[int, dict[str, tuple[int, ...]]], path: str | Path
) -> None:
    """The values and work units of the whole graph, per picture at each batch checked."""
    for node in nodes:
        if node.op_type == "ConvTranspose":
            # onnxruntime's work buffer: output channels / groups x kernel x input area, as large as the
            # multiply-adds with one input channel (a 149x149 kernel: 2 GB at a batch of 1)
            pixels, weights = shapes[1].get(node.input[0], ()), shapes[1].get(node.input[1], ())
            buffer = math.prod(weights[1:]) * math.prod(pixels[2:]) if pixels and weights else None
            if buffer is None:
                raise _refused(path, "the size of its ConvTranspose's input or weights is not known before it runs")
            if buffer > MAX_VALUES_PER_PICTURE:
                raise _refused(
                    path,
                    f"its ConvTranspose needs a buffer of {buffer:,} values for one picture (at most "
                    f"{MAX_VALUES_PER_PICTURE:,})",
                )
        matrices = math.prod(shapes[1][node.output[0]][:-2]) if node.op_type == "MatMul" else 0
        if matrices > MAX_MATRICES_PER_PICTURE:
            raise _refused(
                path,
                f"its MatMul multiplies {matrices:,} matrices for one picture (at most {MAX_MATRICES_PER_PICTURE:,})",
            )
    for batch, at_batch in shapes.items():
        total = sum(math.prod(at_batch[name]) for name in computed)
        work = sum(_work(node, at_batch) for node in nodes)
        if total > batch * MAX_TOTAL_VALUES_PER_PICTURE or work > batch * MAX_WORK_PER_PICTURE:
            raise _refused(
                path,
                f"it computes {total:,} values and {work:,} units of work for {_pictures(batch)} (at most "
                f"{MAX_TOTAL_VALUES_PER_PICTURE:,} and {MAX_WORK_PER_PICTURE:,} per picture)",
            )


def _pictures(batch: int) -> str:
    return "one picture" if batch == 1 else f"{batch} pictures"


def _check_constants(graph: Any, path: str | Path) -> None:
    """The weights and constants hold the numbers their shapes say (a float declared as one number held
    200 MB, which every shape inference run copied), and their integers count against MAX_INTEGERS before
    anything reads them (a 25-million-integer table took 1.35 GB to check)."""
    import onnx

    stored = [*graph.initializer]
    for node in graph.node:
        if node.op_type == "Constant":
            if len(node.output) != 1:
                raise _refused(path, "it has a Constant that makes no tensor or more than one")
            stored += [a.t for a in node.attribute if a.type == a.TENSOR]
    integers = 0
    for tensor in stored:
        values = math.prod(tensor.dims)
        integers += values if tensor.data_type in INTEGER_TYPES else 0
        if tensor.data_location == tensor.EXTERNAL:
            continue  # no numbers here; the load from an empty folder refuses it (onnx_model.py)
        typed = len(tensor.float_data) + len(tensor.int32_data) + len(tensor.int64_data) + len(tensor.double_data)
        try:
            item = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
        except (KeyError, ValueError, TypeError):
            item = 0
        raw_wrong = bool(tensor.raw_data) and (item == 0 or len(tensor.raw_data) != values * item)
        if raw_wrong or typed > 2 * values:  # 2: a complex number is two
            raise _refused(path, f"its tensor {tensor.name[:40]!r} holds other than the {values:,} values of its shape")
    if integers > MAX_INTEGERS:
        raise _refused(path, f"it holds {integers:,} integers (shapes and indices; at most {MAX_INTEGERS:,})")


def _check_order(graph: Any, path: str | Path) -> None:
    """Each node after the nodes it reads, each tensor made once, as ONNX requires. onnxruntime sorts a graph
    itself, while shape inference reads it in order and takes the file's own word for the shape of a tensor
    made further down; this check and the rules below read it in order too."""
    made = {""} | {value.name for value in graph.input} | {weights.name for weights in graph.initializer}
    for node in graph.node:
        unknown = [name for name in node.input if name not in made]
        if unknown:
            raise _refused(path, f"its tensor {unknown[0][:40]!r} is read before the node that makes it")
        again = [name for name in node.output if name and name in made]  # "": an optional output left out
        if again:
            raise _refused(path, f"its tensor {again[0][:40]!r} is made more than once")
        made.update(node.output)


def _check_shapes_are_not_computed(nodes: Any, path: str | Path) -> None:
    """Follows every shape read from a tensor and refuses one that meets arithmetic: the batch times itself
    (or plus one) makes sizes that grow faster than the batch, which sizes at batches of 1 and 2 do not show."""
    shapes: set[str] = set()
    for node in nodes:
        carried = {i for i, name in enumerate(node.input) if name in shapes}
        # through its data alone: a Gather of a shape by a shape picks a number by the batch, as from a table
        moved = node.op_type in SHAPE_MOVERS and carried and (node.op_type == "Concat" or carried == {0})
        if node.op_type == "Shape" or moved:
            shapes.update(node.output)
        elif misused := sorted(carried - SIZE_INPUTS.get(node.op_type, set())):
            name = node.input[misused[0]][:40]
            raise _refused(path, f"its {node.op_type[:40]} computes with the shape of a tensor ({name!r})")


def _skeleton(model: Any) -> tuple[Any, frozenset[str]]:
    """The graph without the numbers of its real-valued weights and constants (but small ones), each declared
    as an input of its shape instead (shape inference needs no more, and copying 244 MB of weights for each
    of its runs took 1.8 GB), and the names of the inputs the pictures go to."""
    import onnx

    skeleton = onnx.ModelProto(ir_version=model.ir_version, opset_import=model.opset_import)
    weights = {w.name for w in model.graph.initializer}
    pictures = [value for value in model.graph.input if value.name not in weights]
    skeleton.graph.input.extend(pictures)
    skeleton.graph.output.extend(model.graph.output)
    for tensor in model.graph.initializer:
        _keep_or_declare(tensor, tensor.name, skeleton.graph)
    for node in model.graph.node:
        value = next((a.t for a in node.attribute if a.name == "value" and a.type == a.TENSOR), None)
        if node.op_type == "Constant" and value is not None and math.prod(value.dims) > SMALL_CONSTANT:
            _keep_or_declare(value, node.output[0], skeleton.graph)
        else:
            skeleton.graph.node.append(node)
    return skeleton, frozenset(value.name for value in pictures)


def _keep_or_declare(tensor: Any, name: str, graph: Any) -> None:
    """`tensor` in `graph` under `name` (the checked model itself is left as it is)."""
    import onnx

    # shapes and indices, whose values inference follows, and small constants such as a Resize's scales
    if tensor.data_type in INTEGER_TYPES or math.prod(tensor.dims) <= SMALL_CONSTANT:
        kept = graph.initializer.add()
        kept.CopyFrom(tensor)
        kept.name = name
    else:
        graph.input.append(onnx.helper.make_tensor_value_info(name, tensor.data_type, list(tensor.dims)))


def _inferred(skeleton: Any, pictures: frozenset[str], batch: int, path: str | Path, data_prop: bool) -> Any:
    """The graph as onnx's shape inference sees it with the pictures' batch dimension set to `batch` (with
    `data_prop`, the integers it computes are followed too, so sizes made from shapes are known)."""
    import onnx

    fixed = onnx.ModelProto()
    fixed.CopyFrom(skeleton)
    for graph_output in fixed.graph.output:  # the file's own word on shapes: inferred afresh instead
        graph_output.type.tensor_type.ClearField("shape")
    for graph_input in fixed.graph.input:
        dims = graph_input.type.tensor_type.shape.dim
        if dims and graph_input.name in pictures:
            dims[0].dim_value = batch
    try:
        return onnx.shape_inference.infer_shapes(fixed, strict_mode=True, data_prop=data_prop).graph
    except Exception as err:  # onnx's InferenceError and ValidationError
        raise _refused(path, f"its shapes cannot be inferred ({str(err).splitlines()[0][:150]})") from err


def _check_integers(graph: Any, path: str | Path) -> None:
    """Before inference follows the integers of a graph (shapes, indices): each of known size, at most
    MAX_INTEGERS in all, constants included."""

    # a table of them is followed whole, about 74 bytes each: 61 MB of them took 1.5 GB to check
    integers = sum(math.prod(weights.dims) for weights in graph.initializer if weights.data_type in INTEGER_TYPES)
    for value in [*graph.value_info, *graph.output]:
        tensor = value.type.tensor_type
        if tensor.elem_type not in INTEGER_TYPES:
            continue
        dims = tensor.shape.dim
        if not tensor.HasField("shape") or not all(d.HasField("dim_value") for d in dims):
            raise _refused(path, f"the size of its tensor {value.name[:40]!r} is not known before it runs")
        integers += math.prod(d.dim_value for d in dims)
    if integers > MAX_INTEGERS:
        raise _refused(path, f"it computes {integers:,} integers (shapes and indices; at most {MAX_INTEGERS:,})")


def _shapes(graph: Any) -> dict[str, tuple[int, ...]]:
    """Every tensor's shape (inputs, weights and what the nodes compute) that shape inference fixed."""
    shapes = {weights.name: tuple(weights.dims) for weights in graph.initializer}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        tensor = value.type.tensor_type  # no shape at all: not even its rank is known
        if tensor.HasField("shape") and all(d.HasField("dim_value") for d in tensor.shape.dim):
            shapes[value.name] = tuple(d.dim_value for d in tensor.shape.dim)
    return shapes


def _work(node: Any, shapes: dict[str, tuple[int, ...]]) -> int:
    """The units of work of a layer: its multiply-adds, or the comparisons or additions of a pooling window
    (the rest do about one operation per value they make), with OVERHEAD_UNITS for each matrix of a batched
    MatMul and each group of a grouped convolution: 1x1 matrices broadcast a million times a picture took
    1.2 s a picture for ten layers, and a ConvTranspose of a million one-value groups 90 ms a picture."""
    output = shapes.get(node.output[0]) if node.output else None
    if output is None or node.op_type not in {"MaxPool", "AveragePool", "Conv", "ConvTranspose", "Gemm", "MatMul"}:
        return 0
    made = math.prod(output)
    attributes = {a.name: a for a in node.attribute}
    if node.op_type in {"MaxPool", "AveragePool"}:  # a 500x500 window over a million values: 6e10 a picture
        return made * math.prod(attributes["kernel_shape"].ints if "kernel_shape" in attributes else [])
    first, second = shapes.get(node.input[0], ()), shapes.get(node.input[1], ())
    if node.op_type in {"Conv", "ConvTranspose"}:
        # weights: (out channels, in channels / groups, *kernel) or (in channels, out channels / groups, *kernel)
        work = (made if node.op_type == "Conv" else math.prod(first)) * math.prod(second[1:])
        groups = attributes["group"].i if "group" in attributes else 1
        return work + (groups * OVERHEAD_UNITS if groups > 1 else 0)
    if node.op_type == "Gemm":
        trans_a = "transA" in attributes and attributes["transA"].i
        return made * (first[0] if trans_a else first[-1])
    return made * (first[-1] if first else 1) + math.prod(output[:-2]) * OVERHEAD_UNITS  # a matrix a step


def _refused(path: str | Path, why: str) -> InputError:
    return InputError(
        f"model_path={path} is refused: {why}. A graph from elsewhere is run only if it is made of standard "
        f"layers (no loops or conditions, no arithmetic on shapes) with tensors of bounded size, so that a "
        f"crafted one cannot run forever or fill the memory; export.py writes such graphs. Pass a model "
        f"written by export.py, e.g. {EXPORT_EXAMPLE}."
    )
