"""Training: losses, atomic checkpoints and the training loop (single process or DDP under torchrun)."""
