"""What this machine runs fast: precision and memory format, decided per machine by rules measured on each
CPU kind (README, Speed), never by one machine's tuning. A value the user sets explicitly always wins.

Measured (CNN training step, batch 256, 2 cores; benchmarks/run.py):
- AVX2-only CPUs: bf16 is emulated, about 4x slower than fp32; channels_last is 1.7-2.7x faster than
  the default layout in fp32.
- AVX512-BF16/AMX CPUs: bf16-mixed is 1.5-2x faster than fp32; channels_last is faster in both (bf16 12.0
  vs 15.1 ms, fp32 21.9 vs 30.2 ms).
So: bf16-mixed only where the kernels torch will run have native bf16, and channels_last for every network
with convolutions (on GPUs too, where NVIDIA's tensor cores want NHWC).
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

# oneDNN ISA levels (ONEDNN_MAX_CPU_ISA) that include native bf16 instructions; a cap below them makes
# oneDNN emulate bf16 even on a CPU that has it
ONEDNN_BF16_ISAS = frozenset(
    {
        "AVX512_CORE_BF16",
        "AVX512_CORE_FP16",
        "AVX512_CORE_AMX",
        "AVX512_CORE_AMX_FP16",
        "AVX10_1_512",
        "AVX10_1_512_AMX",
        "AVX10_1_512_AMX_FP16",
        "AVX10_2_512",
        "AVX10_2_512_AMX_2",
        "ALL",
        "DEFAULT",
    }
)


def onednn_isa_cap() -> str | None:
    """The ISA ceiling set for oneDNN (ONEDNN_MAX_CPU_ISA, or its old name DNNL_MAX_CPU_ISA), if any."""
    value = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")
    return value.strip().upper() if value else None


def cpu_has_bf16_instructions() -> bool:
    """AMX or AVX512-BF16 in the CPU itself, whatever torch is allowed to use."""
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


def cpu_runs_bf16_natively() -> bool:
    """bf16 matmuls/convs are native (faster than fp32) only with the instructions in the CPU *and* in the
    kernels torch runs: ATEN_CPU_CAPABILITY=avx2 or ONEDNN_MAX_CPU_ISA=AVX2 restrict torch to an older
    CPU's kernels, and then bf16 is emulated."""
    if not cpu_has_bf16_instructions():
        return False
    if not torch.backends.cpu.get_cpu_capability().startswith("AVX512"):
        return False
    cap = onednn_isa_cap()
    return cap is None or cap in ONEDNN_BF16_ISAS


def auto_precision(accelerator: str = "auto") -> str:
    """`bf16-mixed` where the chosen device runs bf16 natively, else `32-true`."""
    accelerator = str(accelerator).lower()
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "32-true"
    mps = getattr(torch.backends, "mps", None)
    if accelerator == "cpu" or (accelerator == "auto" and not (mps and mps.is_available())):
        return "bf16-mixed" if cpu_runs_bf16_natively() else "32-true"
    return "32-true"


def uses_channels_last(net: nn.Module, setting: bool | str = "auto") -> bool:
    """`model.channels_last`: true/false as set; auto pays off for convolutions (oneDNN's and cuDNN's fast
    NHWC kernels) and is a no-op for a network without them."""
    if setting == "auto":
        return any(isinstance(module, nn.Conv2d) for module in net.modules())
    return bool(setting)


def device_kind(device: torch.device) -> str:
    """The device a run's kernels come from, for the run header: GPU name, or the CPU's kernel level."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type != "cpu":
        return device.type
    capability = torch.backends.cpu.get_cpu_capability()
    cap = onednn_isa_cap()
    bf16 = "native bf16" if cpu_runs_bf16_natively() else "no native bf16"
    return f"CPU {capability}" + (f", oneDNN capped at {cap}" if cap else "") + f" ({bf16})"


def fast_path_record(device: torch.device, precision: Any, channels_last: bool, compiled: bool) -> dict[str, Any]:
    """What a run chose, for the run header and metrics.json."""
    return {
        "device": device_kind(device),
        "precision": str(precision),
        "channels_last": channels_last,
        "threads": torch.get_num_threads(),
        "compile": compiled,
    }


def describe_fast_path(record: dict[str, Any]) -> str:
    layout = "channels_last" if record["channels_last"] else "default layout"
    compiled = "compiled" if record["compile"] else "not compiled"
    return f"Fast path: {record['device']}: {record['precision']}, {layout}, {record['threads']} thread(s), {compiled}"
