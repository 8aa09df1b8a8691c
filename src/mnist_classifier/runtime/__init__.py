"""What every command runs on, one floor below tasks/: the runner (exit codes, errors, metrics.json, the
common checks and thread limit), the entries' Hydra wrapper and resolvers, the Trainer builder, interrupts,
and torchrun/SLURM run identity."""
