"""Where the slow requests are: request latency by the number of sentences a request carries, per batcher.

Each checkout's server is started in turn (as ab_servers.py starts it) and gets serve_load.py's requests (1,500 of 1
to 8 dev sentences, seed 0) from 32 clients, three times; p50 and p99 over all the requests and by request size,
and the sizes of the slowest 1%.

    PYTHONPATH=. python benchmarks/results/serve_sst2_minilm/amx/batch_choice/tail_by_size.py MODEL_DIR \
        CHECKOUT_A CHECKOUT_B --output tail_by_size.json
"""

import argparse
import asyncio
import json
import sys
from pathlib import Path

import numpy as np

from benchmarks.serve_load import _load, make_requests
from skeleton.core.machine import describe_cpu
from skeleton.measure.bench import task_texts

sys.path.insert(0, str(Path(__file__).parent))
from ab_servers import DATA, commit, start  # noqa: E402


def latencies(url: str, requests: list[list], clients: int = 32) -> np.ndarray:
    """Milliseconds each request took, in the order of ``requests``; every request must be answered 200."""
    result = asyncio.run(_load(lambda i: url, requests, clients, keep_latencies=True))
    if result["errors"]:
        raise RuntimeError(f"{result['errors']} requests not answered 200: {result['statuses']}")
    return np.asarray(result["latencies_ms"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("checkouts", type=Path, nargs="+")
    parser.add_argument("--runtime", default="openvino-int8")
    parser.add_argument("--loads", type=int, default=3)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    requests = make_requests(task_texts(DATA, args.model), 1500, 0)
    sizes = np.array([len(r) for r in requests] * args.loads)
    report = {"model": str(args.model), "runtime": args.runtime, "machine": describe_cpu(), "servers": []}
    for checkout in args.checkouts:
        server = start(args.model, checkout, args.runtime)
        try:
            url = f"{server.url}/v1/models/m/predict"
            ms = np.concatenate([latencies(url, requests) for _ in range(args.loads)])
        finally:
            server.stop()
        p50, p99 = np.percentile(ms, [50, 99])
        by_size = {
            str(k): {
                "p50_ms": float(np.percentile(ms[sizes == k], 50)),
                "p99_ms": float(np.percentile(ms[sizes == k], 99)),
            }
            for k in range(1, 9)
        }
        slowest = np.bincount(sizes[ms >= p99], minlength=9)[1:].tolist()
        report["servers"].append(
            {
                "code": commit(checkout),
                "p50_ms": float(p50),
                "p99_ms": float(p99),
                "by_size": by_size,
                "slowest_sizes": slowest,
            }
        )
        print(checkout, f"p50 {p50:.0f} p99 {p99:.0f} ({p99 / p50:.2f})", by_size["1"], slowest, flush=True)
    args.output.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
