"""One client on one keep-alive connection (``httpx.Client``), one sentence a request, to `skeleton serve` of each
of two checkouts, or with two sets of options, in turn (blocks of --requests alternating, --rounds rounds):
request latency end to end, percentiles per server.

    python benchmarks/results/serve_sst2_minilm/nodelay/one_connection.py DIR --data ../shared/data/sst2/dev.tsv \\
        --checkout before=/path/to/old --checkout after=/path/to/new --output one_connection.json
    python benchmarks/results/serve_sst2_minilm/nodelay/one_connection.py DIR --data ../shared/data/sst2/dev.tsv \\
        --checkout "int8=.|--runtime onnx-int8" --checkout "openvino-fp32=.|--runtime openvino-fp32" --output ...
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np

from skeleton.core.machine import describe_cpu
from skeleton.deploy.server import ServerProcess
from skeleton.measure.bench import task_texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--checkout", action="append", required=True, help="LABEL=PATH[|SERVE OPTIONS], twice")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    import httpx

    servers = dict(spec.split("=", 1) for spec in args.checkout)
    checkouts = {name: str(Path(spec.split("|")[0]).resolve()) for name, spec in servers.items()}
    options = {name: spec.split("|", 1)[1].split() if "|" in spec else [] for name, spec in servers.items()}
    directory, data = args.directory.resolve(), args.data.resolve()
    texts = task_texts(data, directory)
    rng = np.random.default_rng(0)
    chosen = [texts[i] for i in rng.choice(len(texts), size=args.requests, replace=True)]
    latencies: dict[str, list[float]] = {name: [] for name in checkouts}
    for _ in range(args.rounds):
        for name, code in checkouts.items():
            os.chdir(code)  # the server's `python -m cli.main` runs the checkout it starts in
            server = ServerProcess([f"model={directory}"], options[name])
            try:
                with httpx.Client(timeout=30) as client:
                    for text in chosen:
                        started = time.perf_counter()
                        response = client.post(f"{server.url}/v1/models/model/predict", json={"inputs": text})
                        latencies[name].append(time.perf_counter() - started)
                        response.raise_for_status()
            finally:
                server.stop()
    summary = {
        name: {f"p{q}_ms": float(np.percentile(np.array(values) * 1000, q)) for q in (10, 50, 90, 99)}
        for name, values in latencies.items()
    }
    result = {
        "what": f"one client, one keep-alive connection, one sentence a request; {args.rounds} rounds of "
        f"{args.requests} requests per checkout, alternating",
        "directory": str(directory),
        "checkouts": {
            name: subprocess.run(
                ["git", "-C", code, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True
            ).stdout.strip()
            for name, code in checkouts.items()
        },
        "options": options,
        "machine": describe_cpu(),
        "latency": summary,
    }
    print(json.dumps(summary, indent=1))
    if args.output:
        args.output.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
