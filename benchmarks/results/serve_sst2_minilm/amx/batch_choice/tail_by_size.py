"""Where the slow requests are: request latency by the number of sentences a request carries, per batcher.

Each checkout's server is started in turn (as ab_servers.py starts it) and gets serve_load.py's requests (1,500 of 1
to 8 dev sentences, seed 0) from 32 clients, three times; p50 and p99 over all the requests and by request size,
and the sizes of the slowest 1%.

    PYTHONPATH=. python benchmarks/results/serve_sst2_minilm/amx/batch_choice/tail_by_size.py MODEL_DIR \
        CHECKOUT_A CHECKOUT_B --output tail_by_size.json

Writes the JSON and its table beside it (tail_by_size.md; ``--render tail_by_size.json`` writes it again).
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
    parser.add_argument("model", type=Path, nargs="?")
    parser.add_argument("checkouts", type=Path, nargs="*")
    parser.add_argument("--render", type=Path, help="a report to write as Markdown beside it, alone")
    parser.add_argument("--runtime", default="openvino-int8")
    parser.add_argument("--loads", type=int, default=3)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    if args.render:
        args.render.with_suffix(".md").write_text(markdown(json.loads(args.render.read_text())))
        return
    if not (args.model and args.checkouts and args.output):
        parser.error("MODEL, one or more CHECKOUTs and --output are needed to measure (or --render a report)")
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
    args.output.with_suffix(".md").write_text(markdown(report))


def markdown(report: dict) -> str:
    """One row per server: p50 / p99, one and eight sentences, the sizes of the slowest 1%."""
    lines = [
        "| code | p50 / p99 ms | p99 / p50 | one sentence: p50 / p99 | eight: p50 / p99 | "
        "sizes (1 to 8) of the slowest 1% |",
        "|---|---|---|---|---|---|",
    ]
    for server in report["servers"]:
        one, eight = server["by_size"]["1"], server["by_size"]["8"]
        lines.append(
            f"| {server['code'][:7]} | {server['p50_ms']:.0f} / {server['p99_ms']:.0f} | "
            f"{server['p99_ms'] / server['p50_ms']:.2f} | {one['p50_ms']:.0f} / {one['p99_ms']:.0f} | "
            f"{eight['p50_ms']:.0f} / {eight['p99_ms']:.0f} | {', '.join(map(str, server['slowest_sizes']))} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
