"""How much a measured speed-up at small shapes moves between measurements: medians of 5 alternated calls
(PlanTimer's repeats) against medians of as many as 0.5 s allows, ten measurements each, interleaved.

    python benchmarks/sweeps/timing_drift/repeats.py MODEL_DIR OUT.json
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

base = AutoModel.from_pretrained(sys.argv[1]).eval()
model = copy.deepcopy(base)
plan = full_plan(model)
plan.head_keep_indices = [[0]] * 6
plan.keep_indices = [list(range(8))] * 6
thin = apply_pruning(model, plan)
scratch = Path(tempfile.mkdtemp())
options = RuntimeOptions(threads=None, spinning=False)
graphs = {
    "reference": open_graph("onnx-int8", build_graph(base, scratch, "ref"), options),
    "thin": open_graph("onnx-int8", build_graph(thin, scratch, "thin"), options),
}
result = {}
for b, t in [(1, 16), (1, 64), (8, 16)]:
    enc = synthetic_batch(b, t, base.config.vocab_size, with_token_types=False)
    calls = {n: (lambda r=r, e=enc: r.run(e)) for n, r in graphs.items()}
    for _attempt in range(10):
        for label, kwargs in (
            ("5 repeats", dict(repeats=5, warmup=1)),
            ("0.5 s", dict(repeats=500, warmup=1, max_seconds=0.5, min_repeats=5)),
        ):
            timings = time_alternating(calls, **kwargs)
            result.setdefault(f"{b}x{t}", {}).setdefault(label, []).append(
                (timings["reference"].median_ms / timings["thin"].median_ms, timings["thin"].repeats)
            )
for shape, by in result.items():
    for label, values in by.items():
        s = sorted(v for v, _ in values)
        print(shape, label, f"min {s[0]:.2f} median {s[len(s) // 2]:.2f} max {s[-1]:.2f}", "calls", values[0][1])
json.dump(result, open(sys.argv[2], "w"), indent=1)
