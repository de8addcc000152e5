"""A per-layer latency table: what one encoder layer costs on this machine against its kept heads and
FFN width, on the runtime the model will most likely ship on (onnxruntime's or OpenVINO's int8 graph, or
OpenVINO's bf16 graph on CPUs with native bf16: whichever runs the backbone's layers fastest here), as
Kwon et al. (2022) cost heads and neurons before choosing which to remove.

The table is measured once per machine, runtime and backbone shape and cached. ``auto`` picks the
runtime first: a two-layer model of the full shape, built for each candidate runtime, is timed on all
of them with calls alternating, and the fastest is the table's. One-layer models of the backbone's
family are built with random weights at a grid of (heads, FFN width), exported (and quantised) exactly
like a shipped model on that runtime (onnxruntime: per-channel dynamic int8 on the fused graph;
OpenVINO: NNCF with the transformer preset, or the fp32 graph under the bf16 hint), and timed side by
side in one process (calls alternating, spinning off) at every (batch, tokens) shape, the soft
prompt's tokens included. A two-layer model gives the cost outside the layers (embeddings, input
processing), so

    latency(model) = outside + sum over layers of layer(heads, width)

with ``layer`` interpolated bilinearly on the grid. Ratios of two such predictions are the
predicted speed-ups the search aims at. One-layer graphs miss what only whole models show (how the
runtime schedules many layers, what a layer costs whatever is left in it), so the compress run times
real pruned models too (:mod:`skeleton.measure.plan_latency`) and refits, per shape, a fixed cost per
model, per kept layer, per head and per neuron,

    latency(model) = outside + sum over kept layers of (per_layer + per_head x heads + per_neuron x width)

to what it measured (:meth:`CostModel.refitted`; the table's least-squares plane is the prior, and no
cost may go below zero); ``skeleton bench`` measures the shipped model.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import nnls
from torch import nn

from skeleton.core.architectures import ffn_layers, from_config, intermediate_size, num_heads, ort_model_type
from skeleton.core.errors import SkeletonError
from skeleton.core.machine import cpu_name, has_vnni, native_bf16
from skeleton.core.progress import SILENT, Reporter
from skeleton.core.timing import time_alternating
from skeleton.deploy.export import optimize_graph
from skeleton.deploy.openvino import nncf_quantize
from skeleton.deploy.quantization import Int8Method, quantize
from skeleton.deploy.registry import open_graph
from skeleton.deploy.runtimes import OpenVinoRuntime, RuntimeOptions, synthetic_batch
from skeleton.method.pruning import apply_pruning, full_plan

TABLE_FORMAT = "skeleton-latency/2"
# the runtimes a table can be measured on: the int8 graphs, and OpenVINO's bf16 where the CPU has bf16 arithmetic
TABLE_RUNTIMES = ("onnx-int8", "openvino-int8", "openvino-bf16")
# the refit's pull toward the table (see _fit_shape): a relative error of 1% weighs as much as moving a
# parameter by 10% of what it contributes to the slowest timed model
REFIT_RIDGE = 1e-2
MEASURE_ATTEMPTS = 3  # measurements of one shape before a table whose layers keep costing nothing is refused


def shape_key(batch: int, tokens: int) -> str:
    return f"{batch}x{tokens}"


def cache_dir() -> Path:
    """Where tables are kept: ``$SKELETON_CACHE/latency`` or ``~/.cache/skeleton/latency``."""
    root = os.environ.get("SKELETON_CACHE") or Path.home() / ".cache" / "skeleton"
    return Path(root) / "latency"


def _interpolate(grid: list[int], value: float) -> tuple[int, int, float]:
    """(lower index, upper index, weight of upper) of ``value`` on an ascending grid, extrapolating
    linearly past either end."""
    if len(grid) == 1:
        return 0, 0, 0.0
    upper = int(np.searchsorted(grid, value))
    upper = min(max(upper, 1), len(grid) - 1)
    lower = upper - 1
    return lower, upper, (value - grid[lower]) / (grid[upper] - grid[lower])


@dataclass
class LatencyTable:
    """Measured per-layer latency against kept heads and FFN width.

    Attributes:
        key: what the table was measured for (CPU, threads, runtime, backbone shape, versions).
        shapes: (batch, tokens) pairs, tokens counting the soft prompt.
        heads: ascending grid of kept heads.
        widths: ascending grid of kept FFN widths.
        layer_ms: per shape key, [heads][widths] median milliseconds of one layer.
        outside_ms: per shape key, milliseconds outside the layers.
        seconds: how long measuring took.
    """

    key: dict
    shapes: list[list[int]]
    heads: list[int]
    widths: list[int]
    layer_ms: dict[str, list[list[float]]]
    outside_ms: dict[str, float]
    seconds: float = 0.0

    def layer(self, shape: str, heads: int, width: int) -> float:
        """Milliseconds of one layer keeping ``heads`` heads and ``width`` FFN neurons (bilinear)."""
        table = self.layer_ms[shape]
        h0, h1, wh = _interpolate(self.heads, heads)
        f0, f1, wf = _interpolate(self.widths, width)
        low = table[h0][f0] * (1 - wf) + table[h0][f1] * wf
        high = table[h1][f0] * (1 - wf) + table[h1][f1] * wf
        return max(0.0, low * (1 - wh) + high * wh)

    def model(self, shape: str, heads: list[int], widths: list[int]) -> float:
        """Predicted milliseconds of a whole model with these per-layer heads and widths (a layer with
        0 heads is a removed layer and costs nothing)."""
        layers = zip(heads, widths, strict=True)
        return self.outside_ms[shape] + sum(self.layer(shape, h, w) for h, w in layers if h > 0)

    def plane(self, shape: str) -> tuple[float, float, float]:
        """(milliseconds of a layer whatever it keeps, per head, per FFN neuron): a least-squares plane
        through the grid (slopes at least 1e-9: a unit never costs nothing)."""
        rows = [(1.0, h, w) for h in self.heads for w in self.widths]
        values = [v for row in self.layer_ms[shape] for v in row]
        solution, *_ = np.linalg.lstsq(np.asarray(rows), np.asarray(values), rcond=None)
        return float(max(solution[0], 0.0)), float(max(solution[1], 1e-9)), float(max(solution[2], 1e-9))

    def slopes(self, shape: str) -> tuple[float, float]:
        """(milliseconds per head, per FFN neuron) of one layer: the slopes of :meth:`plane`."""
        return self.plane(shape)[1:]

    def to_dict(self) -> dict:
        return {"format": TABLE_FORMAT, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict) -> LatencyTable:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass
class CostModel:
    """Predicted latency of a Skeleton model against the prompt-tuned model, at every shape of a table.

    Attributes:
        table: the measured latency table.
        input_shapes: (batch, input tokens) pairs the prediction is for.
        reference_prompt_tokens: soft-prompt length of the prompt-tuned model.
        prompt_tokens: soft-prompt length of the Skeleton model (shorter after condensation).
        num_heads, widths: the unpruned per-layer heads and FFN widths.
        sequences_per_input: sequences the backbone runs per input (a bi-encoder's pair: 2), so an
            input shape (batch, tokens) is timed as (sequences_per_input x batch, tokens + prompt).
        refit: per table shape, ``[outside, per kept layer, per head, per FFN neuron]`` milliseconds fitted
            to whole pruned models timed on the table's runtime (:meth:`refitted`); ``None``: the table as
            measured (bilinear per layer).
    """

    table: LatencyTable
    input_shapes: list[tuple[int, int]]
    reference_prompt_tokens: int
    prompt_tokens: int
    num_heads: list[int]
    widths: list[int]
    sequences_per_input: int = 1
    refit: dict[str, list[float]] | None = None

    def shape_in_table(self, batch: int, tokens: int, prompt: int) -> str:
        """The table shape an input shape runs at: sequences x (tokens + soft prompt)."""
        return shape_key(batch * self.sequences_per_input, tokens + prompt)

    def _linear(self, key: str) -> list[float] | None:
        return None if self.refit is None else self.refit.get(key)

    def layer_ms(self, key: str, heads: int, width: int) -> float:
        """Milliseconds of one kept layer at table shape ``key`` (refitted when measured)."""
        linear = self._linear(key)
        if linear is None:
            return self.table.layer(key, heads, width)
        _, per_layer, per_head, per_neuron = linear
        return per_layer + per_head * heads + per_neuron * width

    def model_ms(self, key: str, heads: list[int], widths: list[int]) -> float:
        """Predicted milliseconds of a whole model at table shape ``key`` (a layer with 0 heads is removed
        and costs nothing)."""
        linear = self._linear(key)
        outside = self.table.outside_ms[key] if linear is None else linear[0]
        layers = zip(heads, widths, strict=True)
        return outside + sum(self.layer_ms(key, h, w) for h, w in layers if h > 0)

    def reference_ms(self) -> dict[str, float]:
        prompt = self.reference_prompt_tokens
        return {
            shape_key(b, t): self.model_ms(self.shape_in_table(b, t, prompt), self.num_heads, self.widths)
            for b, t in self.input_shapes
        }

    def predicted_ms(self, heads: list[int], widths: list[int]) -> dict[str, float]:
        """Predicted milliseconds of a Skeleton model per input shape."""
        prompt = self.prompt_tokens
        return {
            shape_key(b, t): self.model_ms(self.shape_in_table(b, t, prompt), heads, widths)
            for b, t in self.input_shapes
        }

    def speedups(self, heads: list[int], widths: list[int]) -> dict[str, float]:
        """Predicted speed-up per input shape (``"1x64"``: prompt-tuned ms / Skeleton ms)."""
        reference = self.reference_ms()
        return {shape: reference[shape] / ms for shape, ms in self.predicted_ms(heads, widths).items()}

    def fraction(self, heads: list[int], widths: list[int]) -> float:
        """Predicted latency over the prompt-tuned model's at the slowest shape, where the speed-up is least
        (the objective: the target must hold at every shape)."""
        return max(1.0 / s for s in self.speedups(heads, widths).values())

    def slowest_shape(self, heads: list[int], widths: list[int]) -> str:
        """The input shape whose predicted speed-up is least: the one :meth:`fraction` reports."""
        speedups = self.speedups(heads, widths)
        return min(speedups, key=speedups.get)

    def layer_shares(self) -> list[float]:
        """Each whole unpruned layer as a share of the prompt-tuned model's latency, averaged over shapes."""
        reference = self.reference_ms()
        shares = []
        for heads, width in zip(self.num_heads, self.widths, strict=True):
            per_shape = [
                self.layer_ms(self.shape_in_table(b, t, self.prompt_tokens), heads, width) / reference[shape_key(b, t)]
                for b, t in self.input_shapes
            ]
            shares.append(float(np.mean(per_shape)))
        return shares

    def unit_costs(self) -> tuple[float, float]:
        """(one head, one FFN neuron) as a share of the prompt-tuned model's latency, averaged over shapes:
        the common currency in which heads and neurons are ranked."""
        reference = self.reference_ms()
        per_head, per_neuron = [], []
        for b, t in self.input_shapes:
            key = self.shape_in_table(b, t, self.prompt_tokens)
            linear = self._linear(key)
            head_ms, neuron_ms = self.table.slopes(key) if linear is None else (max(v, 1e-9) for v in linear[2:])
            per_head.append(head_ms / reference[shape_key(b, t)])
            per_neuron.append(neuron_ms / reference[shape_key(b, t)])
        return float(np.mean(per_head)), float(np.mean(per_neuron))

    def table_shapes(self) -> list[tuple[int, int]]:
        """Every (sequences, tokens) shape the table is read at, for both prompt lengths."""
        prompts = (self.reference_prompt_tokens, self.prompt_tokens)
        return shapes_in_table(self.input_shapes, prompts, self.sequences_per_input)

    def refitted(self, measured: list[tuple[list[int], list[int], dict[str, float]]], ridge: float = REFIT_RIDGE):
        """This cost model refitted to whole models timed on the table's runtime.

        Args:
            measured: (per-layer heads, per-layer widths, milliseconds per table shape key) of each
                timed model, the unpruned one included (a layer with 0 heads is removed).
            ridge: pull toward the table's plane (see :func:`_fit_shape`): small, so that the
                measurements decide wherever they vary.

        Returns:
            A copy whose ``refit`` holds, per table shape, the milliseconds outside the layers, of each kept
            layer whatever is left in it, of each head and of each FFN neuron, fitted to the timings.
        """
        refit = {}
        for key in self.table.outside_ms:
            rows = [(heads, widths, ms[key]) for heads, widths, ms in measured if key in ms]
            if rows:
                refit[key] = _fit_shape(self.table, key, rows, ridge)
        return replace(self, refit=refit)


def shapes_in_table(input_shapes, prompt_lengths, sequences_per_input: int = 1) -> list[tuple[int, int]]:
    """The (sequences, tokens) shapes a table is measured and read at: each input (batch, tokens) at each
    soft-prompt length, a bi-encoder's batch counting two sequences per input."""
    return sorted({(b * sequences_per_input, t + p) for b, t in input_shapes for p in set(prompt_lengths)})


def _fit_shape(table: LatencyTable, key: str, rows: list, ridge: float) -> list[float]:
    """``[outside, per kept layer, per head, per neuron]`` milliseconds at one table shape: non-negative
    least squares of the relative error ``(outside + per_layer x layers + per_head x heads + per_neuron x
    neurons) / measured - 1`` over the timed models, with a ridge toward the table (its outside cost and
    least-squares plane). Each parameter is scaled by its share of the slowest timed model, so the ridge
    weighs them alike; non-negative, because removing a unit never makes a model slower."""
    features = []
    for heads, widths, ms in rows:
        kept = [(h, w) for h, w in zip(heads, widths, strict=True) if h > 0]
        features.append([1.0, len(kept), sum(h for h, _ in kept), sum(w for _, w in kept), ms])
    slowest = max(features, key=lambda f: f[-1])
    reference = slowest[-1]
    # a parameter's scale: what it contributes to the slowest model (at least a millionth of it)
    scales = np.asarray([max(count, 1.0) for count in slowest[:4]])
    scales = reference / scales
    prior = np.asarray([table.outside_ms[key], *table.plane(key)]) / scales
    design = np.asarray([[v * s / f[-1] for v, s in zip(f[:4], scales, strict=True)] for f in features])
    design = np.vstack([design, np.sqrt(ridge) * np.eye(4)])
    target = np.concatenate([np.ones(len(features)), np.sqrt(ridge) * prior])
    solution, _ = nnls(design, target)
    return [float(v) for v in solution * scales]


def default_grid(full: int, points: tuple[float, ...]) -> list[int]:
    return sorted({max(1, int(round(full * p))) for p in points})


class _HiddenStates(nn.Module):
    """A bare encoder whose last hidden state is exported under the name ``logits`` (what
    :class:`~skeleton.deploy.runtimes.OnnxRuntime` fetches)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask)[0]


def _layer_model(config, layers: int, heads: int, width: int) -> nn.Module:
    config = copy.deepcopy(config)
    config.num_hidden_layers = layers
    config.vocab_size = 1024  # the embedding lookup costs the same whatever the vocabulary size
    torch.manual_seed(0)
    model = from_config(config, attn_implementation="eager").eval()
    plan = full_plan(model)
    plan.head_keep_indices = [list(range(heads))] * layers
    plan.keep_indices = [list(range(width))] * layers
    return apply_pruning(model, plan)


def build_graph(model: nn.Module, directory: Path, name: str, runtime: str = "onnx-int8") -> Path:
    """Export ``model`` (a bare encoder) and make the graph a shipped model runs on ``runtime``:
    onnxruntime's per-channel dynamic int8 on the fused graph (7-bit weights without VNNI), NNCF's
    transformer preset for OpenVINO's int8 (calibrated on random token ids, without bias correction), or the
    fp32 graph itself for OpenVINO's bf16 (the precision is a compile hint)."""
    fp32 = export_timing_graph(model, directory, name)
    if runtime == "openvino-bf16":
        return fp32
    if runtime == "openvino-int8":
        target = directory / f"{name}-int8.xml"
        # no bias correction: only a bias's value differs, and this graph is only timed
        # (benchmarks/sweeps/timing_graph_quantization/)
        nncf_quantize("default", fp32, target, timing_calibration(), bias_correction=False)
        return target
    fused, int8 = (directory / f"{name}-{kind}.onnx" for kind in ("fused", "int8"))
    optimize_graph(fp32, fused, ort_model_type(model.config))
    quantize(Int8Method("dynamic-fused", per_channel=True, reduce_range=not has_vnni()), fp32, fused, int8)
    return int8


def timing_calibration() -> list[dict[str, np.ndarray]]:
    """The batches NNCF calibrates a timing graph on: four of 4 x 32 random token ids (its speed does not depend
    on what they say)."""
    return [synthetic_batch(4, 32, 1024, with_token_types=False, seed=s) for s in range(4)]


def export_timing_graph(model: nn.Module, directory: Path, name: str) -> Path:
    """``model`` (a bare encoder) exported to ONNX in ``directory`` (fp32, dynamic batch and tokens): the graph a
    timing graph of any runtime starts from."""
    fp32 = directory / f"{name}-fp32.onnx"
    ids = torch.ones(2, 8, dtype=torch.long)
    # the tracer's warnings are about shapes fixed at export, which this timing graph does not rely on
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _HiddenStates(model),
            (ids, torch.ones_like(ids)),
            str(fp32),
            input_names=["input_ids", "attention_mask"],
            output_names=["logits"],
            dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}},
            opset_version=17,
            dynamo=False,
        )
    return fp32


def candidate_runtimes() -> tuple[str, ...]:
    """The table runtimes worth timing here: onnxruntime's int8, and with OpenVINO its int8 and, on CPUs
    with bf16 arithmetic (AVX-512 bf16, AMX), its bf16."""
    if not OpenVinoRuntime.available():
        return ("onnx-int8",)
    return TABLE_RUNTIMES if native_bf16() else ("onnx-int8", "openvino-int8")


def table_runtime(config, shapes: list[tuple[int, int]], threads: int | None, repeats: int = 7) -> str:
    """The table runtime that runs the full backbone's layers fastest here (geometric mean over
    ``shapes``): the runtime the export will most likely ship, so the table is measured on it."""
    candidates = candidate_runtimes()
    if len(candidates) == 1:
        return candidates[0]
    with tempfile.TemporaryDirectory() as scratch:
        full = _layer_model(config, 2, num_heads(config), intermediate_size(config))
        options = RuntimeOptions(threads=threads, spinning=False)
        runtimes = {r: open_graph(r, build_graph(full, Path(scratch), r, r), options) for r in candidates}
        logs = {r: 0.0 for r in candidates}
        for batch, tokens in shapes:
            encoded = synthetic_batch(batch, tokens, 1024, with_token_types=False)
            calls = {name: (lambda r=runtime, e=encoded: r.run(e)) for name, runtime in runtimes.items()}
            for name, timing in time_alternating(calls, repeats=repeats, warmup=1).items():
                logs[name] += float(np.log(timing.median_ms))
    return min(logs, key=logs.get)


def table_key(config, shapes, heads: list[int], widths: list[int], threads: int | None, runtime: str) -> dict:
    import onnxruntime

    version = onnxruntime.__version__
    if runtime.startswith("openvino"):
        import openvino

        version = openvino.__version__
    return {
        "format": TABLE_FORMAT,
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "threads": threads,
        "runtime": runtime,
        "runtime_version": version,
        "model_type": config.model_type,
        "hidden_size": config.hidden_size,
        "num_heads": num_heads(config),
        "shapes": [list(s) for s in shapes],
        "heads": heads,
        "widths": widths,
    }


def _measure_layers(config, shapes, heads: list[int], widths: list[int], threads, repeats: int, runtime: str, reporter):
    """Per shape: one layer's latency at every (heads, width) of the grid, and the time spent
    outside the layers (embeddings, pooling): twice the one-layer graph's time less the two-layer graph's."""
    full_heads, full_width = num_heads(config), intermediate_size(config)
    grid = [(h, w) for h in heads for w in widths]
    reporter.message(
        f"latency table: measuring {len(grid) + 1} one-layer {runtime} graphs at {len(shapes)} shapes (once)"
    )
    with tempfile.TemporaryDirectory() as scratch:
        graphs = {}
        for h, w in grid:
            graphs[(1, h, w)] = build_graph(_layer_model(config, 1, h, w), Path(scratch), f"1-{h}-{w}", runtime)
        graphs[(2, full_heads, full_width)] = build_graph(
            _layer_model(config, 2, full_heads, full_width), Path(scratch), "2-full", runtime
        )
        options = RuntimeOptions(threads=threads, spinning=False)
        runtimes = {name: open_graph(runtime, p, options) for name, p in graphs.items()}
        layer_ms, outside_ms = {}, {}
        for batch, tokens in shapes:
            encoded = synthetic_batch(batch, tokens, 1024, with_token_types=False)
            calls = {name: (lambda r=runtime, e=encoded: r.run(e)) for name, runtime in runtimes.items()}
            key = shape_key(batch, tokens)
            for attempt in range(1, MEASURE_ATTEMPTS + 1):
                medians = {n: t.median_ms for n, t in time_alternating(calls, repeats=repeats, warmup=1).items()}
                one, two = medians[(1, full_heads, full_width)], medians[(2, full_heads, full_width)]
                outside = max(0.0, 2 * one - two)
                layers = [[medians[(1, h, w)] - outside for w in widths] for h in heads]
                if min(min(row) for row in layers) > 0:
                    break
                # other work disturbed the timings: a difference of medians is as steady as the machine
                reporter.message(f"latency table: a layer timed at no cost at {key} (try {attempt}); measuring again")
            else:
                raise SkeletonError(
                    f"latency table: {MEASURE_ATTEMPTS} measurements at {key} gave a layer no cost; other work is "
                    "disturbing the timings: run again on a quieter machine"
                )
            outside_ms[key], layer_ms[key] = outside, layers
        del runtimes
    return layer_ms, outside_ms


def measure_table(
    config,
    shapes: list[tuple[int, int]],
    heads: list[int] | None = None,
    widths: list[int] | None = None,
    threads: int | None = None,
    repeats: int = 7,
    reporter: Reporter = SILENT,
    use_cache: bool = True,
    runtime: str = "auto",
) -> LatencyTable:
    """The latency table of ``config``'s layer shape at ``shapes``, from the cache or measured now.

    Args:
        config: the (unpruned) backbone's Hugging Face config.
        shapes: (batch, total tokens) pairs, soft prompt included.
        heads, widths: grids of kept heads and FFN widths (default: 5 and 6 points up to the full size).
        threads: onnxruntime intra-op threads (default: one per core).
        repeats: alternated rounds per shape.
        runtime: one of ``TABLE_RUNTIMES`` or ``auto`` (the fastest here, see ``table_runtime``).
    """
    if runtime not in (*TABLE_RUNTIMES, "auto"):
        raise SkeletonError(f"a latency table runs on {', '.join(TABLE_RUNTIMES)} or auto, not {runtime!r}")
    full_heads = num_heads(config)
    full_width = intermediate_size(config)
    heads = heads or default_grid(full_heads, (1 / full_heads, 0.25, 0.5, 0.75, 1.0))
    widths = widths or default_grid(full_width, (1 / 16, 1 / 8, 0.25, 0.5, 0.75, 1.0))
    shapes = sorted({(int(b), int(t)) for b, t in shapes})
    if runtime == "auto":
        runtime = _cached_choice(config, shapes, threads, use_cache)
    key = table_key(config, shapes, heads, widths, threads, runtime)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir() / f"{digest}.json"
    if use_cache and path.is_file():
        table = LatencyTable.from_dict(json.loads(path.read_text()))
        if table.key == key:
            return table
    started = time.perf_counter()
    layer_ms, outside_ms = _measure_layers(config, shapes, heads, widths, threads, repeats, runtime, reporter)
    table = LatencyTable(key, [list(s) for s in shapes], heads, widths, layer_ms, outside_ms)
    table.seconds = time.perf_counter() - started
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(table.to_dict(), indent=1))
        temporary.replace(path)
    return table


def _cached_choice(config, shapes, threads, use_cache: bool) -> str:
    """``table_runtime``, remembered per machine, thread count, backbone shape and library versions."""
    key = table_key(config, shapes, [], [], threads, "auto")
    key["candidates"] = list(candidate_runtimes())
    if OpenVinoRuntime.available():
        import openvino

        key["openvino"] = openvino.__version__
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir() / f"runtime-{digest}.json"
    if use_cache and path.is_file():
        return json.loads(path.read_text())["runtime"]
    runtime = table_runtime(config, shapes, threads)
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"key": key, "runtime": runtime}))
    return runtime


def cost_model(
    backbone: nn.Module,
    input_shapes: list[tuple[int, int]],
    reference_prompt_tokens: int,
    prompt_tokens: int,
    threads: int | None = None,
    reporter: Reporter = SILENT,
    sequences_per_input: int = 1,
    **grid,
) -> CostModel:
    """The cost model of an unpruned ``backbone`` for Skeleton models with ``prompt_tokens`` soft tokens
    (``sequences_per_input``: 2 for a bi-encoder, whose every input is two sentences)."""
    layers = ffn_layers(backbone)
    if any(layer.num_heads != num_heads(backbone.config) for layer in layers):
        raise SkeletonError("the cost model needs the unpruned backbone")
    shapes = shapes_in_table(input_shapes, (reference_prompt_tokens, prompt_tokens), sequences_per_input)
    table = measure_table(backbone.config, shapes, threads=threads, reporter=reporter, **grid)
    return CostModel(
        table,
        [tuple(s) for s in input_shapes],
        reference_prompt_tokens,
        prompt_tokens,
        [layer.num_heads for layer in layers],
        [layer.ffn_in.out_features for layer in layers],
        sequences_per_input,
    )
