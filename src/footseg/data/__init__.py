"""Datasets: reading images, validating folders, augmentation and the built-in procedural set."""
