"""The runtimes that run an exported graph: a runtime is a small class with one verb, ``run``
(token ids in, logits out). This module holds the interface and the onnxruntime runtime, and
imports numpy alone (onnxruntime when a session is made); the PyTorch runtime stands beside the
model loader in :mod:`skeleton.deploy.artifacts`.
"""

from __future__ import annotations

import abc
from pathlib import Path

import numpy as np

from skeleton.core.errors import SkeletonError


def call_tokenizer(tokenizer, texts: list, **kwargs):
    """``tokenizer`` on strings, or on (text1, text2) pairs as its two text arguments."""
    if texts and not isinstance(texts[0], str):
        first, second = zip(*texts, strict=True)
        return tokenizer(list(first), list(second), **kwargs)
    return tokenizer(list(texts), **kwargs)


def tokenize(tokenizer, texts: list, max_length: int | None = None) -> dict[str, np.ndarray]:
    """Padded, truncated numpy inputs for strings or (text1, text2) pairs; the exported tokenizer
    applies the task template itself.
    """
    return dict(
        call_tokenizer(tokenizer, texts, padding=True, truncation=True, max_length=max_length, return_tensors="np")
    )


def onnx_providers(device: str = "auto") -> list[str]:
    """onnxruntime execution providers for ``--device``: CUDA when asked for or available (auto)."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" not in available:
            raise SkeletonError(
                "device cuda asked for, but this onnxruntime has no CUDAExecutionProvider (install onnxruntime-gpu)"
            )
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "auto" and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device not in ("auto", "cpu"):
        raise SkeletonError(f"unknown device {device!r}: use auto, cpu or cuda")
    return ["CPUExecutionProvider"]


class Runtime(abc.ABC):
    """Turns a batch of token ids into logits."""

    name = ""

    @abc.abstractmethod
    def run(self, encoded: dict[str, np.ndarray]) -> np.ndarray:
        """encoded: input_ids / attention_mask (/ token_type_ids), each (batch, tokens) -> logits (batch, labels)."""


class OnnxRuntime(Runtime):
    """One exported ONNX graph in an onnxruntime session."""

    name = "onnx"

    def __init__(
        self,
        path: Path,
        providers: list[str] | None = None,
        threads: int | None = None,
        spinning: bool = True,
    ):
        """Args:
        path: the ONNX graph.
        providers: onnxruntime execution providers (CPU by default).
        threads: intra-op threads (onnxruntime's default: one per core).
        spinning: let idle worker threads spin; turn it off when several sessions are timed side by
            side, or an idle session's spinning threads steal the cores from the one running.
        """
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        if not spinning:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), options, providers=providers or ["CPUExecutionProvider"])
        self.input_names = {i.name for i in self.session.get_inputs()}

    def run(self, encoded):
        feeds = {k: np.asarray(v, dtype=np.int64) for k, v in encoded.items() if k in self.input_names}
        return self.session.run(["logits"], feeds)[0]


def synthetic_batch(
    batch: int, length: int, vocab_size: int, with_token_types: bool = True, seed: int = 0
) -> dict[str, np.ndarray]:
    """Random token ids of one shape, no padding: what latency is measured on.

    Ids come from the upper part of the vocabulary (real word pieces, not special tokens).
    """
    rng = np.random.default_rng(seed)
    low = min(1000, vocab_size // 2)
    ids = rng.integers(low, vocab_size, size=(batch, length), dtype=np.int64)
    encoded = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    if with_token_types:
        encoded["token_type_ids"] = np.zeros_like(ids)
    return encoded
