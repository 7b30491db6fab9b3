"""footseg: real-time segmentation of human feet on a smartphone."""

__version__ = "0.1.0"
