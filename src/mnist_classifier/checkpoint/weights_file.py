"""The network's weights without pickle: model.safetensors (tensors only, readable from any language) and
model.json beside it (the plain hyper-parameter configs that rebuild the network, and the export metadata).
Read back as a checkpoint-shaped dict, so the loader checks it exactly as it checks a checkpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from mnist_classifier.errors import CheckpointError
from mnist_classifier.utils.atomic import write_text, write_with

SUFFIX = ".safetensors"
FORMAT = "mnist-classifier/weights-v1"
MAX_CONFIG_BYTES = 1_000_000
# the JSON header that lists the tensors (experiment=cnn_best's: about 1 KB). safetensors itself takes up to
# 100 MB, and reading a header of many empty tensors takes about 37x its size in memory: 89 MB took 3.3 GB
MAX_HEADER_BYTES = 1_000_000


def config_path(weights: Path) -> Path:
    return weights.with_suffix(".json")


def write_weights(path: Path, net: torch.nn.Module, hyper_parameters: dict[str, Any], metadata: dict[str, str]) -> None:
    from safetensors.torch import save

    tensors = {name: tensor.detach().contiguous() for name, tensor in net.state_dict().items()}
    write_with(path, lambda file: file.write(save(tensors, metadata=metadata)))
    config = {"format": FORMAT, "hyper_parameters": hyper_parameters, "metadata": metadata}
    write_text(config_path(path), json.dumps(config, indent=2) + "\n")


def read_weights(path: Path, given: str) -> dict[str, Any]:
    """model.safetensors + model.json as {"state_dict", "hyper_parameters"}: parsed as tensors and JSON only."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    config_file = config_path(path)
    if not config_file.is_file() or config_file.stat().st_size > MAX_CONFIG_BYTES:
        raise CheckpointError(
            f"ckpt_path={given}: a .safetensors file needs its {config_file.name} beside it (at most "
            f"{MAX_CONFIG_BYTES} bytes), as export.py format=safetensors writes them; none usable was found."
        )
    try:  # ValueError: bad JSON, NaN/Infinity, a number of thousands of digits; RecursionError: deep nesting
        config = json.loads(config_file.read_text(), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        reason = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        raise CheckpointError(
            f"ckpt_path={given}: {config_file.name} is not JSON export.py writes ({reason}). Export the "
            f"checkpoint again with python export.py ckpt_path=... format=safetensors."
        ) from err
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise CheckpointError(
            f"ckpt_path={given}: {config_file.name} is not a model config export.py writes (no `format: {FORMAT}`)."
        )
    try:
        with path.open("rb") as file:
            header_bytes = int.from_bytes(file.read(8), "little")  # safetensors' layout: the header's length first
        if header_bytes > MAX_HEADER_BYTES:
            raise CheckpointError(
                f"ckpt_path={given}: its safetensors header is {header_bytes:,} bytes, over the "
                f"{MAX_HEADER_BYTES:,} a network's list of tensors needs (reading a header that large takes "
                "gigabytes). It is not a file export.py writes; export the checkpoint again with python "
                "export.py ckpt_path=... format=safetensors."
            )
        tensors = load_file(path, device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(
            f"ckpt_path={given} cannot be read as a safetensors file ({err}). It may be truncated or not "
            f"one export.py writes; export it again with python export.py ckpt_path=... format=safetensors."
        ) from err
    state_dict = {f"net.{name}": tensor for name, tensor in tensors.items()}
    return {"state_dict": state_dict, "hyper_parameters": config.get("hyper_parameters")}


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number export.py writes")
