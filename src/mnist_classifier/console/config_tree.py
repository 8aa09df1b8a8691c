"""`extras.print_config=true`: the composed config as a tree, one branch per group, printed and saved as
<run dir>/config_tree.log (what the run really used, after every override and interpolation)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.syntax import Syntax
from rich.tree import Tree

from mnist_classifier.console.story import console_for
from mnist_classifier.utils.atomic import atomic_file

FIRST = ("data", "model", "trainer", "callbacks", "reports", "logger", "paths")


def config_tree(cfg: DictConfig) -> Tree:
    tree = Tree("CONFIG", guide_style="dim")
    keys = [k for k in FIRST if k in cfg] + [k for k in cfg if k not in FIRST]
    for key in keys:
        branch = tree.add(str(key))
        node = cfg[key]
        text = OmegaConf.to_yaml(node, resolve=True) if isinstance(node, DictConfig) else str(node)
        branch.add(Syntax(text, "yaml"))
    return tree


def print_config_tree(cfg: DictConfig, output_dir: str | Path) -> None:
    tree = config_tree(cfg)
    console_for().print(tree)
    with atomic_file(Path(output_dir) / "config_tree.log", "w") as file:
        Console(file=file, width=120, color_system=None).print(tree)
