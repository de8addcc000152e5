"""Same pruned backbones timed against the unpruned one in two regimes: two graphs alternating (a search
trial's PlanTimer.measure) and five (the refit's PlanTimer.time), rounds alternating the regimes.

    python benchmarks/sweeps/timing_drift/regimes.py MODEL_DIR OUT.json   (MODEL_DIR: a fine-tuned teacher)
"""

import copy
import json
import sys
import tempfile
from pathlib import Path

from transformers import AutoModel

from skeleton.core.timing import time_alternating
from skeleton.deploy.registry import open_graph
from skeleton.deploy.runtimes import RuntimeOptions, synthetic_batch
from skeleton.measure.latency import build_graph
from skeleton.method.pruning import apply_pruning, full_plan

source = sys.argv[1]
base = AutoModel.from_pretrained(source).eval()


def pruned(heads, widths):
    model = copy.deepcopy(base)
    plan = full_plan(model)
    plan.head_keep_indices = [list(range(h)) for h in heads]
    plan.keep_indices = [list(range(w)) for w in widths]
    kept = [i for i, h in enumerate(heads) if h > 0]
    if len(kept) < len(heads):
        plan.kept_layers = kept
    return apply_pruning(model, plan)


plans = {
    "thin": ([1] * 6, [8] * 6),
    "3layers": ([3, 3, 3, 0, 0, 0], [1456, 1296, 1200, 0, 0, 0]),
    "4layers": ([12, 12, 12, 12, 0, 0], [1512, 1472, 1344, 1120, 0, 0]),
    "mid": ([4, 3, 3, 1, 4, 1], [1472, 1312, 1000, 936, 752, 176]),
}
scratch = Path(tempfile.mkdtemp())
options = RuntimeOptions(threads=None, spinning=False)
graphs = {"reference": open_graph("onnx-int8", build_graph(base, scratch, "ref"), options)}
for name, (h, w) in plans.items():
    graphs[name] = open_graph("onnx-int8", build_graph(pruned(h, w), scratch, name), options)
shapes = [(1, 16), (1, 64), (8, 16), (32, 128)]
result = {}
for _round in range(3):
    for regime in ("two", "five"):
        for b, t in shapes:
            enc = synthetic_batch(b, t, base.config.vocab_size, with_token_types=False)
            names = ["reference", "thin"] if regime == "two" else list(graphs)
            calls = {n: (lambda r=graphs[n], e=enc: r.run(e)) for n in names}
            timings = time_alternating(calls, repeats=5, warmup=1)
            key = f"{regime} {b}x{t}"
            result.setdefault(key, []).append(
                {
                    "reference_ms": timings["reference"].median_ms,
                    "thin_ms": timings["thin"].median_ms,
                    "speedup": timings["reference"].median_ms / timings["thin"].median_ms,
                }
            )
for key, rows in result.items():
    print(key, " | ".join(f"{r['speedup']:.2f}x ({r['reference_ms']:.2f}/{r['thin_ms']:.2f})" for r in rows))
json.dump(result, open(sys.argv[2], "w"), indent=1)
