"""``Predictor``: classify texts with an exported model, its exported tokenizer (template included)
and one runtime of the registry; behind ``skeleton predict``, the server and the Python API.

With a graph runtime (onnx-*, openvino-*) nothing here imports torch or transformers: the tokenizer is
read with the ``tokenizers`` library and the runtime loads only its own library.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from skeleton.core.errors import SkeletonError
from skeleton.core.logits import batched_logits, label_scores, softmax
from skeleton.core.tasks import saved_task
from skeleton.deploy.buckets import BucketedRuntime, Buckets, static_lengths
from skeleton.deploy.manifest import read_manifest, resolve_onnx_dir
from skeleton.deploy.registry import default_runtime, open_runtime
from skeleton.deploy.runtimes import (
    RuntimeOptions,
    family_of,
    runtime_of,
    tokenize,
)
from skeleton.deploy.tokenizer import ExportedTokenizer


class Predictor:
    """Classify texts with an exported model: its tokenizer (template included) + one runtime.

    The tokenizer is always the exported one, whichever runtime runs the ids: the export checked that
    it reproduces the training-time encoding, so PyTorch and every graph see the same inputs.

    Args:
        directory: a compressed model directory or its ``onnx/`` directory.
        variant: a manifest variant (``fp32``, ``optimized``, ``int8``, ``openvino-int8``...); ``None`` =
            the manifest's default (the fastest graph that passed the export's bar).
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
        verify: check every file against the manifest's sha256 first.
        runtime: a runtime name of :func:`skeleton.deploy.registry.runtime_names` (``onnx-int8``,
            ``openvino-int8``, ``torch-fp32``...), ``onnx`` for the default onnxruntime graph, or ``None``
            (``auto``) for the export's choice for ``use``; PyTorch needs the model directory, not only ``onnx/``.
        threads: intra-op threads (default: one per core).
        spinning: let onnxruntime's idle threads spin (off when other work shares the cores).
        max_batch: the largest batch bucket: every batch runs padded up to one of a few (batch, tokens)
            shapes (:class:`~skeleton.deploy.buckets.Buckets`), larger batches as they are.
        use: what the default runtime (``runtime`` ``None`` or ``auto``) is chosen for: ``predict`` (the
            graph the export measured fastest one text at a time) or ``serve`` (the one that lost least against
            the fastest at any batch a server runs).
        streams: OpenVINO's batches at once (:class:`~skeleton.deploy.runtimes.RuntimeOptions`): 1 (every core
            on one batch) or ``None`` (its throughput hint's choice, for a server's concurrent batches).
        static_batch_one: on OpenVINO, also compile the graph for one text at each length bucket up to
            :data:`~skeleton.deploy.buckets.STATIC_UP_TO` tokens, which batches of one then run on (faster
            calls, a compile of a fraction of a second and a copy of the weights each; for a server, not for
            a few predictions).
    """

    def __init__(
        self,
        directory: str | Path,
        variant: str | None = None,
        device: str = "auto",
        verify: bool = True,
        runtime: str | None = None,
        threads: int | None = None,
        spinning: bool = True,
        max_batch: int = 32,
        use: str = "predict",
        streams: int | None = 1,
        static_batch_one: bool = False,
    ):
        self.use = use
        self.onnx_dir = resolve_onnx_dir(directory)
        self.manifest = read_manifest(self.onnx_dir, verify=verify)
        self.max_input_tokens = int(self.manifest.max_input_tokens)
        self.buckets = Buckets.for_model(self.max_input_tokens, max_batch)
        name = self._runtime_name(variant, runtime)
        fixed = static_lengths(self.buckets.lengths) if static_batch_one else ()
        self.runtime = open_runtime(
            name, self.onnx_dir, self.manifest, RuntimeOptions(device, threads, spinning, streams, fixed)
        )
        self.runtime_name = name
        self.variant = next((v for v in self.manifest.variants if runtime_of(v) == name), None)
        self.tokenizer = ExportedTokenizer(self.onnx_dir)
        self.label_names = self.manifest.label_names
        self.task = saved_task(self.manifest.task, self.manifest.task_spec)
        self.is_pair = self.task.is_pair
        self.pad_id = self.tokenizer.pad_token_id or 0
        self.pad_left = self.tokenizer.padding_side == "left"
        self.bucketed = BucketedRuntime(self.runtime, self.buckets, self.pad_id, self.pad_left)

    def _runtime_name(self, variant: str | None, runtime: str | None) -> str:
        """The runtime name asked for by ``--variant`` or ``--runtime`` (one of them), else the default."""
        variants = self.manifest.variants
        if variant is not None and variant not in variants:
            rejected = self.manifest.rejected_variants.get(variant)
            why = f" ({rejected['reason']})" if rejected else ""
            raise SkeletonError(f"variant {variant!r} was not exported{why}; available: {', '.join(variants)}")
        by_variant = runtime_of(variant) if variant else None
        if runtime == "onnx":  # the fastest onnxruntime graph that passed, for users who want onnxruntime
            runtime = runtime_of(self._fastest([v for v in variants if family_of(runtime_of(v)) == "onnx"]))
        if runtime is not None and by_variant is not None and runtime != by_variant:
            raise SkeletonError(f"--variant {variant} and --runtime {runtime} disagree: give one of them")
        if runtime == "auto":
            runtime = None
        return runtime or by_variant or default_runtime(self.manifest, self.use)

    def _fastest(self, variants: list[str]) -> str:
        """The default variant when it is among ``variants``, else the first that passed the bar."""
        if self.manifest.default_variant in variants:
            return self.manifest.default_variant
        passing = [v for v in variants if self.manifest.variants[v].get("passes_bar", True)]
        return (passing or variants)[0]

    def encode(self, texts: list) -> dict[str, np.ndarray]:
        """Tokenize (template included); inputs longer than ``max_input_tokens`` are truncated."""
        return tokenize(self.tokenizer, texts, self.max_input_tokens)

    def run(self, encoded: dict[str, np.ndarray]) -> np.ndarray:
        """(batch, labels) logits of one encoded batch, run padded up to its bucket (:mod:`buckets`)."""
        return self.bucketed.run(encoded)

    def logits(self, texts: list, batch_size: int = 32) -> np.ndarray:
        """(texts, labels) logits; texts are strings, or (text1, text2) pairs for pair tasks."""
        return batched_logits(self, self.encode, texts, len(self.label_names), batch_size)

    def probabilities(self, texts: list, batch_size: int = 32) -> np.ndarray:
        """(texts, labels) probabilities, in the order of ``label_names``."""
        return softmax(self.logits(texts, batch_size).astype(np.float64))

    def predict(self, texts: list, batch_size: int = 32) -> list[tuple[str, float]]:
        """(label name, probability) per text."""
        return label_scores(self.logits(texts, batch_size), self.label_names)
