"""The runtime registry: every runtime family, registered once, and how a runtime is found by name.

Families: ``onnx`` and ``openvino`` (graphs, :mod:`skeleton.deploy.runtimes`) and ``torch`` (the model
directory rebuilt by :func:`skeleton.load`, :class:`skeleton.deploy.loading.TorchRuntime`, imported only
when a PyTorch runtime is opened, so an ONNX or OpenVINO prediction never loads torch).
"""

from __future__ import annotations

from pathlib import Path

from skeleton.core.config import TORCH_PRECISIONS
from skeleton.core.errors import SkeletonError
from skeleton.deploy.runtimes import (
    OnnxRuntime,
    OpenVinoRuntime,
    Runtime,
    RuntimeOptions,
    family_of,
    precision_of,
    runtime_of,
)


class TorchRuntimes(Runtime):
    """The registry's entry for PyTorch: the model directory rebuilt by :func:`skeleton.load`, run by
    :class:`skeleton.deploy.loading.TorchRuntime` (imported only when one is opened, so torch loads
    only for a PyTorch runtime)."""

    family = "torch"
    needs = "torch"

    def run(self, encoded):  # pragma: no cover - the entry opens TorchRuntime, it never runs itself
        raise NotImplementedError

    @classmethod
    def names(cls, manifest) -> list[str]:
        return [f"torch-{precision}" for precision in TORCH_PRECISIONS]

    @classmethod
    def open(cls, name, onnx_dir, manifest, options):
        from skeleton.deploy.loading import TorchRuntime  # torch loads only for a PyTorch runtime

        runtime = TorchRuntime(Path(onnx_dir).parent, device=options.device, precision=precision_of(name))
        runtime.name = name
        return runtime


REGISTRY: dict[str, type[Runtime]] = {cls.family: cls for cls in (OnnxRuntime, OpenVinoRuntime, TorchRuntimes)}


def runtime_names(manifest) -> list[str]:
    """Every runtime name an exported model can run under, graphs first, in the registry's order."""
    return [name for family in REGISTRY.values() for name in family.names(manifest)]


USES = ("predict", "serve")


def default_runtime(manifest, use: str = "predict") -> str:
    """The runtime the export chose for ``use``: ``predict``, the graph that classified the most sentences
    one at a time, ``serve``, the one that lost least against the fastest at any batch a server runs (both end
    to end, tokenizer included); for a manifest without those figures, its default variant (the fastest graph
    by latency that passed the bar)."""
    if use not in USES:
        raise ValueError(f"use must be one of {', '.join(USES)}, got {use!r}")
    chosen = (manifest.runtime_choice or {}).get(use) or manifest.default_variant
    return runtime_of(chosen)


def open_runtime(name: str, onnx_dir: Path, manifest, options: RuntimeOptions | None = None) -> Runtime:
    """Open the runtime ``name`` (see ``runtime_names``) for the exported model in ``onnx_dir``."""
    options = options or RuntimeOptions()
    family = REGISTRY.get(family_of(name))
    names = runtime_names(manifest)
    if family is None or name not in names:
        raise SkeletonError(f"runtime {name!r} is not available for {onnx_dir}; choose one of {', '.join(names)}")
    if not family.available():
        raise SkeletonError(f"runtime {name} needs the {family.needs} package: pip install {family.needs}")
    return family.open(name, Path(onnx_dir), manifest, options)


def open_graph(name: str, path: Path, options: RuntimeOptions | None = None) -> Runtime:
    """A graph runtime (``onnx-*`` or ``openvino-*``) of one graph file, outside any manifest (export, bench)."""
    family = REGISTRY[family_of(name)]
    return family.from_graph(Path(path), precision_of(name), options or RuntimeOptions())
