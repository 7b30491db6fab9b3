"""Where a recipe run puts things: ``DIR/<stage>/``, ``DIR/stamps/<stage>.json`` and the result ``DIR/model/``.

Names only, shared by the runner and the model card (so neither imports the other for them).
"""

# a select stage's record (every candidate's validation IoU and the one kept) has a threshold stage's name
from footseg.eval.operating_point import CHOICE

__all__ = ["CHOICE", "EXPORT_FILES", "RESULT", "STAMPS"]

STAMPS = "stamps"
RESULT = "model"
EXPORT_FILES = {"onnx": "model.onnx", "onnx-int8": "model.int8.onnx"}
