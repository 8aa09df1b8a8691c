"""The link that opens TensorBoard on what a user came for (no Lightning here: the sweep summary prints it)."""

from __future__ import annotations

import json
from urllib.parse import quote

# The curves a run is opened for. TensorBoard orders its cards by tag name only (tensorflow/tensorboard#865),
# which puts the single-point `test/` results before them; a link that pins these shows them first.
FIRST_CARDS = ("train/loss", "val/loss", "train/acc", "val/acc")
TENSORBOARD_PORT = 6006  # tensorboard's default


def timeseries_link(port: int = TENSORBOARD_PORT) -> str:
    """The Time Series tab of a local TensorBoard with FIRST_CARDS pinned at the top (its `pinnedCards`
    deep link)."""
    cards = json.dumps([{"plugin": "scalars", "tag": tag} for tag in FIRST_CARDS], separators=(",", ":"))
    return f"http://localhost:{port}/?pinnedCards={quote(cards, safe='[]{}:,/')}#timeseries"
