"""Per-sentence cost of an exported int8 graph at batch 1, 4, 8 and 32 (32 tokens each), with 2 onnxruntime
threads and with 1, calls alternated: how much batching can buy a server on this CPU (issue #32).

    python benchmarks/sweeps/batching_avx2/batch_cost.py DIR/onnx/model_int8.onnx OUT.json
"""

import json
import sys
import time

import numpy as np
import onnxruntime as ort

from skeleton.core.machine import describe_cpu


def session(path: str, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


sessions = {"2 threads": session(sys.argv[1], 2), "1 thread": session(sys.argv[1], 1)}
names = [i.name for i in sessions["2 threads"].get_inputs()]
rng = np.random.default_rng(0)
rows = []
for batch in (1, 4, 8, 32):
    feed = {"input_ids": rng.integers(1000, 20000, (batch, 32)), "attention_mask": np.ones((batch, 32), np.int64)}
    feed["token_type_ids"] = np.zeros((batch, 32), np.int64)
    feed = {k: v.astype(np.int64) for k, v in feed.items() if k in names}
    for s in sessions.values():
        s.run(None, feed)
    seconds: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(max(5, 64 // batch)):
        for name, s in sessions.items():
            started = time.perf_counter()
            s.run(None, feed)
            seconds[name].append(time.perf_counter() - started)
    per_sentence = {name: round(1000 * float(np.median(v)) / batch, 2) for name, v in seconds.items()}
    rows.append({"batch": batch, "tokens": 32, "ms_per_sentence": per_sentence})
    print(rows[-1])
json.dump({"rows": rows, "machine": describe_cpu()}, open(sys.argv[2], "w"), indent=1)
