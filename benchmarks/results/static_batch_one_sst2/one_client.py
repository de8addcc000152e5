"""One client, one sentence a request, two `skeleton serve` processes up at once on loopback, the requests
alternating between them (so drift falls on both alike); request latency end to end (HTTP, tokenizer,
graph), medians and spread per server. By default the two differ by --static-batch-one; ``--server
LABEL|CODE|OPTIONS`` (twice) names each: CODE a checkout whose ``cli.main`` it runs (empty: this one).

    python benchmarks/results/static_batch_one_sst2/one_client.py DIR --data ../shared/data/sst2/dev.tsv \\
        --runtime openvino-int8 --requests 1000 --output benchmarks/results/static_batch_one_sst2/one_client.json
    python benchmarks/results/static_batch_one_sst2/one_client.py DIR --data ../shared/data/sst2/dev.tsv \\
        --server "wait 2 ms|/path/to/older/checkout|" --server "idle runs at once||" --output ...
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from skeleton.core.machine import describe_cpu
from skeleton.core.outputs import source_commit
from skeleton.deploy.server import ServerProcess
from skeleton.measure.bench import task_texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--runtime", default="openvino-int8")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--server", action="append", default=None, help="LABEL|CODE|OPTIONS, twice")
    args = parser.parse_args()
    import httpx

    texts = task_texts(args.data, args.directory)
    rng = np.random.default_rng(0)
    chosen = [texts[i] for i in rng.choice(len(texts), size=args.requests, replace=True)]
    common = ["--runtime", args.runtime, "--streams", "1"]
    specs = args.server or ["dynamic||", "static_batch_one||--static-batch-one"]
    if len(specs) != 2:
        parser.error("give --server twice")
    servers, path = {}, os.environ.get("PYTHONPATH", "")
    for spec in specs:
        label, code, options = spec.split("|")
        os.environ["PYTHONPATH"] = code or path  # the child runs `python -m cli.main` of that checkout
        servers[label] = ServerProcess([f"model={args.directory}"], [*common, *options.split()])
    os.environ["PYTHONPATH"] = path
    latencies: dict[str, list[float]] = {name: [] for name in servers}
    try:
        ready = {name: httpx.get(f"{s.url}/ready", timeout=10).json() for name, s in servers.items()}
        for name, server in servers.items():
            ready[name]["seconds_to_ready"] = server.seconds_to_ready
        with httpx.Client(timeout=30) as client:
            for index, text in enumerate(chosen):
                order = list(servers) if index % 2 == 0 else list(reversed(servers))
                for name in order:
                    started = time.perf_counter()
                    response = client.post(f"{servers[name].url}/v1/models/model/predict", json={"inputs": text})
                    latencies[name].append(time.perf_counter() - started)
                    response.raise_for_status()
    finally:
        for server in servers.values():
            server.stop()
    first, second = list(servers)
    summary = {
        name: {
            "p10_ms": float(np.percentile(values, 10) * 1000),
            "p50_ms": float(np.percentile(values, 50) * 1000),
            "p90_ms": float(np.percentile(values, 90) * 1000),
            "p99_ms": float(np.percentile(values, 99) * 1000),
        }
        for name, values in latencies.items()
    }
    result = {
        "what": "one client, one sentence per request, the two servers' requests alternating",
        "directory": str(args.directory),
        "runtime": args.runtime,
        "requests": args.requests,
        "code": source_commit(),
        "machine": describe_cpu(),
        "ready": ready,
        "latency": summary,
        "servers": specs,
        "p50_ratio_first_over_second": summary[first]["p50_ms"] / summary[second]["p50_ms"],
    }
    print(json.dumps(result, indent=2))
    if args.output:
        args.output.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
