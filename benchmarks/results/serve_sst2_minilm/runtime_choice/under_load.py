"""`skeleton serve` of one model with each of several runtimes under the same load (benchmarks/serve_load.py's
requests: 1 to 8 sentences from 32 clients on loopback), the servers run one after the other, round-robin over
--rounds rounds: sentences/s, p50 / p99 request latency, mean batch size per run.

    python benchmarks/results/serve_sst2_minilm/runtime_choice/under_load.py DIR --data ../shared/data/sst2/dev.tsv \\
        --runtimes onnx-int8,openvino-fp32 --output under_load.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from benchmarks.serve_load import make_requests, run_server
from skeleton.core.machine import describe_cpu
from skeleton.core.outputs import source_commit
from skeleton.measure.bench import task_texts

KEYS = ("sentences_per_second", "p50_ms", "p99_ms", "mean_batch_size", "cpu_ms_per_sentence", "errors")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--runtimes", default="onnx-int8,openvino-fp32")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    requests = make_requests(task_texts(args.data, args.directory), args.requests, 0)
    runs: dict[str, list[dict]] = {runtime: [] for runtime in args.runtimes.split(",")}
    for _ in range(args.rounds):
        for runtime, rounds in runs.items():
            result = run_server({"model": args.directory}, ["--runtime", runtime], requests, 32)
            rounds.append({key: result[key] for key in KEYS})
            print(runtime, json.dumps(rounds[-1]), flush=True)
    medians = {
        runtime: {key: float(np.median([r[key] for r in rounds])) for key in KEYS} for runtime, rounds in runs.items()
    }
    report = {
        "directory": str(args.directory),
        "requests": args.requests,
        "code": source_commit(),
        "machine": describe_cpu(),
        "rounds": runs,
        "median": medians,
    }
    print(json.dumps(medians, indent=1))
    if args.output:
        args.output.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
