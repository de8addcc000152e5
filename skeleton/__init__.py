"""Skeleton: task neuron localized prompt tuning, as a deployable toolkit.

The library mirrors the CLI: ``tune``, ``compress``, ``export_directory`` (``skeleton export``),
``run_bench`` (``skeleton bench``), ``compare``, ``analyze``, ``Predictor`` (``skeleton predict``), and
``load`` (rebuild a Skeleton model from its directory in PyTorch), each with its ``<Stage>Config``.
Names are imported on first use, so ``import skeleton.core.config`` (what the CLI needs for its
defaults) does not load torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "CompressConfig": "skeleton.core.config",
    "DataConfig": "skeleton.core.config",
    "ModelConfig": "skeleton.core.config",
    "SearchConfig": "skeleton.core.config",
    "TrainConfig": "skeleton.core.config",
    "TuneConfig": "skeleton.core.config",
    "ExportConfig": "skeleton.core.config",
    "BenchConfig": "skeleton.core.config",
    "CompareConfig": "skeleton.core.config",
    "AnalyzeConfig": "skeleton.core.config",
    "SkeletonError": "skeleton.core.errors",
    "CompressResult": "skeleton.compression",
    "compress": "skeleton.compression",
    "TuneResult": "skeleton.method.tuning",
    "tune": "skeleton.method.tuning",
    "LoadedModel": "skeleton.deploy.loading",
    "CompressedModel": "skeleton.deploy.loading",  # LoadedModel's name before it held teachers too
    "load": "skeleton.deploy.loading",
    "export_directory": "skeleton.deploy.export",
    "Predictor": "skeleton.deploy.predictor",
    "run_bench": "skeleton.measure.bench",
    "compare": "skeleton.measure.comparison",
    "analyze": "skeleton.measure.analysis",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'skeleton' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
