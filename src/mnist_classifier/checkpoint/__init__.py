"""Checkpoints are data: one safe loader for every consumer, and atomic saving."""
