"""Datasets: reading images, validating folders, augmentation, synthetic renders (``synth``), and the 2D procedural
set, which only tests and the main job on a machine without headless OpenGL use."""
