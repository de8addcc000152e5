"""Whole pruned models timed on the latency table's runtime: what the search's predictions are refitted
to before it starts, and what each of its trials records beside its prediction.

The latency table times one-layer graphs; a whole model also pays for what only whole models show (how
the runtime schedules many layers, what a layer costs whatever is left in it), and on fast runtimes that
is a large part of batch-1 latency. So the compress run exports a few pruned backbones (and the unpruned
one) the way a shipped model is made on the table's runtime, times them with calls alternating in one
process at every shape of the grid, and refits the cost model to them
(:meth:`~skeleton.measure.latency.CostModel.refitted`); every search trial is then timed the same way,
so the report holds predicted and measured speed-ups side by side.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from torch import nn

from skeleton.core.progress import SILENT, Reporter
from skeleton.core.timing import time_alternating
from skeleton.deploy.registry import open_graph
from skeleton.deploy.runtimes import RuntimeOptions, synthetic_batch
from skeleton.measure.latency import CostModel, build_graph, shape_key

REFERENCE = "reference"  # the unpruned backbone's name among the timed models


class PlanTimer:
    """Times pruned backbones against the unpruned one on ``costs``' table runtime.

    Args:
        costs: the cost model whose shapes and runtime the timings are for.
        reference: the unpruned backbone (its graph is built once, on first use).
        repeats: alternated rounds per shape (the median is kept).
        threads: runtime threads (default: one per core, as the latency table).
    """

    def __init__(self, costs: CostModel, reference: nn.Module, repeats: int = 5, threads: int | None = None):
        self.costs, self.reference, self.repeats, self.threads = costs, reference, repeats, threads
        self.runtime = costs.table.key["runtime"]
        self._scratch = tempfile.TemporaryDirectory(prefix="skeleton-plan-latency-")
        self._reference_runtime = None
        self._built = 0

    def close(self) -> None:
        self._reference_runtime = None
        self._scratch.cleanup()

    def _open(self, model: nn.Module):
        self._built += 1
        graph = build_graph(model, Path(self._scratch.name), f"model-{self._built}", self.runtime)
        return open_graph(self.runtime, graph, RuntimeOptions(threads=self.threads, spinning=False))

    def time(self, backbones: dict[str, nn.Module]) -> dict[str, dict[str, float]]:
        """Median milliseconds per table shape key of the unpruned backbone (under :data:`REFERENCE`, at
        both prompt lengths) and of each of ``backbones`` (at the Skeleton model's), calls alternating."""
        if self._reference_runtime is None:
            self._reference_runtime = self._open(self.reference)
        runtimes = {REFERENCE: self._reference_runtime, **{name: self._open(m) for name, m in backbones.items()}}
        costs = self.costs
        skeleton_keys = {costs.shape_in_table(b, t, costs.prompt_tokens) for b, t in costs.input_shapes}
        vocab = self.reference.config.vocab_size
        timings: dict[str, dict[str, float]] = {name: {} for name in runtimes}
        for sequences, tokens in costs.table_shapes():
            key = shape_key(sequences, tokens)
            encoded = synthetic_batch(sequences, tokens, vocab, with_token_types=False)
            timed = {n: r for n, r in runtimes.items() if n == REFERENCE or key in skeleton_keys}
            calls = {n: (lambda r=r, e=encoded: r.run(e)) for n, r in timed.items()}
            for name, timing in time_alternating(calls, repeats=self.repeats, warmup=1).items():
                timings[name][key] = timing.median_ms
        return timings

    def speedups(self, timings: dict[str, dict[str, float]], name: str) -> dict[str, float]:
        """Measured speed-up of ``name`` over the unpruned backbone per input shape (``"1x64"``)."""
        costs, reference = self.costs, timings[REFERENCE]
        speedups = {}
        for b, t in costs.input_shapes:
            unpruned = reference[costs.shape_in_table(b, t, costs.reference_prompt_tokens)]
            speedups[shape_key(b, t)] = unpruned / timings[name][costs.shape_in_table(b, t, costs.prompt_tokens)]
        return speedups

    def measure(self, backbone: nn.Module, heads: list[int], widths: list[int]) -> dict:
        """A pruned backbone timed against the unpruned one: measured and predicted (by ``costs``, refitted
        or not) speed-up per input shape, the prediction's relative error, and the slowest shapes."""
        timings = self.time({"pruned": backbone})
        return compare(self.speedups(timings, "pruned"), self.costs.speedups(heads, widths))


def compare(measured: dict[str, float], predicted: dict[str, float]) -> dict:
    """Measured beside predicted speed-ups per shape: the prediction's relative error (predicted over
    measured, less 1) and the slowest shape of each."""
    return {
        "measured_speedup": measured,
        "predicted_speedup": predicted,
        "prediction_error": {shape: predicted[shape] / measured[shape] - 1.0 for shape in measured},
        "slowest_shape": min(measured, key=measured.get),
        "predicted_slowest_shape": min(predicted, key=predicted.get),
    }


PROBE_FRACTIONS = (0.3, 0.6)  # the predicted latency fractions whose plans are timed before the search


def refit_costs(timer: PlanTimer, planner, classifier, reporter: Reporter = SILENT, fractions=PROBE_FRACTIONS):
    """Time the plans ``planner`` makes at ``fractions`` (with and without whole layers, when layers may
    go) beside the unpruned backbone, and refit the cost model to them.

    Returns:
        (the refitted cost model, the record: every timed plan with its measured speed-ups beside the
        table's prediction and the refit's, and the measurements the refit rests on, ``points``, from
        which :meth:`CostModel.refitted` rebuilds it on ``--resume``).
    """
    costs = timer.costs
    layer_options = (True, False) if "layers" in planner.config.targets else (False,)
    backbones, kept, seen = {}, {}, set()
    for fraction in fractions:
        for layers in layer_options:
            pruned, plan = planner.prune(classifier, fraction, shorten=False, prune_layers=layers)
            heads, widths = plan.heads_per_layer(costs.num_heads), plan.kept_sizes
            if (tuple(heads), tuple(widths)) in seen:
                continue
            seen.add((tuple(heads), tuple(widths)))
            name = f"fraction {fraction:.2f}" + (", layers removable" if layers else "")
            backbones[name], kept[name] = pruned.backbone, (heads, widths)
    reporter.message(
        f"latency refit: timing {len(backbones)} pruned backbones and the unpruned one on {timer.runtime} "
        f"at {len(costs.table_shapes())} shapes"
    )
    timings = timer.time(backbones)
    points = [[costs.num_heads, costs.widths, timings[REFERENCE]]]
    points += [[heads, widths, timings[name]] for name, (heads, widths) in kept.items()]
    refitted = costs.refitted(points)
    plans = {}
    for name, (heads, widths) in kept.items():
        measured = timer.speedups(timings, name)
        plans[name] = {
            "heads": heads,
            "widths": widths,
            "table": compare(measured, costs.speedups(heads, widths)),
            "refitted": compare(measured, refitted.speedups(heads, widths)),
        }
    return refitted, {"runtime": timer.runtime, "plans": plans, "refit": refitted.refit, "points": points}


def largest_error(record: dict, kind: str = "refitted") -> float:
    """The largest relative prediction error over every timed plan and shape of a refit record."""
    errors = [abs(e) for plan in record["plans"].values() for e in plan[kind]["prediction_error"].values()]
    return max(errors, default=0.0)


def shipped_timing(search) -> dict:
    """What was measured of the plan that shipped (its search trial's timing), or nothing when the model
    shipped whole or its trial was not timed."""
    trial = next((t for t in search.trials if abs(t.value - search.value) < 1e-9), None)
    if trial is None or "measured_speedup" not in trial.details:
        return {}
    details = trial.details
    slowest = details["slowest_shape"]
    return {
        "measured_speedup": details["measured_speedup"],
        "prediction_error": details["prediction_error"],
        "slowest_shape": slowest,
        "measured_slowest_speedup": details["measured_speedup"][slowest],
    }
