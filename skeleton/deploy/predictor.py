"""``Predictor``: classify texts with an exported model, its exported tokenizer (template included)
and one runtime; behind ``skeleton predict`` and the server."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from skeleton.core.architectures import pretrained_tokenizer
from skeleton.core.config import TORCH_RUNTIMES
from skeleton.core.errors import SkeletonError
from skeleton.core.logits import batched_logits, label_scores
from skeleton.core.tasks import get_task
from skeleton.deploy.manifest import read_manifest, resolve_onnx_dir
from skeleton.deploy.runtimes import OnnxRuntime, onnx_providers, tokenize


def runtime_names(variants) -> list[str]:
    """The ``--runtime`` choices for a model exported with ``variants``: ``onnx`` (the manifest's
    default), ``onnx-<variant>``, and PyTorch in each precision."""
    return ["onnx", *(f"onnx-{v}" for v in variants), *TORCH_RUNTIMES]


class Predictor:
    """Classify texts with an exported model: its tokenizer (template included) + one runtime.

    The tokenizer is always the exported one, whichever runtime runs the ids: the export checked that
    it reproduces the training-time encoding, so PyTorch and every ONNX variant see the same inputs.

    Args:
        directory: a compressed model directory or its ``onnx/`` directory.
        variant: ``fp32``, ``optimized`` or ``int8``; ``None`` = the manifest's default (best) variant.
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
        verify: check every file against the manifest's sha256 first.
        runtime: ``onnx`` (the default variant), ``onnx-<variant>``, or ``torch-fp32`` / ``torch-bf16``
            (autocast; fast on CPUs with AMX or AVX512-BF16) / ``torch-fp16`` (CUDA); PyTorch needs the
            compressed model directory, not only its ``onnx/``.
        threads: onnxruntime intra-op threads (default: one per core).
        spinning: let onnxruntime's idle threads spin (off when other work shares the cores).
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
    ):
        self.onnx_dir = resolve_onnx_dir(directory)
        self.manifest = read_manifest(self.onnx_dir, verify=verify)
        variants = self.manifest.variants
        if runtime is not None and variant is not None and runtime != f"onnx-{variant}":
            raise SkeletonError(f"--variant {variant} and --runtime {runtime} disagree: give one of them")
        runtime = runtime or (f"onnx-{variant}" if variant else "onnx")
        if runtime.startswith("onnx-") and runtime.removeprefix("onnx-") not in variants:
            raise SkeletonError(
                f"variant {runtime.removeprefix('onnx-')!r} was not exported; available: {', '.join(variants)}"
            )
        if runtime not in runtime_names(variants):
            raise SkeletonError(
                f"runtime {runtime!r} is not available for {self.onnx_dir}; choose one of "
                f"{', '.join(runtime_names(variants))}"
            )
        if runtime.startswith("torch-"):
            from skeleton.deploy.artifacts import TorchRuntime  # torch loads only for a PyTorch runtime

            self.variant = None
            self.runtime = TorchRuntime(self.onnx_dir.parent, device=device, precision=runtime.removeprefix("torch-"))
        else:
            self.variant = runtime.removeprefix("onnx-") if runtime != "onnx" else self.manifest.default_variant
            path = self.onnx_dir / variants[self.variant]["file"]
            self.runtime = OnnxRuntime(path, onnx_providers(device), threads=threads, spinning=spinning)
            runtime = f"onnx-{self.variant}"
        self.runtime_name = runtime
        self.tokenizer = pretrained_tokenizer(str(self.onnx_dir))
        self.label_names = self.manifest.label_names
        self.max_input_tokens = int(self.manifest.max_input_tokens)
        self.is_pair = get_task(self.manifest.task).is_pair

    def encode(self, texts: list) -> dict[str, np.ndarray]:
        """Tokenize (template included); inputs longer than ``max_input_tokens`` are truncated."""
        return tokenize(self.tokenizer, texts, self.max_input_tokens)

    def logits(self, texts: list, batch_size: int = 32) -> np.ndarray:
        """(texts, labels) logits; texts are strings, or (text1, text2) pairs for pair tasks."""
        return batched_logits(self.runtime, self.encode, texts, len(self.label_names), batch_size)

    def predict(self, texts: list, batch_size: int = 32) -> list[tuple[str, float]]:
        """(label name, probability) per text."""
        return label_scores(self.logits(texts, batch_size), self.label_names)
