"""The runtimes that run a model: each is one class with one verb, ``run`` (token ids in, logits out),
registered once in :mod:`skeleton.deploy.registry` under its family (the part of a runtime name
before the dash).

- ``onnx-<variant>``: an exported ONNX graph (fp32, optimized, int8) in onnxruntime;
- ``openvino-<precision>``: the exported graphs compiled by OpenVINO (fp32, bf16 by the inference
  precision hint, int8 from NNCF post-training quantisation);
- ``torch-<precision>``: the PyTorch model rebuilt from the model directory (fp32, bf16 or fp16
  autocast), which lives beside the loader in :mod:`skeleton.deploy.loading`.

Predict, serve, bench, export and the CLI read the registry: adding a runtime is one class here, its
line in the registry and its test. This module imports numpy alone; a runtime's library loads when one
is opened, so an ONNX or OpenVINO prediction never loads torch.
"""

from __future__ import annotations

import abc
import importlib.util
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from skeleton.core.config import OPENVINO_PRECISIONS, runtime_of
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


@dataclass(frozen=True)
class RuntimeOptions:
    """How a runtime is opened.

    Attributes:
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
        threads: intra-op threads (the library's default: one per core).
        spinning: let onnxruntime's idle threads spin; off when several runtimes are timed side by side
            or other work shares the cores.
        streams: batches an OpenVINO graph runs at once: 1 (the latency hint: one batch on every core, what a
            caller waiting for one answer wants) or ``None`` for OpenVINO's throughput hint, which splits the
            cores into the streams it chooses and keeps an infer request per stream (what a server under load
            wants); any other number asks for that many streams. Other runtimes run one batch at a time.
        static_lengths: input lengths at which OpenVINO also compiles the graph for one sequence of exactly
            that length, which a batch of one at that length then runs on: a graph of fixed shapes skips the
            shape inference and memory planning a dynamic one redoes at every call, a large share of a small
            model's batch-1 latency. Each costs a compile (a fraction of a second) and a copy of the
            weights in memory; other runtimes ignore it.
    """

    device: str = "auto"
    threads: int | None = None
    spinning: bool = True
    streams: int | None = 1
    static_lengths: tuple[int, ...] = ()


class Runtime(abc.ABC):
    """Turns a batch of token ids into logits.

    A registered runtime family also says which runtime names it offers for an exported model
    (``names``) and opens one of them (``open``).
    """

    name = ""
    family: ClassVar[str] = ""
    needs: ClassVar[str] = ""  # the Python package the family runs on
    parallel = 1  # batches that may run at once, each from a thread of its own
    static_lengths: tuple[int, ...] = ()  # lengths a batch of one runs on a graph compiled for (OpenVINO's)

    @abc.abstractmethod
    def run(self, encoded: dict[str, np.ndarray]) -> np.ndarray:
        """encoded: input_ids / attention_mask (/ token_type_ids), each (batch, tokens) -> logits (batch, labels)."""

    @classmethod
    def names(cls, manifest) -> list[str]:
        """The runtime names of this family for an exported model: its graphs in the manifest."""
        return [runtime_of(v) for v in manifest.variants if family_of(runtime_of(v)) == cls.family]

    @classmethod
    def open(cls, name: str, onnx_dir: Path, manifest, options: RuntimeOptions) -> Runtime:
        """The runtime ``name`` for the exported model in ``onnx_dir``."""
        _, info = variant_of(manifest, name)
        return cls.from_graph(onnx_dir / info["file"], precision_of(name), options)

    @classmethod
    def from_graph(cls, path: Path, precision: str, options: RuntimeOptions) -> Runtime:
        """This family's runtime of one graph file (``precision``: the part of the name after the dash)."""
        raise NotImplementedError

    @classmethod
    def available(cls) -> bool:
        """Whether this machine has the family's library."""
        return importlib.util.find_spec(cls.needs) is not None


def family_of(name: str) -> str:
    """``onnx-int8`` -> ``onnx``: a runtime name's family (split here and in ``precision_of`` only)."""
    return name.split("-", 1)[0]


def precision_of(name: str) -> str:
    """``onnx-int8`` -> ``int8``: what the family runs (a graph variant or a precision)."""
    return name.split("-", 1)[1]


def variant_of(manifest, name: str) -> tuple[str, dict]:
    """The manifest variant (key, info) that the runtime ``name`` runs."""
    for variant, info in manifest.variants.items():
        if runtime_of(variant) == name:
            return variant, info
    graphs = ", ".join(runtime_of(v) for v in manifest.variants)
    raise SkeletonError(f"runtime {name!r} is not among this export's graphs: {graphs}")


class OnnxRuntime(Runtime):
    """One exported ONNX graph in an onnxruntime session."""

    name = "onnx"
    family = "onnx"
    needs = "onnxruntime"

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

    @classmethod
    def from_graph(cls, path, precision, options):
        runtime = cls(path, onnx_providers(options.device), threads=options.threads, spinning=options.spinning)
        runtime.name = f"onnx-{precision}"
        return runtime

    def run(self, encoded):
        feeds = {k: np.asarray(v, dtype=np.int64) for k, v in encoded.items() if k in self.input_names}
        return self.session.run(["logits"], feeds)[0]


class OpenVinoRuntime(Runtime):
    """One exported graph (ONNX, or OpenVINO IR ``.xml`` beside its ``.bin``) compiled by OpenVINO for
    the CPU, dynamic shapes kept: with the latency hint (``streams`` 1: every core on one batch), or with
    the throughput hint (``streams`` ``None``: OpenVINO's choice; or a number), one infer request per
    stream, so that as many batches run at once, each on its share of the cores.

    ``precision``: ``fp32`` (inference precision f32), ``bf16`` (the bf16 inference-precision hint;
    worth it on CPUs with native bf16), ``int8`` (an NNCF-quantised graph; the CPU plugin picks the
    precision of what stays float).

    ``static_lengths``: see :class:`RuntimeOptions`; a batch of one sequence at one of those lengths runs on a
    copy of the graph compiled for that shape alone, every other batch on the dynamic graph.
    """

    name = "openvino"
    family = "openvino"
    needs = "openvino"
    PRECISIONS = OPENVINO_PRECISIONS

    def __init__(
        self,
        path: Path,
        precision: str = "fp32",
        threads: int | None = None,
        streams: int | None = 1,
        static_lengths: tuple[int, ...] = (),
    ):
        import openvino as ov

        if precision not in self.PRECISIONS:
            raise SkeletonError(f"unknown OpenVINO precision {precision!r}; choose one of {', '.join(self.PRECISIONS)}")
        if streams is not None and streams < 1:
            raise SkeletonError(f"streams must be at least 1, got {streams}")
        config: dict = {"PERFORMANCE_HINT": "LATENCY" if streams == 1 else "THROUGHPUT"}
        if streams not in (None, 1):
            config["NUM_STREAMS"] = int(streams)
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        if precision in ("fp32", "bf16"):
            config["INFERENCE_PRECISION_HINT"] = "f32" if precision == "fp32" else "bf16"
        if any(length < 1 for length in static_lengths):
            raise SkeletonError(f"static lengths must be positive, got {sorted(static_lengths)}")
        core = ov.Core()
        self.path = Path(path)
        model = core.read_model(str(path))
        self.compiled = core.compile_model(model, "CPU", config)
        self.parallel = 1 if streams == 1 else int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        self._requests = self._request_pool(self.compiled)
        self.input_names = {name for port in self.compiled.inputs for name in port.get_names()}
        # (compiled graph, its infer requests) per static input length, each for a batch of one
        self._static = {length: self._fixed(core, model, config, length) for length in sorted(set(static_lengths))}
        self.name = f"openvino-{precision}"

    def _request_pool(self, compiled) -> queue.SimpleQueue:
        """One infer request per batch that may run at once: a call takes a free one, or waits for one."""
        requests: queue.SimpleQueue = queue.SimpleQueue()
        for _ in range(self.parallel):
            requests.put(compiled.create_infer_request())
        return requests

    def _fixed(self, core, model, config: dict, length: int):
        """The graph compiled for one sequence of ``length`` tokens, with its infer requests."""
        import openvino as ov

        fixed = model.clone()
        shapes = {}
        for port in fixed.inputs:
            if port.get_partial_shape().rank.get_length() != 2:
                name = port.get_any_name()
                raise SkeletonError(f"{self.path}: input {name} is not (batch, tokens); no static shapes")
            shapes[port.get_any_name()] = ov.PartialShape([1, length])
        fixed.reshape(shapes)
        compiled = core.compile_model(fixed, "CPU", config)
        return compiled, self._request_pool(compiled)

    @property
    def static_lengths(self) -> tuple[int, ...]:
        return tuple(self._static)

    @classmethod
    def from_graph(cls, path, precision, options):
        if options.device.startswith("cuda"):
            raise SkeletonError("OpenVINO runs on the CPU here; on CUDA use an onnx or torch runtime")
        fixed = options.static_lengths
        return cls(path, precision, threads=options.threads, streams=options.streams, static_lengths=fixed)

    def graph_for(self, feeds: dict[str, np.ndarray]):
        """(compiled graph, its infer requests) that ``feeds`` run on: the static graph of their length when
        every input is one sequence of one of the static lengths (a pair's two texts alike), else the dynamic one."""
        shapes = {array.shape for array in feeds.values()}
        if len(shapes) == 1:
            ((sequences, tokens),) = shapes
            if sequences == 1 and tokens in self._static:
                return self._static[tokens]
        return self.compiled, self._requests

    def run(self, encoded):
        if not _OPENVINO_FIRST_CALL_DONE.is_set():
            # the process's first inference runs alone: OpenVINO's Python binding initialises a static inside
            # the getter of a tensor's data while holding the GIL, and gives the GIL up inside it, so two
            # first calls at once (a server's warm-up runs one on each stream) can deadlock, each waiting for
            # what the other holds (seen on a 2-core AMX Xeon under load: the server neither ready nor stopping)
            with _OPENVINO_FIRST_CALL:
                logits = self._infer(encoded)
                _OPENVINO_FIRST_CALL_DONE.set()
                return logits
        return self._infer(encoded)

    def _infer(self, encoded):
        feeds = {k: np.asarray(v, dtype=np.int64) for k, v in encoded.items() if k in self.input_names}
        compiled, requests = self.graph_for(feeds)
        request = requests.get()
        try:
            result = request.infer(feeds)
            return np.array(result[compiled.output(0)], dtype=np.float32)
        finally:
            requests.put(request)


# one lock and one flag for the process, not per runtime: the static is the binding's, shared by every graph
_OPENVINO_FIRST_CALL = threading.Lock()
_OPENVINO_FIRST_CALL_DONE = threading.Event()


def synthetic_batch(
    batch: int, length: int, vocab_size: int, with_token_types: bool = True, seed: int = 0, pairs: bool = False
) -> dict[str, np.ndarray]:
    """Random token ids of one shape, no padding: what latency is measured on. With ``pairs``, a
    bi-encoder's batch: ``batch`` pairs of two ``length``-token sentences (``pair_*`` the second), each
    sentence one segment, so without token types.

    Ids come from the upper part of the vocabulary (real word pieces, not special tokens).
    """
    rng = np.random.default_rng(seed)
    low = min(1000, vocab_size // 2)
    ids = rng.integers(low, vocab_size, size=(batch, length), dtype=np.int64)
    encoded = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    if with_token_types and not pairs:
        encoded["token_type_ids"] = np.zeros_like(ids)
    if pairs:
        encoded["pair_input_ids"] = rng.integers(low, vocab_size, size=(batch, length), dtype=np.int64)
        encoded["pair_attention_mask"] = np.ones_like(ids)
    return encoded
