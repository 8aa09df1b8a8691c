"""Hydra plugins must live in the `hydra_plugins` namespace package: this project's resumable sweeper."""
