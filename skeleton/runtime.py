"""Running an exported model: checksum-verified loading and batched prediction.

A runtime is a small class with one verb, ``run`` (token ids in, logits out): an ONNX graph in
onnxruntime or the PyTorch model. :func:`gather_logits` is the one batched-prediction loop, behind
evaluation, export parity, ``skeleton predict`` and the benchmarks.
"""

from __future__ import annotations

import abc
import hashlib
from pathlib import Path

import numpy as np

from skeleton.errors import SkeletonError
from skeleton.layout import MANIFEST_FILE, ONNX_DIR
from skeleton.records import Manifest


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


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_onnx_dir(directory: str | Path) -> Path:
    """Accept either a compressed model directory (with ``onnx/``) or the ``onnx/`` directory itself."""
    directory = Path(directory)
    if (directory / MANIFEST_FILE).is_file():
        return directory
    if (directory / ONNX_DIR / MANIFEST_FILE).is_file():
        return directory / ONNX_DIR
    if not directory.exists():
        raise SkeletonError(f"directory not found: {directory}")
    raise SkeletonError(
        f"{directory} holds no exported model ({ONNX_DIR}/{MANIFEST_FILE}); run 'skeleton export {directory}'"
    )


def read_manifest(onnx_dir: Path, verify: bool = True) -> Manifest:
    """The manifest, with every listed file's sha256 checked when ``verify``."""
    manifest = Manifest.load(onnx_dir / MANIFEST_FILE)
    if verify:
        for name, expected in manifest.files.items():
            path = onnx_dir / name
            if not path.is_file():
                raise SkeletonError(f"{path} is missing (listed in {MANIFEST_FILE})")
            if sha256_file(path) != expected:
                raise SkeletonError(
                    f"{path} does not match its checksum in {MANIFEST_FILE}: the file was changed or damaged"
                )
    return manifest


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


class TorchRuntime(Runtime):
    """The PyTorch model rebuilt by :func:`skeleton.load` (prompt prepended at run time), in fp32 or
    under autocast: ``bf16`` (CPUs with native bf16) or ``fp16`` (CUDA)."""

    name = "torch"
    PRECISIONS = ("fp32", "bf16", "fp16")

    def __init__(self, directory, device: str = "auto", precision: str = "fp32"):
        """``directory``: a model directory, or a model :func:`skeleton.load` already rebuilt."""
        from skeleton.artifacts import CompressedModel, load

        if precision not in self.PRECISIONS:
            raise SkeletonError(f"unknown precision {precision!r}; choose one of {', '.join(self.PRECISIONS)}")
        self.model = directory if isinstance(directory, CompressedModel) else load(directory, device=device)
        if precision == "fp16" and self.model.device.type != "cuda":
            raise SkeletonError("fp16 autocast runs on CUDA; on a CPU use bf16 (or fp32)")
        self.precision = precision

    def run(self, encoded):
        import torch

        model = self.model
        inputs = {
            k: torch.as_tensor(v, dtype=torch.long, device=model.device)
            for k, v in encoded.items()
            if k in ("input_ids", "attention_mask", "token_type_ids")
        }
        dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[self.precision]
        with torch.inference_mode(), torch.autocast(model.device.type, dtype=dtype, enabled=dtype is not None):
            return model.classifier(**inputs).float().cpu().numpy()


def runtime_names(variants) -> list[str]:
    """The ``--runtime`` choices for a model exported with ``variants``: ``onnx`` (the manifest's
    default), ``onnx-<variant>``, and PyTorch in each precision."""
    return ["onnx", *(f"onnx-{v}" for v in variants), *(f"torch-{p}" for p in TorchRuntime.PRECISIONS)]


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
        from skeleton.architectures import pretrained_tokenizer
        from skeleton.tasks import get_task

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


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (rows, labels) logits."""
    shifted = np.exp(logits - logits.max(-1, keepdims=True))
    return shifted / shifted.sum(-1, keepdims=True)


def label_scores(logits: np.ndarray, label_names: list[str] | tuple[str, ...]) -> list[tuple[str, float]]:
    """(label name, probability) of the most likely label of each row of (rows, labels) logits."""
    return [(label_names[int(p.argmax())], float(p.max())) for p in softmax(np.asarray(logits, dtype=np.float64))]


def gather_logits(chunks, run, rows: int, num_labels: int) -> np.ndarray:
    """The one batched-prediction loop: ``run(inputs)`` for each ``(row indices, inputs)`` of
    ``chunks``, its (batch, labels) logits written to those rows of a (rows, labels) array."""
    out = np.zeros((rows, num_labels), dtype=np.float32)
    for indices, inputs in chunks:
        out[indices] = run(inputs)
    return out


def batched_logits(runtime: Runtime, encode, texts: list, num_labels: int, batch_size: int = 32) -> np.ndarray:
    """Logits of every text, (texts, labels), in the input order.

    Texts are sorted by length and cut into batches, so each batch pads to a similar length (the
    main waste on a CPU), and the rows are put back in order.

    Args:
        runtime: what turns one encoded batch into logits.
        encode: texts -> encoded batch (tokenizer with template, padding, truncation).
        texts: strings, or (text1, text2) pairs for pair tasks.
    """
    order = sorted(
        range(len(texts)),
        key=lambda i: len(texts[i]) if isinstance(texts[i], str) else sum(map(len, texts[i])),
    )
    chunks = (
        (chunk, encode([texts[i] for i in chunk]))
        for chunk in (order[start : start + batch_size] for start in range(0, len(order), batch_size))
    )
    return gather_logits(chunks, runtime.run, len(texts), num_labels)


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
