"""Skeleton: task neuron localized prompt tuning, as a deployable toolkit.

The library mirrors the CLI: ``tune`` (``skeleton tune``), ``compress`` (``skeleton compress``),
``load`` (rebuild a compressed model from its directory).
"""

from skeleton.artifacts import CompressedModel, load
from skeleton.compression import CompressConfig, CompressResult, compress
from skeleton.data import DataConfig
from skeleton.errors import SkeletonError
from skeleton.search import SearchConfig
from skeleton.tuning import TrainConfig, TuneConfig, TuneResult, tune
from skeleton.workspace import ModelConfig

__all__ = [
    "CompressConfig",
    "CompressResult",
    "CompressedModel",
    "DataConfig",
    "ModelConfig",
    "SearchConfig",
    "SkeletonError",
    "TrainConfig",
    "TuneConfig",
    "TuneResult",
    "compress",
    "load",
    "tune",
]
