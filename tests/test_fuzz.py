"""Fuzzing as a habit (hypothesis): the picture decoder and MNIST-style preprocessing, the checkpoint
trust check and the config checks get thousands of generated inputs, and only their documented outcomes
may come out: a picture or an ImageRejected status, None or a CheckpointError / ConfigValueError that
names the key or an ArgumentError that names the argument. Any other exception, from deep inside a
library, fails the test. derandomize keeps CI repeatable; each test stays at a few seconds."""

from __future__ import annotations

import pickle
from io import BytesIO
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from mnist_classifier.checkpoint.pickle_scan import unfolded_size
from mnist_classifier.checkpoint.trust import check_hyperparameters
from mnist_classifier.data.mnist_datamodule import MNISTDataModule
from mnist_classifier.data.mnist_style import ImageRejected
from mnist_classifier.data.pictures import OK, decode_bytes, prepare_digit
from mnist_classifier.errors import ArgumentError, CheckpointError, ConfigValueError
from mnist_classifier.runtime.run_checks import check_integer

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:PIL")  # Pillow's notes on damaged files
FUZZ = settings(max_examples=600, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def picture_bytes(fmt: str, mode: str) -> bytes:
    image = Image.new(mode, (12, 9), 0)
    image.paste(255 if mode in ("L", "1", "P") else (255,) * len(mode), (3, 2, 8, 7))
    out = BytesIO()
    image.save(out, fmt)
    return out.getvalue()


FORMATS = [("PNG", "L"), ("PNG", "RGBA"), ("GIF", "P"), ("BMP", "RGB"), ("TIFF", "L"), ("JPEG", "RGB"), ("WEBP", "RGB")]
SEEDS = [picture_bytes(fmt, mode) for fmt, mode in FORMATS]


@st.composite
def damaged_pictures(draw: st.DrawFn) -> bytes:
    """A real picture with some bytes overwritten, cut short or grown: headers that lie, chunks that end."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    cut = draw(st.integers(1, len(data)))
    return bytes(data[:cut]) + draw(st.binary(max_size=16))


def assert_documented_picture_outcome(data: bytes) -> None:
    try:
        gray = decode_bytes(data, max_pixels=1_000_000)
    except ImageRejected as err:
        assert str(err), "a rejection says why"
        return
    assert gray.ndim == 2 and gray.dtype == np.float32 and 0 <= gray.min() <= gray.max() <= 1
    for preprocess in ("mnist", "none"):
        digit = prepare_digit(gray, preprocess)
        assert digit.pixels.shape == (28, 28) and np.isfinite(digit.pixels).all()
        assert (digit.status == OK) or digit.status  # a status row: ok or why not


@settings(FUZZ, max_examples=1000)
@given(st.one_of(damaged_pictures(), st.binary(max_size=200)))
def test_decoder_gives_a_picture_or_a_status(data: bytes) -> None:
    assert_documented_picture_outcome(data)


@settings(FUZZ, max_examples=300)
@given(arrays(np.float32, st.tuples(st.integers(1, 40), st.integers(1, 40)),
              elements=st.floats(0, 1, width=32)))  # fmt: skip
def test_preprocessing_gives_a_digit_or_a_status(gray: np.ndarray) -> None:
    for preprocess in ("mnist", "none"):
        digit = prepare_digit(gray, preprocess)
        assert digit.pixels.shape == (28, 28) and np.isfinite(digit.pixels).all()
        assert digit.pixels.min() >= 0 and digit.pixels.max() <= 1 + 1e-6


TARGETS = st.sampled_from(["mnist_classifier.models.ConvNet", "mnist_classifier.models.conv_net.ConvNet",
                           "torch.nn.CrossEntropyLoss", "torch.optim.AdamW", "os.system", "eval", ""])  # fmt: skip
KEYS = st.one_of(st.sampled_from(["net", "loss", "optimizer", "scheduler", "_target_", "_partial_", "_args_",
                                  "_recursive_", "lr", "channels"]), st.text(max_size=8))  # fmt: skip
LEAVES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10), TARGETS,
                   st.binary(max_size=4))  # fmt: skip
TREES = st.recursive(LEAVES, lambda children: st.one_of(st.lists(children, max_size=4), st.tuples(children),
                                                        st.dictionaries(st.one_of(KEYS, st.integers()), children,
                                                                        max_size=4)), max_leaves=20)  # fmt: skip


@settings(FUZZ, max_examples=300)
@given(st.one_of(TREES, st.dictionaries(KEYS, TREES, max_size=5)))
def test_trust_check_accepts_or_refuses_with_a_checkpoint_error(hyperparameters: Any) -> None:
    try:
        check_hyperparameters(hyperparameters, "x.ckpt", "model hyper-parameter", ("net", "loss", "optimizer"))
    except CheckpointError as err:
        assert str(err).startswith("ckpt_path=x.ckpt"), str(err)


def unfolded(value: Any) -> int:
    """Every value counted once per place it appears (a dict's keys and values both)."""
    parts = (
        [*value.keys(), *value.values()]
        if isinstance(value, dict)
        else value
        if isinstance(value, list | tuple)
        else []
    )
    return 1 + sum(map(unfolded, parts))


@settings(FUZZ, max_examples=300)
@given(TREES, st.integers(3, pickle.HIGHEST_PROTOCOL))
def test_pickle_values_are_counted_once_per_reference(tree: Any, protocol: int) -> None:
    """The count the checkpoint loader bounds, against the structure it unfolds into: exact, for values a
    pickle refers to by its memo (the same tree three times) as much as for values written out."""
    shared = [tree, tree, (tree, {"again": tree})]
    assert unfolded_size(pickle.dumps(shared, protocol=protocol), limit=10**9) == unfolded(shared)


VALUES = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=6),
                   st.lists(st.integers(), max_size=2))  # fmt: skip


@FUZZ
@given(VALUES)
def test_integer_check_accepts_or_names_the_key(value: Any) -> None:
    try:
        check_integer(value, "trainer.max_epochs", 1, 1000)
    except ConfigValueError as err:
        assert str(err).startswith("trainer.max_epochs must be a whole number from 1 to 1000")
    else:
        assert isinstance(value, int) and 1 <= value <= 1000


@settings(FUZZ, max_examples=300)
@given(st.dictionaries(st.sampled_from(["batch_size", "eval_batch_size", "num_workers", "val_size", "shuffle_seed",
                                        "on_device"]), VALUES, max_size=3))  # fmt: skip
def test_datamodule_builds_or_names_the_argument(values: dict[str, Any]) -> None:
    """Its own argument; built from the config `data`, the key (`data.batch_size ...`)."""
    try:
        MNISTDataModule(data_dir="unused", **values)
    except ArgumentError as err:
        assert str(err).startswith(err.argument) and "data." not in str(err), str(err)
        assert str(err.under("data")).startswith(f"data.{err.argument}"), str(err.under("data"))


if __name__ == "__main__":  # a longer run by hand: python tests/test_fuzz.py
    pytest.main([__file__, "--hypothesis-seed=0", "-p", "no:xdist"])
