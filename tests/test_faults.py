"""Faults a stranger meets: Hydra's own errors, a full disk, a read-only folder, a kill mid-write. Each is
one paragraph and exit 2 (bad input, the disk included), and no file is ever half-written."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_cli

HYDRA_ERRORS = {
    "model=cnnn": "There is no `model=cnnn`: the config group `model` has cnn, dense. Choose one of them",
    "model.foo=1": "Could not override 'model.foo' (Key 'foo' is not in struct). To append to your config use "
    "+model.foo=1.",
    "hydra.run.dir=${nope}": "Interpolation key 'nope' not found (in `hydra.run.dir`).",
}


@pytest.mark.parametrize("override", list(HYDRA_ERRORS))
def test_hydra_composition_error_is_one_paragraph_and_exit_2(override: str, tmp_path: Path) -> None:
    result = run_cli("train.py", f"hydra.run.dir={tmp_path}", override)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "HYDRA_FULL_ERROR" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == result.stderr.strip(), "one paragraph, nothing else"
    assert HYDRA_ERRORS[override] in result.stderr
