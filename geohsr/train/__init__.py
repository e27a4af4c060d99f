"""Training: datasets and patch samplers, the trainer, per-method tasks."""
