"""Shipping a Skeleton model: loading a model directory, ONNX export and int8, the runtimes that
run it, the predictor, the HTTP server and the Triton repository. Imports :mod:`skeleton.core` and
:mod:`skeleton.method` (a Skeleton model is rebuilt by the pruning surgery).
"""
