"""What NNCF's bias correction costs the graphs the search only times, and whether leaving it out changes them.

The latency table, the refit and every search trial time openvino-int8 graphs of bare encoders (one layer, a
pruned backbone, the whole one) that nobody runs for their outputs: only their speed is read. NNCF's quantisation
of each spends much of its time on fast bias correction, which compiles and runs sub-models to nudge bias values;
a bias's value does not change what a graph computes per token, only what it outputs. This builds each graph both
ways (as ``skeleton.measure.latency.build_graph`` does, with and without bias correction), times the NNCF step
(medians of 3, alternated), compares the two IRs' operations (type by type) and times the two graphs alternated
in one process at three shapes.

    python benchmarks/sweeps/timing_graph_quantization/bias_correction.py OUT.json
"""

import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import openvino as ov

from skeleton.core.machine import describe_cpu
from skeleton.core.modeling import load_config, resolve_model_path
from skeleton.core.timing import time_alternating
from skeleton.deploy.openvino import nncf_quantize
from skeleton.measure.latency import _layer_model, export_timing_graph, timing_calibration

SHAPES = ((1, 16), (8, 64), (32, 128))
config = load_config(resolve_model_path("default"))
results = {"machine": describe_cpu(), "graphs": {}}
core = ov.Core()
with tempfile.TemporaryDirectory() as scratch:
    for name, layers in (("one layer", 1), ("whole backbone", config.num_hidden_layers)):
        model = _layer_model(config, layers, config.num_attention_heads, config.intermediate_size)
        fp32 = export_timing_graph(model, Path(scratch), name.replace(" ", "-"))
        calibration = timing_calibration()
        seconds = {True: [], False: []}
        paths = {}
        for attempt in range(3):
            for corrected in (True, False):
                target = Path(scratch) / f"{name.replace(' ', '-')}-{corrected}-{attempt}.xml"
                started = time.perf_counter()
                nncf_quantize("default", fp32, target, calibration, bias_correction=corrected)
                seconds[corrected].append(time.perf_counter() - started)
                paths[corrected] = target
        operations = {
            c: Counter(op.get_type_name() for op in core.read_model(str(p)).get_ordered_ops()) for c, p in paths.items()
        }
        compiled = {c: core.compile_model(str(p), "CPU", {"INFERENCE_NUM_THREADS": 2}) for c, p in paths.items()}
        timings = {}
        for batch, tokens in SHAPES:
            inputs = {
                "input_ids": np.ones((batch, tokens), np.int64),
                "attention_mask": np.ones((batch, tokens), np.int64),
            }
            requests = {c: m.create_infer_request() for c, m in compiled.items()}
            timed = time_alternating(
                {str(c): (lambda r=r, x=inputs: r.infer(x)) for c, r in requests.items()}, repeats=20, warmup=3
            )
            timings[f"{batch}x{tokens}"] = {
                ("with" if c == "True" else "without"): t.to_dict() for c, t in timed.items()
            }
        results["graphs"][name] = {
            "nncf_seconds_with_bias_correction": seconds[True],
            "nncf_seconds_without": seconds[False],
            "median_ratio": statistics.median(seconds[True]) / statistics.median(seconds[False]),
            "same_operations": operations[True] == operations[False],
            "operations": dict(operations[False]),
            "latency": timings,
        }
        print(name, json.dumps({k: v for k, v in results["graphs"][name].items() if k != "operations"}, indent=1))
Path(sys.argv[1]).write_text(json.dumps(results, indent=2) + "\n")
