"""Glue: instantiation, plain hyperparameters, thread limits, metrics file, console summary."""
