"""Skeleton: task neuron localized prompt tuning, as a deployable toolkit.

The library mirrors the CLI: ``tune`` (``skeleton tune``), ``compress`` (``skeleton compress``),
``load`` (rebuild a compressed model from its directory). Names are imported on first use, so
``import skeleton.config`` (what the CLI needs for its defaults) does not load torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "CompressConfig": "skeleton.config",
    "DataConfig": "skeleton.config",
    "ModelConfig": "skeleton.config",
    "SearchConfig": "skeleton.config",
    "TrainConfig": "skeleton.config",
    "TuneConfig": "skeleton.config",
    "SkeletonError": "skeleton.errors",
    "CompressResult": "skeleton.compression",
    "compress": "skeleton.compression",
    "TuneResult": "skeleton.tuning",
    "tune": "skeleton.tuning",
    "CompressedModel": "skeleton.artifacts",
    "load": "skeleton.artifacts",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'skeleton' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
