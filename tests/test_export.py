"""export.py: ONNX, torch.export (.pt2) and safetensors files that reproduce the checkpoint, checked by
export.py itself; predict.py through onnxruntime, eval.py and predict.py from safetensors weights; model
files are untrusted input."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from conftest import assert_ok, quick_checkpoint, run_cli
from drawn_digits import write_drawn_digits
from test_predict import read_rows

from mnist_classifier.runtime.metrics_file import read_metrics

# model_path= a TorchScript or torch.export file (predict.py, serve.py)
NO_UNPICKLING = "unpickles it, which can run code from the file, so neither predict.py nor serve.py loads one"


@pytest.fixture(scope="module")
def checkpoint(synthetic_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return quick_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.ckpt", synthetic_data_dir, "model=cnn")


@pytest.fixture(scope="module")
def onnx_run(checkpoint: Path, synthetic_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("export")
    assert_ok(run_cli("export.py", f"ckpt_path={checkpoint}", f"data.data_dir={synthetic_data_dir}",
                      f"hydra.run.dir={run_dir}"))  # fmt: skip
    return run_dir


def test_onnx_export_is_checked_and_carries_its_metadata(onnx_run: Path, checkpoint: Path) -> None:
    check = json.loads((onnx_run / "export_check.json").read_text())
    assert check["passed"] and check["format"] == "onnx" and check["test_images"] == 200  # the synthetic test set
    assert abs(check["exported_test_acc"] - check["checkpoint_test_acc"]) <= 0.0001
    assert check["max_abs_prob_diff"] <= 1e-4
    model = onnx.load(str(onnx_run / "model.onnx"))
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    assert metadata["checkpoint_sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert json.loads(metadata["class_labels"]) == [str(d) for d in range(10)]
    assert float(metadata["test_accuracy"]) == pytest.approx(check["checkpoint_test_acc"])
    assert "[0, 1]" in metadata["input"] and "white digit on black" in metadata["input"]
    session = ort.InferenceSession(str(onnx_run / "model.onnx"))
    for batch in (1, 17):  # a dynamic batch axis
        probabilities, logits = session.run(None, {"pixels": np.random.rand(batch, 1, 28, 28).astype(np.float32)})
        assert probabilities.shape == logits.shape == (batch, 10)
        np.testing.assert_allclose(probabilities.sum(1), 1, atol=1e-5)


def test_pt2_export_to_a_chosen_path(checkpoint: Path, synthetic_data_dir: Path, tmp_path: Path) -> None:
    output = tmp_path / "ship" / "digits.pt2"
    result = run_cli("export.py", f"ckpt_path={checkpoint}", "format=pt2", f"output={output}",
                     f"data.data_dir={synthetic_data_dir}", f"hydra.run.dir={tmp_path / 'run'}")  # fmt: skip
    assert_ok(result)
    check = json.loads((tmp_path / "run" / "export_check.json").read_text())
    assert check["passed"] and check["format"] == "pt2" and check["max_abs_prob_diff"] <= 1e-4
    assert "Warning" not in result.stderr, "a channels_last weight made torch.export.save warn"
    into_a_folder = run_cli("export.py", f"ckpt_path={checkpoint}", "format=pt2", f"output={output.parent}",
                            f"hydra.run.dir={tmp_path / 'run2'}")  # fmt: skip
    assert into_a_folder.returncode == 2 and "Traceback" not in into_a_folder.stderr  # was a temp file in its parent
    assert f"output={output.parent} is a folder; name the file to write" in into_a_folder.stderr
    extra = {"metadata.json": ""}
    program = torch.export.load(str(output), extra_files=extra)
    metadata = json.loads(extra["metadata.json"])
    assert metadata["checkpoint_sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert float(metadata["test_accuracy"]) == pytest.approx(check["checkpoint_test_acc"])
    for batch in (1, 17):  # a dynamic batch axis
        probabilities, _ = program.module()(torch.rand(batch, 1, 28, 28))
        assert probabilities.shape == (batch, 10)
    assert "deprecated" not in result.stderr


@pytest.fixture(scope="module")
def safetensors_run(checkpoint: Path, synthetic_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("export_st")
    assert_ok(run_cli("export.py", f"ckpt_path={checkpoint}", "format=safetensors",
                      f"data.data_dir={synthetic_data_dir}", f"hydra.run.dir={run_dir}"))  # fmt: skip
    return run_dir


def test_safetensors_export_holds_no_pickle_and_serves_eval_and_predict(
    safetensors_run: Path, checkpoint: Path, synthetic_data_dir: Path, tmp_path: Path
) -> None:
    from safetensors import safe_open

    check = json.loads((safetensors_run / "export_check.json").read_text())
    assert check["passed"] and check["format"] == "safetensors" and check["max_abs_prob_diff"] <= 1e-4
    weights = safetensors_run / "model.safetensors"
    with safe_open(str(weights), framework="pt") as file:  # tensors and a JSON header, nothing else
        assert file.metadata()["checkpoint_sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
        names = set(file.keys())
    stored = torch.load(checkpoint, weights_only=True)["state_dict"]
    assert names == {name.removeprefix("net.") for name in stored if name.startswith("net.")}
    config = json.loads((safetensors_run / "model.json").read_text())
    assert config["hyper_parameters"]["net"]["_target_"].startswith("mnist_classifier.models.")
    for name, source in (("ckpt", checkpoint), ("weights", weights)):
        assert_ok(run_cli("eval.py", f"ckpt_path={source}", f"data.data_dir={synthetic_data_dir}",
                          f"hydra.run.dir={tmp_path / ('eval_' + name)}"))  # fmt: skip
    assert read_metrics(tmp_path / "eval_ckpt")["test/acc"] == read_metrics(tmp_path / "eval_weights")["test/acc"]
    write_drawn_digits(tmp_path / "drawn")
    assert_ok(run_cli("predict.py", f"ckpt_path={weights}", f"inputs={tmp_path / 'drawn'}",
                      f"hydra.run.dir={tmp_path / 'predict'}"))  # fmt: skip
    assert len(read_rows(tmp_path / "predict")) > 0


def test_safetensors_weights_are_checked_like_a_checkpoint(safetensors_run: Path, tmp_path: Path) -> None:
    from mnist_classifier.checkpoint.loader import load_checkpoint
    from mnist_classifier.errors import CheckpointError

    weights = tmp_path / "model.safetensors"
    weights.write_bytes((safetensors_run / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match=r"needs its model\.json beside it"):
        load_checkpoint(weights)
    config = json.loads((safetensors_run / "model.json").read_text())
    config["hyper_parameters"]["net"]["_target_"] = "os.system"
    (tmp_path / "model.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="not on the allowlist"):
        load_checkpoint(weights)
    weights.write_bytes(weights.read_bytes()[:300])
    with pytest.raises(CheckpointError, match="cannot be read as a safetensors file"):
        load_checkpoint(weights)


def test_a_safetensors_header_of_many_empty_tensors_is_refused_before_it_is_read(
    safetensors_run: Path, tmp_path: Path
) -> None:
    """safetensors reads headers of up to 100 MB, taking about 37x that in memory: 89 MB took 3.3 GB."""
    from mnist_classifier.checkpoint.loader import load_checkpoint
    from mnist_classifier.errors import CheckpointError

    empty = {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}
    header = json.dumps({f"net.t{i}": empty for i in range(25_000)}, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)
    (tmp_path / "model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header)
    (tmp_path / "model.json").write_bytes((safetensors_run / "model.json").read_bytes())
    with pytest.raises(CheckpointError, match=r"its safetensors header is 1,\d{3},\d{3} bytes, over the 1,000,000"):
        load_checkpoint(tmp_path / "model.safetensors")


@pytest.mark.parametrize(
    "text",
    [
        b"[" * 200_000 + b"]" * 200_000,
        b'{"format": ' + b"9" * 5000 + b"}",
        b'{"format": NaN}',
        b'{"format": "',
        b"\xff",
    ],
    ids=["nested 200,000 deep", "5,000-digit number", "NaN", "cut short", "not UTF-8"],
)
def test_a_crafted_model_json_is_refused_with_a_message(text: bytes, safetensors_run: Path, tmp_path: Path) -> None:
    """A deep nesting (RecursionError) and a huge number (ValueError) were tracebacks with exit 1."""
    (tmp_path / "model.safetensors").write_bytes((safetensors_run / "model.safetensors").read_bytes())
    (tmp_path / "model.json").write_bytes(text)
    write_drawn_digits(tmp_path / "drawn")
    result = run_cli("predict.py", f"ckpt_path={tmp_path / 'model.safetensors'}", f"inputs={tmp_path / 'drawn'}",
                     f"hydra.run.dir={tmp_path / 'run'}")  # fmt: skip
    assert result.returncode == 2, result.stderr[-2000:]
    assert "model.json is not JSON export.py writes" in result.stderr and "Traceback" not in result.stderr


def test_predict_through_onnxruntime_matches_the_checkpoint(onnx_run: Path, checkpoint: Path, tmp_path: Path) -> None:
    pictures = [path for path, _ in write_drawn_digits(tmp_path / "drawn")]
    runs = {}
    for name, model in (("ckpt", f"ckpt_path={checkpoint}"), ("onnx", f"model_path={onnx_run / 'model.onnx'}")):
        assert_ok(run_cli("predict.py", model, f"inputs={tmp_path / 'drawn'}", f"hydra.run.dir={tmp_path / name}"))
        runs[name] = read_rows(tmp_path / name)
    assert len(runs["ckpt"]) == len(runs["onnx"]) == len(pictures)
    for with_ckpt, with_onnx in zip(runs["ckpt"], runs["onnx"], strict=True):
        assert with_ckpt["prediction"] == with_onnx["prediction"]
        assert max(abs(float(with_ckpt[f"p{c}"]) - float(with_onnx[f"p{c}"])) for c in range(10)) <= 1e-4
    assert read_metrics(tmp_path / "onnx")["model"].endswith("model.onnx")


def foreign_onnx(path: Path) -> Path:
    """A valid ONNX model that is not ours: a single Identity operator."""
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["x"], ["y"])],
        "identity",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [None, 3])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [None, 3])],
    )
    onnx.save(onnx.helper.make_model(graph), str(path))
    return path


def lookalike_onnx(path: Path, batch: int | None, classes: int) -> Path:
    """A graph with our input and output names and a 4-D `pixels`, but a fixed batch or another number of
    outputs: it passes the names check and used to fail on the first pictures (predict.py's traceback, a 500
    from serve.py, or three 'probabilities' served)."""
    weights = onnx.numpy_helper.from_array(np.full((784, classes), 0.01, np.float32), "w")
    graph = onnx.helper.make_graph(
        [
            onnx.helper.make_node("Flatten", ["pixels"], ["flat"]),
            onnx.helper.make_node("MatMul", ["flat", "w"], ["probabilities"]),
        ],
        "lookalike",
        [onnx.helper.make_tensor_value_info("pixels", onnx.TensorProto.FLOAT, [batch, 1, 28, 28])],
        [onnx.helper.make_tensor_value_info("probabilities", onnx.TensorProto.FLOAT, [batch, classes])],
        [weights],
    )
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)]), str(path))
    return path


def graph_onnx(path: Path, nodes: list[onnx.NodeProto], initializers: list[onnx.TensorProto], opset: int = 17) -> Path:
    """pixels -> Flatten -> `flat` (N, 784) -> `nodes` -> `features` (N, 784) -> MatMul -> probabilities."""
    helper = onnx.helper
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["pixels"], ["flat"]),
            *nodes,
            helper.make_node("MatMul", ["features", "w"], ["probabilities"]),
        ],
        "crafted",
        [helper.make_tensor_value_info("pixels", onnx.TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor_value_info("probabilities", onnx.TensorProto.FLOAT, ["N", 10])],
        [onnx.numpy_helper.from_array(np.full((784, 10), 0.01, np.float32), "w"), *initializers],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), str(path))
    return path


def endless_loop_onnx(path: Path) -> Path:
    """A Loop of 2**62 turns around the features: the load-time probe never returned, and SIGTERM could not
    stop it (only SIGKILL)."""
    helper, float_, bool_ = onnx.helper, onnx.TensorProto.FLOAT, onnx.TensorProto.BOOL
    body = helper.make_graph(
        [helper.make_node("Identity", ["go"], ["go_on"]), helper.make_node("Identity", ["carried"], ["carried_on"])],
        "body",
        [helper.make_tensor_value_info("turn", onnx.TensorProto.INT64, []),
         helper.make_tensor_value_info("go", bool_, []), helper.make_tensor_value_info("carried", float_, None)],
        [helper.make_tensor_value_info("go_on", bool_, []), helper.make_tensor_value_info("carried_on", float_, None)],
    )  # fmt: skip
    turns = onnx.numpy_helper.from_array(np.array(2**62, np.int64), "turns")
    go = onnx.numpy_helper.from_array(np.array(True), "go")
    return graph_onnx(path, [helper.make_node("Loop", ["turns", "go", "flat"], ["features"], body=body)], [turns, go])


def broadcast_onnx(path: Path, width: int) -> Path:
    """Each picture's 784 values times `width` ones by broadcasting, summed back: a crafted graph fills the
    memory this way at (784 x width) values a picture, with no large weight in the file."""
    helper = onnx.helper
    constants = [onnx.numpy_helper.from_array(np.array([2], np.int64), "axis"),
                 onnx.numpy_helper.from_array(np.ones((1, 1, width), np.float32), "ones")]  # fmt: skip
    nodes = [
        helper.make_node("Unsqueeze", ["flat", "axis"], ["column"]),
        helper.make_node("Mul", ["column", "ones"], ["wide"]),
        helper.make_node("ReduceSum", ["wide", "axis"], ["features"], keepdims=0),
    ]
    return graph_onnx(path, nodes, constants)


def many_wide_tensors_onnx(path: Path, branches: int, width: int) -> Path:
    """`branches` broadcasts of (784 x width) values a picture, each under the per-tensor limit, all summed
    at once: alive together, 300 of them took 2 GB at load (an 18 KB file)."""
    helper = onnx.helper
    constants = [onnx.numpy_helper.from_array(np.array([2], np.int64), "axis"),
                 onnx.numpy_helper.from_array(np.ones((1, 1, width), np.float32), "ones")]  # fmt: skip
    wide = [f"wide{i}" for i in range(branches)]
    nodes = [
        helper.make_node("Unsqueeze", ["flat", "axis"], ["column"]),
        *(helper.make_node("Mul", ["column", "ones"], [name]) for name in wide),
        helper.make_node("Sum", wide, ["all"]),
        helper.make_node("ReduceSum", ["all", "axis"], ["features"], keepdims=0),
    ]
    return graph_onnx(path, nodes, constants)


def long_chain_onnx(path: Path, layers: int) -> Path:
    """`layers` matrix products with one shared 784x784 weight: small tensors, a small file, and hours of work
    a picture for a long enough chain."""
    helper = onnx.helper
    weight = onnx.numpy_helper.from_array(np.eye(784, dtype=np.float32), "same")
    names = ["flat", *(f"chain{i}" for i in range(layers - 1)), "features"]
    nodes = [helper.make_node("MatMul", [before, "same"], [after]) for before, after in itertools.pairwise(names)]
    return graph_onnx(path, nodes, [weight])


def batch_squared_onnx(path: Path) -> Path:
    """The batch times itself ((N, 784) x (784, N)): a tensor growing with the square of the batch."""
    helper = onnx.helper
    nodes = [
        helper.make_node("Transpose", ["flat"], ["flat_t"]),
        helper.make_node("MatMul", ["flat", "flat_t"], ["square"]),
        helper.make_node("MatMul", ["square", "flat"], ["features"]),
    ]
    return graph_onnx(path, nodes, [])


def shape_arithmetic_onnx(path: Path) -> Path:
    """Rows of ones expanded to N + (N - 1)(N - 2) x 1000 rows, a count computed from the batch (Shape): one
    and two rows at batches of 1 and 2, as a proportionate graph, and 3.9 million rows (12 GB) at serve.py's
    batch of 64."""
    helper = onnx.helper
    constants = [onnx.numpy_helper.from_array(np.array(value, np.int64), name)
                 for name, value in (("zero", 0), ("one", 1), ("two", 2), ("thousand", 1000), ("axis", [0]),
                                     ("width", [784]))]  # fmt: skip
    ones = onnx.numpy_helper.from_array(np.ones((1, 784), np.float32), "ones")
    nodes = [
        helper.make_node("Shape", ["flat"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["n"]),
        helper.make_node("Sub", ["n", "one"], ["n1"]),
        helper.make_node("Sub", ["n", "two"], ["n2"]),
        helper.make_node("Mul", ["n1", "n2"], ["product"]),
        helper.make_node("Mul", ["product", "thousand"], ["extra"]),
        helper.make_node("Add", ["extra", "n"], ["rows"]),
        helper.make_node("Unsqueeze", ["rows", "axis"], ["rows1"]),
        helper.make_node("Concat", ["rows1", "width"], ["size"], axis=0),
        helper.make_node("Expand", ["ones", "size"], ["many"]),
        helper.make_node("ReduceSum", ["many", "axis"], ["summed"], keepdims=1),
        helper.make_node("Add", ["flat", "summed"], ["features"]),
    ]
    return graph_onnx(path, nodes, [*constants, ones])


def constants(**values: Any) -> list[onnx.TensorProto]:
    return [onnx.numpy_helper.from_array(np.asarray(value), name) for name, value in values.items()]


def hidden_rows_onnx(path: Path) -> Path:
    """Rows from the third on (none at batches of 1 and 2), each tiled 100,000 times: 62 MB at batches of 1
    and 2 passed the check, then 315 MB more for each picture after the second (20 GB at a batch of 64)."""
    helper = onnx.helper
    nodes = [
        helper.make_node("Slice", ["flat", "start", "end", "axis"], ["rows"]),
        helper.make_node("Tile", ["rows", "repeats"], ["wide"]),
        helper.make_node("ReduceSum", ["wide"], ["total"], keepdims=1),
        helper.make_node("Add", ["flat", "total"], ["features"]),
    ]
    values = constants(start=np.array([2]), end=np.array([2**62]), axis=np.array([0]), repeats=np.array([1, 100_000]))
    return graph_onnx(path, nodes, values)


def wide_pooling_onnx(path: Path) -> Path:
    """The picture resized to 1000x1000 (a million values, within the limit), then a 500x500 max-pooling
    window: 6e10 comparisons a picture (about 70 s), which only multiply-adds were counted against."""
    helper = onnx.helper
    nodes = [
        helper.make_node("Resize", ["pixels", "", "scales"], ["large"], mode="nearest"),
        helper.make_node("MaxPool", ["large"], ["pooled"], kernel_shape=[500, 500]),
        helper.make_node("ReduceMean", ["pooled", "axes"], ["mean"], keepdims=0),
        helper.make_node("Unsqueeze", ["mean", "axis"], ["column"]),
        helper.make_node("Add", ["flat", "column"], ["features"]),
    ]
    scales = np.array([1, 1, 1000 / 28, 1000 / 28], np.float32)
    return graph_onnx(path, nodes, constants(scales=scales, axes=np.array([1, 2, 3]), axis=np.array([1])))


def size_from_pixels_onnx(path: Path, out_of_order: bool) -> Path:
    """A tensor of (brightest pixel x 1e10) values, 40 GB for any picture with a white pixel and none for the
    load-time probe's black ones; its size is declared in the file's value_info, which shape inference took
    on trust. With `out_of_order`, the node that makes it comes before the one it reads, which shape inference
    then skips and onnxruntime sorts."""
    helper = onnx.helper
    one = helper.make_tensor("one", onnx.TensorProto.FLOAT, [1], [1.0])
    nodes = [
        helper.make_node("ReduceMax", ["pixels"], ["brightest"], keepdims=0),
        helper.make_node("Mul", ["brightest", "scale"], ["count"]),
        helper.make_node("Cast", ["count"], ["whole"], to=onnx.TensorProto.INT64),
        helper.make_node("Unsqueeze", ["whole", "axis"], ["size"]),
        helper.make_node("ConstantOfShape", ["size"], ["many"], value=one),
        helper.make_node("ReduceSum", ["many"], ["total"], keepdims=0),
        helper.make_node("Add", ["flat", "total"], ["features"]),
    ]
    if out_of_order:
        nodes.insert(0, nodes.pop(4))
    graph_onnx(path, nodes, constants(scale=np.array(1e10, np.float32), axis=np.array([0])))
    model = onnx.load(str(path))
    model.graph.value_info.append(helper.make_tensor_value_info("many", onnx.TensorProto.FLOAT, [1]))
    onnx.save(model, str(path))
    return path


def batch_lookup_onnx(path: Path) -> Path:
    """A table read at the batch size (Gather, its index a shape), the number used as a size: 1,000 values
    at a batch of 1, 2,000 at 2, as proportionate, and a billion (4 GB) from 3 on."""
    helper = onnx.helper
    table = np.full(1001, 10**9, np.int64)
    table[1], table[2] = 1000, 2000
    nodes = [
        helper.make_node("Shape", ["pixels"], ["batch"], start=0, end=1),
        helper.make_node("Gather", ["table", "batch"], ["size"], axis=0),
        helper.make_node("ConstantOfShape", ["size"], ["many"]),
        helper.make_node("ReduceSum", ["many"], ["total"], keepdims=0),
        helper.make_node("Add", ["flat", "total"], ["features"]),
    ]
    return graph_onnx(path, nodes, constants(table=table))


def aspect_ratio_onnx(path: Path) -> Path:
    """Resize to sizes [N, 3, 3, 3, 3] keeping the aspect ratio: every axis scaled by max(N, 3), so 3**5 values
    at batches of 1 and 2 and N**5 later (64**5 floats: 4.3 GB)."""
    helper = onnx.helper
    nodes = [
        helper.make_node("Shape", ["pixels"], ["batch"], start=0, end=1),
        helper.make_node("Concat", ["batch", "threes"], ["sizes"], axis=0),
        helper.make_node(
            "Resize",
            ["one", "", "", "sizes"],
            ["grown"],
            mode="nearest",
            axes=[1, 2, 3, 4, 5],
            keep_aspect_ratio_policy="not_smaller",
        ),
        helper.make_node("ReduceSum", ["grown"], ["total"], keepdims=0),
        helper.make_node("Add", ["flat", "total"], ["features"]),
    ]
    values = constants(one=np.ones([1] * 6, np.float32), threes=np.full(4, 3, np.int64))
    return graph_onnx(path, nodes, values, opset=18)


def doubled_shape_onnx(path: Path) -> Path:
    """A shape concatenated with itself 23 times: a 2 KB file, and onnx's shape inference, which follows the
    numbers one by one, needed about 5 GB to check it."""
    helper = onnx.helper
    nodes = [helper.make_node("Shape", ["pixels"], ["shape0"])]
    nodes += [helper.make_node("Concat", [f"shape{i}"] * 2, [f"shape{i + 1}"], axis=0) for i in range(23)]
    return graph_onnx(path, [*nodes, helper.make_node("Identity", ["flat"], ["features"])], [])


def unknown_rank_onnx(path: Path) -> Path:
    """Reshaped by a shape computed from the pixels, a tensor of unknown rank, then expanded to 100,000 rows:
    a shape inference with no shape at all read as a scalar of one value, and it took 300 MB a picture."""
    helper = onnx.helper
    nodes = [
        helper.make_node("ReduceSum", ["flat"], ["sum"], keepdims=0),
        helper.make_node("Mul", ["sum", "zero"], ["nothing"]),
        helper.make_node("Add", ["nothing", "pattern"], ["computed"]),
        helper.make_node("Cast", ["computed"], ["shape"], to=onnx.TensorProto.INT64),
        helper.make_node("Reshape", ["flat", "shape"], ["shaped"]),
        helper.make_node("Expand", ["shaped", "rows"], ["many"]),
        helper.make_node("ReduceMean", ["many"], ["mean"], keepdims=0),
        helper.make_node("Add", ["flat", "mean"], ["features"]),
    ]
    values = constants(zero=np.float32(0), pattern=np.array([1, -1], np.float32), rows=np.array([100_000, 1]))
    return graph_onnx(path, nodes, values, opset=13)  # at 17, inference keeps the rank


def batch_axis_resize_onnx(path: Path) -> Path:
    """The batch axis itself resized by 1.499: 1 and 2 rows at batches of 1 and 2, proportionate, then 1.5x
    more rows per Resize from 3 on (30 of them: 2.4 GB at a batch of 3)."""
    helper = onnx.helper
    nodes = [helper.make_node("Resize", ["flat", "", "scales"], ["taller"], mode="nearest"),
             helper.make_node("ReduceMean", ["taller"], ["mean"], keepdims=0),
             helper.make_node("Add", ["flat", "mean"], ["features"])]  # fmt: skip
    return graph_onnx(path, nodes, constants(scales=np.array([1.499, 1], np.float32)))


def broadcast_matmul_onnx(path: Path) -> Path:
    """(N, 1, 1, 1) x (2000, 1, 1): 2,000 one-by-one matrix products a picture, each one multiply-add, and
    about 90 bytes and 125 ns of onnxruntime's for each (a million of them: 88 MB a picture)."""
    helper = onnx.helper
    nodes = [helper.make_node("ReduceSum", ["flat", "axis"], ["sum"], keepdims=1),
             helper.make_node("Reshape", ["sum", "shape"], ["column"]),
             helper.make_node("MatMul", ["column", "ones"], ["products"]),
             helper.make_node("ReduceMean", ["products"], ["mean"], keepdims=0),
             helper.make_node("Add", ["flat", "mean"], ["features"])]  # fmt: skip
    values = constants(axis=np.array([1]), shape=np.array([-1, 1, 1, 1]), ones=np.ones((2000, 1, 1), np.float32))
    return graph_onnx(path, nodes, values)


def integer_table_onnx(path: Path) -> Path:
    """One number read from a table of 20,000: onnx's shape inference follows the whole table, about 74 bytes a
    number (61 MB of them took 1.5 GB to check)."""
    helper = onnx.helper
    nodes = [helper.make_node("Gather", ["table", "index"], ["number"], axis=0),
             helper.make_node("Cast", ["number"], ["value"], to=onnx.TensorProto.FLOAT),
             helper.make_node("Add", ["flat", "value"], ["features"])]  # fmt: skip
    return graph_onnx(path, nodes, constants(table=np.arange(20_000), index=np.array(3)))


def many_nodes_onnx(path: Path) -> Path:
    """10,001 layers that do nothing: the check costs about 2 KB and 25 us a node (300,000 took 700 MB)."""
    helper = onnx.helper
    names = ["flat", *(f"same{i}" for i in range(10_000)), "features"]
    return graph_onnx(path, [helper.make_node("Identity", [a], [b]) for a, b in itertools.pairwise(names)], [])


def transposed_conv_onnx(path: Path) -> Path:
    """The picture resized to 100x100, then a 100x100-kernel ConvTranspose of one channel: onnxruntime's work
    buffer of 100 million values (a 149x149 kernel: 2 GB at a batch of 1), which no tensor shows."""
    helper = onnx.helper
    nodes = [
        helper.make_node("Resize", ["pixels", "", "scales"], ["large"], mode="nearest"),
        helper.make_node("ConvTranspose", ["large", "kernel"], ["spread"]),
        helper.make_node("Slice", ["spread", "start", "end", "axes"], ["corner"]),
        helper.make_node("Flatten", ["corner"], ["features"]),
    ]
    scales = np.array([1, 1, 100.2 / 28, 100.2 / 28], np.float32)
    values = constants(scales=scales, kernel=np.full((1, 1, 100, 100), 1e-4, np.float32), start=np.array([0, 0]),
                       end=np.array([28, 28]), axes=np.array([2, 3]))  # fmt: skip
    return graph_onnx(path, nodes, values)


def shape_picked_onnx(path: Path) -> Path:
    """The batch size as an index into a shape padded with a table (Gather of a shape by a shape): the batch
    picks any number again, 1e8 values at a batch of 3 (a fifth review)."""
    helper = onnx.helper
    table = np.ones(300, np.int64)
    table[2] = 10**8
    nodes = [
        helper.make_node("Shape", ["pixels"], ["batch"], start=0, end=1),
        helper.make_node("Concat", ["batch", "table"], ["padded"], axis=0),
        helper.make_node("Gather", ["padded", "batch"], ["picked"], axis=0),
        helper.make_node("Concat", ["batch", "picked"], ["size"], axis=0),
        helper.make_node("ConstantOfShape", ["size"], ["many"]),
        helper.make_node("ReduceSum", ["many", "axis"], ["total"], keepdims=1),
        helper.make_node("Add", ["flat", "total"], ["features"]),
    ]
    return graph_onnx(path, nodes, constants(table=table, axis=np.array([1])))


def oversized_constant_onnx(path: Path) -> Path:
    """A weight declared as one number holding 400 bytes: the check keeps small constants whole for shape
    inference, so a small declared shape over 200 MB of numbers was copied for each of its runs."""
    path = graph_onnx(path, [onnx.helper.make_node("Add", ["flat", "bias"], ["features"])],
                      constants(bias=np.zeros(1, np.float32)))  # fmt: skip
    model = onnx.load(str(path))
    model.graph.initializer[1].raw_data = bytes(400)
    onnx.save(model, str(path))
    return path


def unsized_picture_onnx(path: Path) -> Path:
    """Pictures declared (N, 1, H, W), through a ConvTranspose whose output_shape fixes its size: the check
    met a picture of unknown size and ended in a KeyError (exit 1, a traceback)."""
    helper = onnx.helper
    graph = helper.make_graph(
        [helper.make_node("ConvTranspose", ["pixels", "kernel"], ["spread"], output_shape=[28, 28]),
         helper.make_node("Flatten", ["spread"], ["flat"]),
         helper.make_node("MatMul", ["flat", "w"], ["probabilities"])],
        "unsized",
        [helper.make_tensor_value_info("pixels", onnx.TensorProto.FLOAT, ["N", 1, "H", "W"])],
        [helper.make_tensor_value_info("probabilities", onnx.TensorProto.FLOAT, ["N", 10])],
        constants(kernel=np.ones((1, 1, 3, 3), np.float32), w=np.full((784, 10), 0.01, np.float32)),
    )  # fmt: skip
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (unsized_picture_onnx, "the size of its ConvTranspose's input or weights is not known"),
        (shape_picked_onnx, "its Gather computes with the shape of a tensor ('padded')"),
        (oversized_constant_onnx, "its tensor 'bias' holds other than the 1 values of its shape"),
        (transposed_conv_onnx, "its ConvTranspose needs a buffer of 100,000,000 values for one picture"),
        (unknown_rank_onnx, "the size of its tensor 'shaped' is not known before it runs"),
        (batch_axis_resize_onnx, "holds 784 values for one picture, 1,568 for two and 300,272 for 256"),
        (broadcast_matmul_onnx, "its MatMul multiplies 2,000 matrices for one picture (at most 1,000)"),
        (integer_table_onnx, "it holds 20,001 integers (shapes and indices; at most 10,000)"),
        (many_nodes_onnx, "it has 10,003 nodes (at most 10,000)"),
        (batch_lookup_onnx, "its Gather computes with the shape of a tensor ('batch')"),
        (aspect_ratio_onnx, "its Resize keeps the aspect ratio"),
        (doubled_shape_onnx, "it computes 67,108,860 integers (shapes and indices; at most 10,000)"),
        (hidden_rows_onnx, "its tensor 'rows' holds 0 values for one picture, 0 for two and 199,136 for 256"),
        (wide_pooling_onnx, "and 62,750,257,940 units of work for one picture"),
        (lambda path: size_from_pixels_onnx(path, False), "the size of its tensor 'many' is not known"),
        (lambda path: size_from_pixels_onnx(path, True), "its tensor 'size' is read before the node that makes it"),
    ],
    ids=[
        "picture of unknown size",
        "shape picked by the batch",
        "constant larger than its shape",
        "ConvTranspose buffer",
        "unknown rank",
        "batch axis resized",
        "broadcast matrix products",
        "integer table",
        "many nodes",
        "batch picks from a table",
        "aspect ratio kept",
        "doubled shape",
        "rows hidden at batches 1 and 2",
        "wide pooling window",
        "declared size",
        "nodes out of order",
    ],
)
def test_graphs_that_passed_the_check_in_five_reviews_are_refused(
    make: Callable[[Path], Path], message: str, tmp_path: Path
) -> None:
    from mnist_classifier.errors import InputError
    from mnist_classifier.models.onnx_graph import check_graph

    path = make(tmp_path / "crafted.onnx")
    with pytest.raises(InputError, match=re.escape(message)):
        check_graph(path.read_bytes(), path)


def neighbour_reading_onnx(path: Path, location: str) -> Path:
    """A working 10-class graph whose weights are external data: the file `location` in or below the model's
    folder. onnxruntime reads any such file, so a crafted model could serve another file's bytes; it loaded
    and predicted before models were loaded from a copy alone in an empty folder."""
    lookalike_onnx(path, None, 10)
    weights = onnx.load(str(path)).graph.initializer[0]
    (path.parent / location).parent.mkdir(parents=True, exist_ok=True)
    (path.parent / location).write_bytes(weights.raw_data)
    model = onnx.load(str(path))
    onnx.external_data_helper.set_external_data(model.graph.initializer[0], location)
    model.graph.initializer[0].ClearField("raw_data")
    model.graph.initializer[0].data_location = onnx.TensorProto.EXTERNAL
    path.write_bytes(model.SerializeToString())
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda d, run: (d / "junk.onnx").write_bytes(b"\x00garbage" * 50) and d / "junk.onnx",
            "cannot be read as an ONNX model",
        ),
        (
            lambda d, run: (d / "cut.onnx").write_bytes((run / "model.onnx").read_bytes()[:500]) and d / "cut.onnx",
            "cannot be read as an ONNX model",
        ),
        (lambda d, run: foreign_onnx(d / "foreign.onnx"), "is an ONNX model, but not one export.py writes"),
        (lambda d, run: lookalike_onnx(d / "three.onnx", None, 3), "it gives float32 of shape (1, 3), not (1, 10)"),
        (lambda d, run: lookalike_onnx(d / "one.onnx", 1, 10), "A model export.py writes takes any batch"),
        (lambda d, run: endless_loop_onnx(d / "loop.onnx"), "it uses the operator 'Loop', which is not a standard"),
        (lambda d, run: broadcast_onnx(d / "wide.onnx", 2000), "holds 1,568,000 values for one picture"),
        (lambda d, run: batch_squared_onnx(d / "square.onnx"), "holds 1 values for one picture, 4 for two"),
        (lambda d, run: shape_arithmetic_onnx(d / "rows.onnx"), "its Sub computes with the shape of a tensor ('n')"),
        (
            lambda d, run: many_wide_tensors_onnx(d / "many.onnx", 14, 1000),
            "computes 11,762,362 values and 7,940 units of work",
        ),
        (lambda d, run: long_chain_onnx(d / "chain.onnx", 1000), "and 614,763,940 units of work for one picture"),
        (lambda d, run: neighbour_reading_onnx(d / "beside.onnx", "notes.bin"), "name external data files"),
        (lambda d, run: neighbour_reading_onnx(d / "below.onnx", "keys/notes.bin"), "name external data files"),
        (lambda d, run: (d / "model.pt").write_bytes(b"PK") and d / "model.pt", NO_UNPICKLING),
        (lambda d, run: (d / "model.pt2").write_bytes(b"PK") and d / "model.pt2", NO_UNPICKLING),
        (lambda d, run: d / "absent.onnx", "no such file"),
    ],
    ids=[
        "garbage",
        "truncated",
        "foreign graph",
        "three classes",
        "fixed batch",
        "endless loop",
        "broadcast",
        "batch squared",
        "shape arithmetic",
        "many wide tensors",
        "long chain",
        "file beside",
        "file below",
        "torchscript",
        "pt2",
        "missing",
    ],
)
def test_untrusted_model_files_are_refused(
    make: Callable[[Path, Path], Path], message: str, onnx_run: Path, tmp_path: Path
) -> None:
    write_drawn_digits(tmp_path / "drawn")
    model_path = make(tmp_path, onnx_run)
    result = run_cli("predict.py", f"model_path={model_path}", f"inputs={tmp_path / 'drawn'}",
                     f"hydra.run.dir={tmp_path / 'run'}")  # fmt: skip
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(("script", "file"), [("eval.py", "model.onnx"), ("predict.py", "model.onnx"),
                                             ("eval.py", "model.pt2")])  # fmt: skip
def test_an_exported_file_as_ckpt_path_says_where_it_goes(
    script: str, file: str, onnx_run: Path, tmp_path: Path
) -> None:
    """Was: 'cannot be read as a PyTorch checkpoint ... your checkpoint file is corrupted'."""
    path = onnx_run / file if file.endswith(".onnx") else tmp_path / file
    if not path.exists():
        path.write_bytes(b"PK")
    write_drawn_digits(tmp_path / "drawn")
    inputs = [f"inputs={tmp_path / 'drawn'}"] if script == "predict.py" else []
    result = run_cli(script, f"ckpt_path={path}", *inputs, f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "corrupted" not in result.stderr
    expected = f"model_path={path}" if file.endswith(".onnx") else "Pass the checkpoint it was exported from"
    assert f"ckpt_path={path} is " in result.stderr and expected in result.stderr


class TorchIdioms(torch.nn.Module):
    """A user's network written the usual ways: torch.onnx.export makes Shape, Resize, Pad, Slice, Split,
    Where and Expand of it, which the graph check refused as not standard layers."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.head = torch.nn.Conv2d(1, 8, 3), torch.nn.Linear(8 * 14 * 14, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")
        x = torch.nn.functional.interpolate(x, size=(32, 32), mode="bilinear")[:, :, 2:-2, 2:-2]
        top, bottom = torch.chunk(x, 2, dim=2)
        x = torch.relu(self.conv(torch.cat([bottom, top], 2)))
        x = torch.nn.functional.max_pool2d(x.masked_fill(x > 3, 3.0), 2, ceil_mode=True)
        x = torch.nn.functional.pad(x, (0, 1, 0, 1))
        return self.head((x * x[:, :1].expand_as(x)).flatten(1))


def test_a_network_written_with_common_torch_idioms_exports_to_onnx_and_predicts(tmp_path: Path) -> None:
    from mnist_classifier.models.probability_model import ProbabilityModel
    from mnist_classifier.tasks.export import export_onnx, torch_predictor

    model = ProbabilityModel(TorchIdioms()).eval()
    predict = export_onnx(model, tmp_path / "model.onnx", {})  # loads it back through the graph check
    operators = {node.op_type for node in onnx.load(str(tmp_path / "model.onnx")).graph.node}
    assert {"Shape", "Resize", "Pad", "Slice", "Expand"} <= operators
    pixels = np.random.default_rng(0).random((5, 1, 28, 28), dtype=np.float32)
    assert np.allclose(predict(pixels), torch_predictor(model)(pixels), atol=1e-5)


def test_optional_outputs_left_out_are_accepted_and_batches_over_the_checked_size_run_in_parts(tmp_path: Path) -> None:
    """A Dropout that leaves out its mask output ("") was refused as a tensor made twice; a batch larger than
    MAX_BATCH, the largest the graph was checked at, is run MAX_BATCH at a time."""
    from mnist_classifier.models import onnx_graph
    from mnist_classifier.models.onnx_model import OnnxModel

    assert onnx_graph.INTEGER_TYPES == (onnx.TensorProto.INT64, onnx.TensorProto.INT32)
    dropout = [onnx.helper.make_node("Dropout", ["flat"], ["features", ""])]
    onnx_graph.check_graph(graph_onnx(tmp_path / "dropout.onnx", dropout, []).read_bytes(), "dropout.onnx")
    model = OnnxModel(lookalike_onnx(tmp_path / "model.onnx", None, 10))
    calls: list[int] = []
    session = model.session

    class Counting:
        def run(self, outputs: list[str], feeds: dict[str, np.ndarray]) -> Any:
            calls.append(len(feeds["pixels"]))
            return session.run(outputs, feeds)

    model.session = Counting()
    pixels = np.random.default_rng(0).random((onnx_graph.MAX_BATCH + 1, 1, 28, 28), dtype=np.float32)
    whole = model.probabilities(pixels)
    assert calls == [onnx_graph.MAX_BATCH, 1] and whole.shape == (len(pixels), 10)
    assert np.allclose(whole[-1:], model.probabilities(pixels[-1:]))


def test_export_refuses_what_it_cannot_export(checkpoint: Path, tmp_path: Path) -> None:
    missing = run_cli("export.py", f"hydra.run.dir={tmp_path / 'a'}")
    assert missing.returncode == 2 and "export.py needs a checkpoint" in missing.stderr
    bad_format = run_cli("export.py", f"ckpt_path={checkpoint}", "format=tflite", f"hydra.run.dir={tmp_path / 'b'}")
    assert bad_format.returncode == 2 and "format must be one of onnx, pt2, safetensors" in bad_format.stderr
    # a checkpoint of the training run given as the output: exported over, exit 0
    over = checkpoint.with_name("best.ckpt")
    over.write_bytes(checkpoint.read_bytes())
    refused = run_cli("export.py", f"ckpt_path={checkpoint}", f"output={over}", f"hydra.run.dir={tmp_path / 'c'}")
    assert (
        refused.returncode == 2 and f"output={over} does not end in .onnx, as a format=onnx file does" in refused.stderr
    )
    assert over.read_bytes() == checkpoint.read_bytes()
