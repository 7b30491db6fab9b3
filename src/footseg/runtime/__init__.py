"""The runtime every verb runs models through: ``resolve_model`` names a model, ``Predictor`` runs it on photos
(PyTorch or ONNX Runtime, with the pre- and post-processing the network was trained with).

``timing`` is the one timing module (standard library only: ``benchmarks/mediapipe_peer.py`` imports it from a venv
without torch). Submodules are imported where used, so importing ``footseg.runtime`` loads neither torch nor
onnxruntime.
"""
