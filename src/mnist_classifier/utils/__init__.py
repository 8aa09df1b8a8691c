"""Glue: instantiation of config groups, plain hyperparameters, thread limits, OmegaConf resolvers."""
