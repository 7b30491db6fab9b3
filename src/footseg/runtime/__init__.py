"""The runtime every verb runs models through: ``resolve_model`` names a model, ``Predictor`` runs it on photos
(PyTorch or ONNX Runtime, with the pre- and post-processing the network was trained with).

Submodules are imported where used, so importing ``footseg.runtime`` does not load onnxruntime.
"""
