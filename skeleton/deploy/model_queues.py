"""Serving exported models: input checks, per-model dynamic batching, overload control, metrics.

A request's inputs are checked and tokenized as it arrives, then wait in their model's queue. One batcher task
per model takes the oldest waiting input and, of the inputs waiting with it, those that make the call doing the most
work (their own tokens) for its cost (a fixed cost per call plus padded rows x tokens: inputs near it in length),
up to ``max_batch_size`` inputs and ``max_batch_tokens`` tokens after padding, after waiting at most
``max_wait_ms`` for more (0 by default: a lone request is not held back); the batch runs in a thread pool sized
to the cores, off the event loop, through :class:`~skeleton.deploy.runtimes.Predictor`'s runtime (the one
inference surface).
As many batches run at once as the runtime has streams (OpenVINO's throughput hint: one per share of the cores;
on 2 cores alike under load to one batch at a time, more one text at a time: docs/serving.md); a new batch is
formed only when a stream is free, so it takes everything that arrived meanwhile. A full queue refuses new
inputs at once (429) instead of letting latency grow without end.

The HTTP layer (:mod:`skeleton.deploy.server`) only turns JSON into these calls and their errors into
status codes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from skeleton.core.config import ServeConfig
from skeleton.core.errors import SkeletonError
from skeleton.core.file_names import MODEL_INPUTS
from skeleton.core.logits import softmax
from skeleton.deploy.buckets import call_tokens, cheapest_batch, pad_to
from skeleton.deploy.predictor import Predictor
from skeleton.deploy.runtimes import call_tokenizer
from skeleton.deploy.tokenizer import finish_columns


class RequestError(SkeletonError):
    """A request the server refuses, with the HTTP status that says why."""

    def __init__(self, message: str, status: int, kind: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.kind, self.headers = status, kind, headers or {}


class Metrics:
    """The server's Prometheus metrics, in a registry of its own (one per app)."""

    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        seconds = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
        self.requests = Counter(
            "skeleton_requests",
            "Prediction requests by model and HTTP status",
            ["model", "status"],
            registry=self.registry,
        )
        self.inputs = Counter("skeleton_inputs", "Inputs classified", ["model"], registry=self.registry)
        self.queue_seconds = Histogram(
            "skeleton_queue_seconds",
            "Time an input waits before its batch runs",
            ["model"],
            buckets=seconds,
            registry=self.registry,
        )
        self.inference_seconds = Histogram(
            "skeleton_inference_seconds",
            "Time one batch takes in the model",
            ["model"],
            buckets=seconds,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "skeleton_batch_size",
            "Inputs per batch",
            ["model"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=self.registry,
        )
        self.batch_tokens = Histogram(
            "skeleton_batch_tokens",
            "Tokens per batch after padding",
            ["model"],
            buckets=(64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384),
            registry=self.registry,
        )
        self.padding_tokens = Counter(
            "skeleton_padding_tokens",
            "Padding tokens the batches ran: to the longest input, to the length bucket and the batch bucket",
            ["model"],
            registry=self.registry,
        )
        self.queue_depth = Gauge("skeleton_queue_depth", "Inputs waiting", ["model"], registry=self.registry)

    def text(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


@dataclass
class _Waiting:
    """One input in a model's queue: its token ids and where its logits go."""

    encoding: dict[str, list[int]]
    future: asyncio.Future
    arrived: float = field(default_factory=time.perf_counter)

    @property
    def length(self) -> int:
        return _length(self.encoding)


def _length(encoding: dict[str, list[int]]) -> int:
    """Tokens an input pads to: its longest sequence (a bi-encoder's pair has two)."""
    return max(len(values) for key, values in encoding.items() if key.endswith("input_ids"))


class ServedModel:
    """One exported model behind a queue and a batcher.

    Args:
        name: the name clients address it by.
        directory: a compressed model directory with ``onnx/`` (or the ``onnx/`` directory).
        config: batching limits, runtime and device.
        pool: the thread pool batches run in.
        metrics: where queue and batch figures go.
        spinning: let onnxruntime's idle threads spin (best when this is the only model).
    """

    def __init__(
        self,
        name: str,
        directory: str | Path,
        config: ServeConfig,
        pool: concurrent.futures.Executor,
        metrics: Metrics,
        spinning: bool = True,
    ):
        self.name, self.config, self.pool, self.metrics = name, config, pool, metrics
        self.predictor = Predictor(
            directory,
            runtime=config.runtime,
            device=config.device,
            threads=config.threads,
            spinning=spinning,
            max_batch=config.max_batch_size,
            use="serve",
            streams=config.streams,
            static_batch_one=config.static_batch_one,
        )
        self.buckets = self.predictor.buckets
        # a call's fixed cost in tokens, from the export's timings of the graph this model runs
        variant = self.predictor.manifest.variants.get(self.predictor.variant or "", {})
        self.call_cost = call_tokens(variant.get("latency_ms"))
        self.pending: deque[_Waiting] = deque()
        self.ready = False
        self.warmed = 0  # buckets run so far by the warm-up
        self.warm_up_seconds: float | None = None
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._streams: asyncio.Semaphore | None = None  # batches that may run at once
        self._running: set[asyncio.Task] = set()
        self._parallel = self.predictor.runtime.parallel

    def describe(self) -> dict:
        predictor = self.predictor
        return {
            "name": self.name,
            "task": predictor.manifest.task,
            "labels": list(predictor.label_names),
            "pair_inputs": predictor.is_pair,
            "runtime": predictor.runtime_name,
            "variant": predictor.variant,
            "batches_at_once": self._parallel,
            "max_input_tokens": predictor.max_input_tokens,
            "ready": self.ready,
            "shapes": len(self.buckets.shapes()),
            "static_batch_one_lengths": list(predictor.runtime.static_lengths),
            "warm_up_seconds": self.warm_up_seconds,
        }

    # -- inputs -------------------------------------------------------------------------------

    def texts(self, inputs) -> tuple[list, bool]:
        """The request's inputs as a list of texts (or pairs), and whether it sent a single one."""
        pair = self.predictor.is_pair
        if isinstance(inputs, str):
            if pair:
                raise RequestError(
                    f"model {self.name} classifies pairs: send [text1, text2] or a list of them", 422, "validation"
                )
            return [inputs], True
        if not inputs:
            raise RequestError("inputs is empty", 422, "validation")
        if pair and all(isinstance(x, str) for x in inputs):
            if len(inputs) != 2:
                raise RequestError(f"a pair is two texts, got {len(inputs)}", 422, "validation")
            return [tuple(inputs)], True
        if pair:
            if not all(isinstance(x, list) and len(x) == 2 for x in inputs):
                raise RequestError("pair inputs are [text1, text2] lists of two texts each", 422, "validation")
            return [tuple(x) for x in inputs], False
        if not all(isinstance(x, str) for x in inputs):
            raise RequestError(
                f"model {self.name} classifies single texts: send a text or a list of texts", 422, "validation"
            )
        return list(inputs), False

    def check_limits(self, texts: list) -> None:
        """Refuse (413) more inputs, or longer ones, than a request may carry."""
        config = self.config
        if len(texts) > config.max_client_batch:
            raise RequestError(
                f"{len(texts)} inputs in one request; the limit is {config.max_client_batch} (--max-client-batch)",
                413,
                "payload_too_large",
            )
        for text in texts:
            size = len(text) if isinstance(text, str) else sum(map(len, text))
            if size > config.max_input_chars:
                raise RequestError(
                    f"an input has {size} characters; the limit is {config.max_input_chars} (--max-input-chars)",
                    413,
                    "payload_too_large",
                )

    def encode(self, texts: list, truncate: bool) -> list[dict[str, list[int]]]:
        """Token ids per input (template included); over-long inputs cut, or refused (422)."""
        limit = self.predictor.max_input_tokens
        encoded = call_tokenizer(
            self.predictor.tokenizer, texts, truncation=truncate, max_length=limit if truncate else None
        )
        keys = [k for k in MODEL_INPUTS if k in encoded]
        rows = [{k: encoded[k][i] for k in keys} for i in range(len(texts))]
        longest = max(_length(row) for row in rows)
        if longest > limit:
            raise RequestError(
                f"an input has {longest} tokens; the model takes {limit} (send truncate: true to cut it)",
                422,
                "validation",
            )
        return rows

    def scores(self, logits: np.ndarray, raw_scores: bool) -> list[list[dict]]:
        """For each row of (inputs, labels) logits, every label with its probability (or raw logit), highest
        first; one softmax and one sort for the whole request."""
        values = logits if raw_scores else softmax(logits.astype(np.float64))
        order = np.argsort(-values, axis=-1, kind="stable")  # (inputs, labels)
        names = self.predictor.label_names
        return [
            [{"label": names[i], "score": float(row[i])} for i in row_order]
            for row, row_order in zip(values.tolist(), order.tolist(), strict=True)
        ]

    # -- queue and batches --------------------------------------------------------------------

    async def predict(self, inputs, raw_scores: bool = False, truncate: bool = True):
        """Classify a request's inputs; a single input gets one list of label scores, several a list each."""
        texts, single = self.texts(inputs)
        self.check_limits(texts)
        # refusals that need no tokens come first: an overloaded server should not tokenize for nothing
        if not self.ready or self._wakeup is None:
            raise RequestError(f"model {self.name} is still loading", 503, "unavailable", {"Retry-After": "1"})
        if len(self.pending) + len(texts) > self.config.max_queue:
            raise RequestError(
                f"model {self.name} has {len(self.pending)} inputs waiting (--max-queue {self.config.max_queue})",
                429,
                "overloaded",
                {"Retry-After": "1"},
            )
        rows = self.encode(texts, truncate)
        loop = asyncio.get_running_loop()
        waiting = [_Waiting(row, loop.create_future()) for row in rows]
        self.pending.extend(waiting)
        self.metrics.queue_depth.labels(self.name).set(len(self.pending))
        self._wakeup.set()
        logits = await asyncio.gather(*(w.future for w in waiting))
        results = self.scores(np.stack(logits), raw_scores)
        return results[0] if single else results

    def start(self) -> None:
        self._wakeup = asyncio.Event()
        self._streams = asyncio.Semaphore(self._parallel)
        self._task = asyncio.get_running_loop().create_task(self._batches(), name=f"batcher-{self.name}")

    async def warm_up(self) -> None:
        """Run every (batch, tokens) bucket once on every stream at once, so that no client pays for a shape's
        first call (OpenVINO compiles kernels per shape, and each stream keeps its own), and one request
        through the whole path; then ready."""
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        sample = [("warm up", "warm up")] if self.predictor.is_pair else ["warm up"]
        encoded = self.predictor.encode(sample)  # (1, tokens)
        run = self.predictor.runtime.run
        for rows, tokens in self.buckets.shapes():
            cut = {key: values[:, :tokens] for key, values in encoded.items()}
            arrays = pad_to(cut, rows, tokens, self.predictor.pad_id, self.predictor.pad_left)
            await asyncio.gather(*(loop.run_in_executor(self.pool, run, arrays) for _ in range(self._parallel)))
            self.warmed += 1
        await loop.run_in_executor(self.pool, self._run, self.encode(sample, truncate=True))
        self.warm_up_seconds = time.perf_counter() - started
        self.ready = True

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await asyncio.gather(*self._running, return_exceptions=True)  # batches already running finish
        for waiting in self.pending:
            if not waiting.future.done():
                waiting.future.set_exception(RequestError("the server is shutting down", 503, "unavailable"))
        self.pending.clear()

    async def _batches(self) -> None:
        loop = asyncio.get_running_loop()
        wait = self.config.max_wait_ms / 1000
        while True:
            while not self.pending:
                self._wakeup.clear()
                await self._wakeup.wait()
            await self._streams.acquire()  # a stream free: the batch is formed now, of what waits now
            deadline = loop.time() + wait
            while len(self.pending) < self.config.max_batch_size and loop.time() < deadline:
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), deadline - loop.time())
                except TimeoutError:
                    break
            batch = self._take()
            self.metrics.queue_depth.labels(self.name).set(len(self.pending))
            if not batch:
                self._streams.release()
                continue
            task = loop.create_task(self._run_batch(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run_batch(self, batch: list[_Waiting]) -> None:
        """Run one batch in the pool and answer its inputs; its stream is free again after."""
        loop = asyncio.get_running_loop()
        try:
            started = time.perf_counter()
            for waiting in batch:
                self.metrics.queue_seconds.labels(self.name).observe(started - waiting.arrived)
            try:
                logits = await loop.run_in_executor(self.pool, self._run, [w.encoding for w in batch])
            except Exception as error:  # the model failed: every input of the batch gets the error
                for waiting in batch:
                    if not waiting.future.done():
                        waiting.future.set_exception(RequestError(f"inference failed: {error}", 500, "backend"))
                return
            self.metrics.inference_seconds.labels(self.name).observe(time.perf_counter() - started)
            self.metrics.batch_size.labels(self.name).observe(len(batch))
            rows, tokens = self.buckets.shape(len(batch), max(w.length for w in batch))
            self.metrics.batch_tokens.labels(self.name).observe(rows * tokens)
            self.metrics.padding_tokens.labels(self.name).inc(rows * tokens - sum(w.length for w in batch))
            self.metrics.inputs.labels(self.name).inc(len(batch))
            for waiting, row in zip(batch, logits, strict=True):
                if not waiting.future.done():  # a client that went away cancelled its future
                    waiting.future.set_result(row)
        finally:
            self._streams.release()

    def _take(self) -> list[_Waiting]:
        """The oldest waiting input and the inputs waiting with it that make the call doing the most work for
        its cost (:func:`~skeleton.deploy.buckets.cheapest_batch`), within both batch limits."""
        while self.pending and self.pending[0].future.done():
            self.pending.popleft()
        if not self.pending:
            return []
        head = self.pending[0]
        window = [w for w in list(self.pending)[: 4 * self.config.max_batch_size] if not w.future.done()]
        window.sort(key=lambda w: w.length)  # stable: among equal lengths the head, the oldest, comes first
        index = next(i for i, w in enumerate(window) if w is head)
        start, count = cheapest_batch(
            [w.length for w in window],
            index,
            self.buckets,
            self.call_cost,
            self.config.max_batch_size,
            self.config.max_batch_tokens,
        )
        chosen = window[start : start + count]
        taken = {id(w) for w in chosen}
        self.pending = deque(w for w in self.pending if id(w) not in taken)
        return chosen

    def _run(self, rows: list[dict[str, list[int]]]) -> np.ndarray:
        """Pad the rows into one batch and run it at its bucket's shape: (rows, labels) logits."""
        columns = {key: [row[key] for row in rows] for key in rows[0]}
        tokenizer = self.predictor.tokenizer
        arrays = finish_columns(columns, True, "np", self.predictor.pad_id, tokenizer.padding_side)  # (batch, tokens)
        return self.predictor.run(arrays)


def parse_model_arguments(arguments: list[str]) -> dict[str, Path]:
    """``DIR`` or ``NAME=DIR`` per model -> {name: directory}; a name defaults to the directory's."""
    models: dict[str, Path] = {}
    for argument in arguments:
        name, sep, path = argument.partition("=")
        directory = Path(path if sep else argument)
        if not sep:
            name = (directory.parent if directory.name == "onnx" else directory).resolve().name
        if not name or "/" in name:
            raise SkeletonError(f"bad model name in {argument!r}: use NAME=DIR with a name without '/'")
        if name in models:
            raise SkeletonError(f"two models named {name!r}: name them apart with NAME=DIR")
        models[name] = directory
    if not models:
        raise SkeletonError("no model to serve: pass one or more exported model directories")
    return models


class ModelServer:
    """Every served model, their thread pool and metrics; what the HTTP routes call.

    Models are loaded (manifests verified) when it is built, so a bad directory fails before the
    server listens; :meth:`start` starts the batchers and warms each model up in the background.
    """

    def __init__(self, models: dict[str, Path], config: ServeConfig | None = None):
        self.config = config or ServeConfig()
        self.metrics = Metrics()
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="infer")
        # spinning threads help one busy session and hurt when several share the cores
        spinning = self.config.spinning if self.config.spinning is not None else len(models) == 1
        self.models = {
            name: ServedModel(name, directory, self.config, self.pool, self.metrics, spinning)
            for name, directory in models.items()
        }
        self.draining = False  # set on SIGTERM: answer what was accepted, take nothing new
        self._warm_up: asyncio.Task | None = None
        self.warm_up_error: str | None = None

    def notes(self) -> list[str]:
        """What a user should know about the options as the models took them: ``--static-batch-one`` on a
        runtime that has no static graphs (only OpenVINO compiles them) does nothing for that model."""
        if not self.config.static_batch_one:
            return []
        return [
            f"--static-batch-one: model {name} runs on {model.predictor.runtime_name}, which has no static "
            "graphs (OpenVINO only); its batches of one run as without it"
            for name, model in self.models.items()
            if not model.predictor.runtime.static_lengths
        ]

    @property
    def busy(self) -> bool:
        """Inputs waiting in a queue or running."""
        return any(model.pending for model in self.models.values())

    def model(self, name: str | None) -> ServedModel:
        if name is None:
            if len(self.models) != 1:
                raise RequestError(
                    f"{len(self.models)} models are served: use /v1/models/NAME/predict with one of "
                    f"{', '.join(self.models)}",
                    404,
                    "not_found",
                )
            return next(iter(self.models.values()))
        if name not in self.models:
            raise RequestError(f"no model named {name!r}; served: {', '.join(self.models)}", 404, "not_found")
        return self.models[name]

    @property
    def ready(self) -> bool:
        return all(model.ready for model in self.models.values())

    @property
    def warming(self) -> str:
        """How far the warm-up has come: shapes run of all."""
        done = sum(model.warmed for model in self.models.values())
        total = sum(len(model.buckets.shapes()) for model in self.models.values())
        return f"{done} of {total} input shapes"

    async def start(self) -> None:
        """Start the batchers and, in the background, the warm-up: the server listens (and /health answers)
        at once, /ready turns 200 when every model has run every input shape."""
        for model in self.models.values():
            model.start()
        self._warm_up = asyncio.get_running_loop().create_task(self._warm_all(), name="warm-up")

    async def _warm_all(self) -> None:
        try:
            await asyncio.gather(*(model.warm_up() for model in self.models.values()))
        except Exception as error:  # a model that cannot run its shapes is never ready; /ready says why
            self.warm_up_error = f"the warm-up failed: {type(error).__name__}: {error}"

    async def stop(self) -> None:
        if self._warm_up is not None:
            self._warm_up.cancel()
            await asyncio.gather(self._warm_up, return_exceptions=True)
        await asyncio.gather(*(model.stop() for model in self.models.values()))
        self.pool.shutdown(wait=True)


__all__ = ["Metrics", "ModelServer", "RequestError", "ServedModel", "parse_model_arguments"]
