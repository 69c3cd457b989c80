"""The training loop (one Trainer for every family), its callbacks, loggers and checkpoints."""
