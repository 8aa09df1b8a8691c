"""Tasks: what train.py, eval.py, ... run. Each task is a function `task(cfg) -> metrics`; the shared
pieces (run wrapper, trainer builder) live beside them."""
