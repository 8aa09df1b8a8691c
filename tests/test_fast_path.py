"""The fast path is chosen per machine: bf16 only where torch's kernels run it natively (caps respected),
channels_last for convolutional networks, and an explicit setting always wins."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from test_configs import compose_train

from mnist_classifier.errors import ConfigValueError
from mnist_classifier.models import MNISTClassifier
from mnist_classifier.utils import fast_path


def build(*overrides: str) -> MNISTClassifier:
    """The module a recipe's config builds (its keys, without Hydra's)."""
    config = compose_train(*overrides).model
    return MNISTClassifier(**{key: value for key, value in config.items() if not str(key).startswith("_")})


@pytest.mark.parametrize(
    ("instructions", "capability", "onednn_cap", "expected"),
    [
        (True, "AVX512", None, "bf16-mixed"),
        (True, "AVX512", "AVX512_CORE_AMX", "bf16-mixed"),
        (True, "AVX512", "AVX2", "32-true"),  # oneDNN capped below bf16: emulated
        (True, "AVX512", "avx512_core", "32-true"),
        (True, "AVX2", None, "32-true"),  # ATEN_CPU_CAPABILITY=avx2
        (True, "DEFAULT", None, "32-true"),
        (False, "AVX512", None, "32-true"),  # AVX512 without bf16 (Skylake-X, Zen 3 has no AVX512 at all)
    ],
)
def test_cpu_precision_follows_the_kernels_torch_runs(
    monkeypatch: pytest.MonkeyPatch, instructions: bool, capability: str, onednn_cap: str | None, expected: str
) -> None:
    monkeypatch.setattr(fast_path, "cpu_has_bf16_instructions", lambda: instructions)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    if onednn_cap is None:
        monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    else:
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", onednn_cap)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert fast_path.auto_precision("cpu") == expected
    assert fast_path.auto_precision("auto") == expected


def test_the_avx2_cap_turns_bf16_off_on_any_machine() -> None:
    """The real caps, in a fresh process: whatever this CPU has, torch then runs AVX2 kernels and fp32."""
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    code = (
        "import torch; from mnist_classifier.utils.fast_path import auto_precision; "
        "print(torch.backends.cpu.get_cpu_capability(), auto_precision('cpu'))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["AVX2", "32-true"]


@pytest.mark.parametrize(("model", "expected"), [("cnn", True), ("dense", False)])
def test_channels_last_is_automatic_for_convolutions(model: str, expected: bool) -> None:
    module = build(f"model={model}")
    assert module.hparams["channels_last"] == "auto"  # the checkpoint keeps the user's setting, not the choice
    assert module.channels_last is expected
    if expected:
        conv = module.net.features[4].weight  # 32x16x5x5: the layouts differ
        assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()


def test_an_explicit_layout_wins_and_a_bad_one_is_refused() -> None:
    module = build("model=cnn", "model.channels_last=false")
    assert module.channels_last is False and module.net.features[4].weight.is_contiguous()
    with pytest.raises(ConfigValueError, match=r"model\.channels_last must be true, false or auto"):
        build("model=cnn", "model.channels_last=fast")


def test_channels_last_gives_the_same_scores() -> None:
    torch.manual_seed(0)
    default = build("model=cnn", "model.channels_last=false").eval()
    fast = build("model=cnn").eval()
    fast.load_state_dict(default.state_dict())
    images = torch.randn(8, 1, 28, 28)
    torch.testing.assert_close(fast(images), default(images), rtol=1e-4, atol=1e-4)


def test_the_choice_is_described_for_the_run_header() -> None:
    record = fast_path.fast_path_record(torch.device("cpu"), "32-true", channels_last=True, compiled=False)
    assert record["threads"] == torch.get_num_threads()
    line = fast_path.describe_fast_path(record)
    assert line.startswith(f"Fast path: CPU {torch.backends.cpu.get_cpu_capability()}")
    assert "32-true, channels_last" in line and "not compiled" in line
