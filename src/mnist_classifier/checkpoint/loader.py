"""The one way a checkpoint is read (eval, resume, predict, export, serve): once, with weights_only=True
(or, for model.safetensors + model.json, with no pickle at all), its stored configs checked against the
allowlist (checkpoint/trust.py) before anything is built, and its weights against the network they describe
(models/from_checkpoint.py builds the model)."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import torch

from mnist_classifier.checkpoint.pickle_scan import other_globals, unfolded_size
from mnist_classifier.checkpoint.trust import check_stored_configs
from mnist_classifier.checkpoint.weights_file import SUFFIX, read_weights
from mnist_classifier.errors import UNPICKLES, CheckpointError, shown

log = logging.getLogger(__name__)
EXAMPLE_PATH = "logs/train/runs/<run>/checkpoints/last.ckpt"
# What a stored weight may be: a dense CPU tensor of a real number type. weights_only=True also lets through
# meta, sparse, complex and quantized tensors, which a network built here neither holds nor checks for NaN.
PLAIN_DTYPES = frozenset(
    {torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.bool, torch.uint8}
    | {torch.int8, torch.int16, torch.int32, torch.int64}
)
# The file paths a ModelCheckpoint callback stores, which Lightning deletes when a resumed run replaces them
CHECKPOINT_PATH_KEYS = ("best_model_path", "kth_best_model_path", "last_model_path")
# what Lightning never stores there and its deletion check misreads: a `..` part (either separator), or a
# protocol (`local:///x` is not "file", so Lightning deletes it without looking where it is)
NOT_A_PLAIN_PATH = re.compile(r"(^|[/\\])\.\.([/\\]|$)|://|::")
# torch.save writes a few thousand values for a checkpoint of this project (a long run's history: tens of thousands)
MAX_PICKLED_VALUES = 250_000
_cache: dict[tuple[str, int, int], dict[str, Any]] = {}


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint (or exported *.safetensors weights) as plain data, checked. Reading the same unchanged
    file again returns the same dict, so a resumed run (which Lightning reads through checkpoint_io.py)
    reads the file once."""
    file = Path(str(path)).expanduser()
    if not file.is_file():
        raise CheckpointError(
            f"ckpt_path={path}: no such file. Pass the path of a checkpoint written by train.py, "
            f"e.g. ckpt_path={EXAMPLE_PATH}."
        )
    if file.suffix in {".onnx", ".pt2"}:
        raise CheckpointError(_exported_file_message(file.suffix, str(path)))
    stat = file.stat()
    key = (str(file.resolve()), stat.st_mtime_ns, stat.st_size)
    if key in _cache:
        return _cache[key]
    checkpoint = read_weights(file, str(path)) if file.suffix == SUFFIX else _read_pickled(file, str(path))
    if not isinstance(checkpoint, dict) or not {"state_dict", "hyper_parameters"} <= set(checkpoint):
        raise CheckpointError(
            f"ckpt_path={path} is a PyTorch file but not a checkpoint of this project's MNISTClassifier "
            f"(no `hyper_parameters.net` / `state_dict`); pass a checkpoint written by train.py."
        )
    check_stored_configs(checkpoint, str(path))
    _check_plain_tensors(checkpoint["state_dict"], "state_dict", str(path))
    if "current_model_state" in checkpoint:  # the raw weights Lightning's weight-averaging callbacks resume
        _check_plain_tensors(checkpoint["current_model_state"], "current_model_state", str(path))
    _check_callback_paths(checkpoint.get("callbacks"), str(path))
    _cache.clear()  # one checkpoint at a time is all a run needs
    _cache[key] = checkpoint
    return checkpoint


def _exported_file_message(suffix: str, path: str) -> str:
    """A file export.py wrote, passed where a checkpoint goes: where it goes instead."""
    if suffix == ".onnx":
        return (
            f"ckpt_path={path} is an exported ONNX model, not a checkpoint: predict.py and serve.py take it as "
            f"model_path={path}. eval.py and export.py need the checkpoint it was exported from, or "
            f"model.safetensors (export.py format=safetensors)."
        )
    return (
        f"ckpt_path={path} is a torch.export (.pt2) file, not a checkpoint: {UNPICKLES}, so no tool here reads "
        f"one. Pass the checkpoint it was exported "
        f"from, model.safetensors (ckpt_path=) or model.onnx (model_path=), both written by export.py."
    )


def _check_before_unpickling(file: Path, path: str) -> None:
    """What torch.load would make of the file, read with torch's own zip reader (the one torch.load uses; a
    second parser such as Python's zipfile can be shown another central directory, or give up where torch's
    does not), before it makes anything:
    - the records together fit in the file: torch.save stores them uncompressed, and a deflated record is
      inflated before any check (a 2.5 MB file became a gigabyte of memory);
    - the pickle calls only what torch.save writes for a checkpoint here, and unfolds into a bounded number
      of values (checkpoint/pickle_scan.py).
    A file torch's zip reader cannot open is refused: junk, or torch's old non-zip format, which train.py
    never writes and which would skip these checks."""
    try:
        reader = torch._C.PyTorchFileReader(str(file))
        names = reader.get_all_records()
        records = sum(reader.get_record_size(name) for name in names)
    except Exception as err:  # not a zip archive: junk, or torch's old format, which train.py never writes
        raise _unreadable(path, err) from err
    if records > file.stat().st_size:
        raise CheckpointError(
            f"ckpt_path={path} holds compressed records that would inflate to {records / 1e6:,.0f} MB in memory "
            f"from a {file.stat().st_size / 1e6:,.1f} MB file; torch.save never compresses them. The file was "
            f"altered; pass a checkpoint written by train.py, e.g. ckpt_path={EXAMPLE_PATH}."
        )
    try:
        pickled = reader.get_record("data.pkl")
        values, odd_globals = unfolded_size(pickled, MAX_PICKLED_VALUES), other_globals(pickled)
    except Exception as err:  # pickletools' and the walk's errors for a pickle that is not one
        raise _unreadable(path, err) from err
    if odd_globals:
        raise CheckpointError(
            f"ckpt_path={path} calls {shown(odd_globals[0].replace(' ', '.'))} when unpickled, which torch.save "
            f"does not write for a checkpoint of this project (only the tensor-rebuilding function, typed "
            f"storages and OrderedDict): weights_only=True allows a few constructors, such as bytearray(n), that "
            f"30 bytes can make allocate gigabytes. The file was altered; pass a checkpoint written by train.py, "
            f"e.g. ckpt_path={EXAMPLE_PATH}."
        )
    if values > MAX_PICKLED_VALUES:
        raise CheckpointError(
            f"ckpt_path={path} refers to the same values over and over so that unpickling would unfold more "
            f"than {MAX_PICKLED_VALUES:,} of them (or a value that holds itself): a few kilobytes of this "
            f"kind hang the process. torch.save writes a few thousand; the file was altered. Pass a "
            f"checkpoint written by train.py, e.g. ckpt_path={EXAMPLE_PATH}."
        )


def _unreadable(path: str, err: BaseException) -> CheckpointError:
    return CheckpointError(
        f"ckpt_path={path} cannot be read as a PyTorch checkpoint with weights_only=True "
        f"({first_line(err)}). It may be truncated, not a checkpoint, or hold objects other than tensors "
        f"and plain data; pass a checkpoint written by train.py, e.g. ckpt_path={EXAMPLE_PATH}."
    )


def _read_pickled(file: Path, path: str) -> Any:
    _check_before_unpickling(file, path)
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for corrupt or foreign files
        raise _unreadable(path, err) from err


def odd_tensor(name: str, value: Any) -> str | None:
    """How a stored value differs from a dense CPU tensor of real numbers, or None if it does not."""
    if not isinstance(value, torch.Tensor):
        return f"{name} ({type(value).__name__})"
    if value.dtype not in PLAIN_DTYPES or value.layout != torch.strided or value.device.type != "cpu":
        return f"{name} ({value.dtype}, {value.layout}, on {value.device.type})"
    return None


def _check_plain_tensors(state_dict: Any, key: str, path: str) -> None:
    if isinstance(state_dict, dict):
        odd = [found for name, value in state_dict.items() if (found := odd_tensor(name, value))]
    else:
        odd = [f"{key} itself"]
    if odd:
        raise CheckpointError(
            f"ckpt_path={path}: its {key} holds what train.py never writes: {', '.join(odd[:3])}. Weights "
            f"are dense CPU tensors of real numbers; the file is damaged or was altered. Pass a checkpoint "
            f"written by train.py."
        )


def _check_callback_paths(callbacks: Any, path: str) -> None:
    """A ModelCheckpoint's stored file names, which a resumed run deletes when it replaces them: Lightning
    deletes only files inside its checkpoint folder, but takes `<folder>/../../x` for one (it compares the
    path's parts, not the file's place), and any path with a protocol other than "file". It stores plain
    resolved local paths itself."""
    states = callbacks.values() if isinstance(callbacks, dict) else []
    for state in (s for s in states if isinstance(s, dict) and "dirpath" in s):
        best_k = state.get("best_k_models")
        if not isinstance(best_k, dict | None):
            odd = [best_k]
        else:
            stored = [state.get(key) for key in CHECKPOINT_PATH_KEYS] + list(best_k or {})
            odd = [f for f in stored if not (f is None or (isinstance(f, str) and not NOT_A_PLAIN_PATH.search(f)))]
        if odd:
            raise CheckpointError(
                f"ckpt_path={path}: its ModelCheckpoint state holds {shown(odd[0])} where Lightning "
                f"stores a plain local file path (no `..` part, no protocol): a resumed run deletes the file "
                f"there when it replaces it. The file was damaged or altered; pass a checkpoint written by "
                f"train.py."
            )
        _check_best_k(state, path)


def _check_best_k(state: dict[str, Any], path: str) -> None:
    """The scores a ModelCheckpoint ranks its files by, and the worst kept file, which a resumed run in the
    same folder removes from that ranking when a better one comes (a KeyError inside Lightning if it is not
    there, a TypeError if a score is not a number)."""
    best_k, kth = state.get("best_k_models") or {}, state.get("kth_best_model_path")
    scores_ok = all(odd_tensor(name, s) is None and s.numel() == 1 for name, s in best_k.items())
    if not scores_ok or kth not in {"", None, *best_k}:
        raise CheckpointError(
            f"ckpt_path={path}: its ModelCheckpoint state does not rank the files it keeps as Lightning does "
            f"(the worst kept file {shown(kth)} must be one of them, each with a one-number score). The file was "
            f"damaged or altered; pass a checkpoint written by train.py."
        )


def meta_net(net_config: dict[str, Any], path: str | Path) -> torch.nn.Module:
    """The stored network built on the meta device: its shapes, in no memory, so a crafted size (say
    hidden_sizes: [10**9]) cannot allocate anything."""
    from hydra.utils import instantiate

    try:
        with torch.device("meta"):
            return instantiate(net_config)
    except Exception as err:
        raise CheckpointError(
            f"ckpt_path={path}: its stored network config cannot be built ({first_line(err.__cause__ or err)})."
        ) from err


def _check_weights_fit(net_config: dict[str, Any], state_dict: dict[str, Any], path: str) -> None:
    net = meta_net(net_config, path)
    expected = {f"net.{name}": tuple(t.shape) for name, t in net.state_dict().items()}
    stored = {
        name: tuple(t.shape) if isinstance(t, torch.Tensor) else None
        for name, t in state_dict.items()
        if name.startswith("net.")
    }
    if expected != stored:
        mismatched = sorted(set(expected.items()) ^ set(stored.items()))[:3]
        raise CheckpointError(
            f"ckpt_path={path}: its stored network config does not match its stored weights (e.g. {mismatched}). "
            f"The file is damaged or was altered; pass a checkpoint written by train.py."
        )


def _check_weights_finite(state_dict: dict[str, Any], path: str) -> None:
    """Weights that hold NaN/inf (a diverged run's) predict nonsense: say so rather than report it."""
    bad = {
        name: int((~torch.isfinite(t)).sum())
        for name, t in state_dict.items()
        if name.startswith("net.") and t.is_floating_point() and not bool(torch.isfinite(t).all())
    }
    if bad:
        total = sum(bad.values())
        where = ", ".join(f"{name} ({count})" for name, count in list(bad.items())[:3])
        raise CheckpointError(
            f"ckpt_path={path}: {total} of its weights are NaN or infinite (in {where}), so every prediction "
            f"would be nonsense; it comes from a run that diverged. Pass a checkpoint saved before the loss "
            f"went bad, or train again with a lower model.optimizer.lr."
        )


def check_weights(checkpoint: dict[str, Any], path: str | Path) -> None:
    """A checked checkpoint's weights: the shapes its network config builds, and all finite."""
    _check_weights_fit(checkpoint["hyper_parameters"]["net"], checkpoint["state_dict"], str(path))
    _check_weights_finite(checkpoint["state_dict"], str(path))
