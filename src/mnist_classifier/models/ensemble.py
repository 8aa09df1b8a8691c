"""Several checkpoints as one model (`ckpt_path=[a.ckpt,b.ckpt,c.ckpt]` in eval, predict, export and serve):
the ensemble's class probabilities are the mean of its members' softmax probabilities.

Each member is read by the safe loader and rebuilt on its own (models/trained_net.py), so members may be
different networks (a CNN and a dense net both take the same normalised (N, 1, 28, 28) batch), and each runs
with its own fast path (channels_last) as it would alone. As scores, the ensemble gives the log of the averaged
probabilities: their softmax is that average again, so every consumer of one model's scores (the test report,
the exported `logits`) reads an ensemble's the same way. No Lightning here: predict.py, serve.py and export.py
run one AveragedNet (all members in one forward); what eval.py tests is ensemble_classifier.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch
from omegaconf import ListConfig
from torch import nn

from mnist_classifier.checkpoint.loader import EXAMPLE_PATH
from mnist_classifier.errors import CheckpointError, ConfigValueError, UserFacingError
from mnist_classifier.models.trained_net import load_net

Member = TypeVar("Member")


def ensemble_paths(ckpt_path: Any) -> list[str]:
    """The members of `ckpt_path=[a,b,c]` (a Hydra list), checked; a single path (a string) is not an
    ensemble, and every task treats it exactly as before."""
    paths = list(ckpt_path) if isinstance(ckpt_path, (ListConfig, list, tuple)) else []
    if not paths or not all(isinstance(path, str) and path for path in paths):
        raise ConfigValueError(
            f"ckpt_path={ckpt_path!r} must be a checkpoint's path, ckpt_path={EXAMPLE_PATH}, or a list of "
            f"them to average, ckpt_path=[a.ckpt,b.ckpt,c.ckpt]."
        )
    return paths


def load_members(paths: Sequence[str], load: Callable[[str], Member]) -> list[Member]:
    """`load` (the safe loader and rebuild of one checkpoint) applied to each member; a member that fails
    is named by its place and path, with the single checkpoint's message."""
    members = []
    for number, path in enumerate(paths, start=1):
        try:
            members.append(load(path))
        except UserFacingError as err:
            which = f"Ensemble member {number} of {len(paths)}" + ("" if path in str(err) else f" ({path})")
            raise CheckpointError(f"{which}: {err}") from err
    return members


def average_log_probabilities(member_log_probabilities: Sequence[torch.Tensor]) -> torch.Tensor:
    """log(mean_i p_i) from the members' log-probabilities, without leaving log space."""
    stacked = torch.stack(list(member_log_probabilities))
    return torch.logsumexp(stacked, dim=0) - math.log(len(member_log_probabilities))


class AveragedNet(nn.Module):
    """Networks that map the same normalised batch to scores (logits or log-probabilities) -> the log of the
    mean of their probabilities. What export.py wraps in ProbabilityModel: one graph for the ensemble."""

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def member_log_probabilities(self, images: torch.Tensor) -> list[torch.Tensor]:
        # softmax of logits or of log-probabilities is the member's distribution; float32 under bf16 autocast
        return [member(images).float().log_softmax(dim=1) for member in self.members]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return average_log_probabilities(self.member_log_probabilities(images))


def network_name(net: nn.Module) -> str:
    """A member's network class, as export's metadata and eval's metrics.json name it."""
    return f"{type(net).__module__}.{type(net).__qualname__}"


def load_averaged_net(paths: Sequence[str]) -> AveragedNet:
    """The members' trained networks (models/trained_net.py, each through the safe loader) as one network."""
    return AveragedNet(load_members(paths, load_net))
