"""Measuring models: the per-layer latency table the search is costed by, ``skeleton bench``,
``skeleton compare`` and ``skeleton analyze``. Imports the layers below it, never
:mod:`skeleton.compression`.
"""
