"""Where a recipe run puts things: ``DIR/<stage>/``, ``DIR/stamps/<stage>.json`` and the result ``DIR/model/``.

Names only, shared by the runner and the model card (so neither imports the other for them).
"""

STAMPS = "stamps"
RESULT = "model"
EXPORT_FILES = {"onnx": "model.onnx", "onnx-int8": "model.int8.onnx"}
