"""A compact model summary when fitting starts: the network's layers and parameter counts, nothing else
(Lightning's lists the metric modules too, and a FLOP count of 0 on CPU)."""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only
from rich.table import Table
from torch import nn

from mnist_classifier.console.story import show


def layer_rows(net: nn.Module) -> list[tuple[str, str, str, int]]:
    """(name, type, weight shape, parameters) for every leaf layer of `net`."""
    rows = []
    for name, layer in net.named_modules():
        if name and not any(True for _ in layer.children()):
            weight = getattr(layer, "weight", None)
            shape = "x".join(map(str, weight.shape)) if isinstance(weight, torch.Tensor) else ""
            rows.append((name, type(layer).__name__, shape, sum(p.numel() for p in layer.parameters())))
    return rows


class NetworkSummary(L.Callback):
    @rank_zero_only
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        net = getattr(pl_module, "net", pl_module)
        assert isinstance(net, nn.Module)
        rows = layer_rows(net)
        total = sum(p.numel() for p in net.parameters())
        table = Table(title=f"{type(net).__name__}: {total:,} parameters", title_justify="left", box=None)
        for column in ("layer", "type", "weight"):
            table.add_column(column)
        table.add_column("params", justify="right")
        for name, kind, shape, count in rows:
            table.add_row(name, kind, shape, f"{count:,}" if count else "")
        show(table, stderr=True)
