"""Training loop, inference and checkpoints."""
