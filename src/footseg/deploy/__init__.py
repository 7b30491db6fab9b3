"""Deployment: ONNX export (fp32), int8 post-training quantization, and the ONNX Runtime runner.

Submodules are imported where used, so importing ``footseg.deploy`` does not load onnxruntime.
"""
