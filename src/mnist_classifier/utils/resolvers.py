"""OmegaConf resolvers used by configs/; registered when train.py/eval.py import this module."""

from __future__ import annotations

import torch
from omegaconf import OmegaConf


def _cpu_runs_bf16_natively() -> bool:
    """AMX or AVX512-BF16: bf16 matmuls/convs are faster than fp32 (elsewhere they are emulated)."""
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


def auto_precision(accelerator: str = "auto") -> str:
    """`bf16-mixed` where the chosen device runs bf16 natively, else `32-true`."""
    accelerator = str(accelerator).lower()
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "32-true"
    mps = getattr(torch.backends, "mps", None)
    if accelerator == "cpu" or (accelerator == "auto" and not (mps and mps.is_available())):
        return "bf16-mixed" if _cpu_runs_bf16_natively() else "32-true"
    return "32-true"


def register_resolvers() -> None:
    OmegaConf.register_new_resolver("auto_precision", auto_precision, replace=True)
