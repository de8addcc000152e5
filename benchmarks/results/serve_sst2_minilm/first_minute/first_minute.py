"""A fresh `skeleton serve`'s first minute against the rest: serve_load's requests (1 to 8 sentences, 32 clients on
loopback), enough of them to last over two minutes, sent to a server just ready, then the same load again to the
same server once warm (``run_server``): sentences/s within the first minute of answers and after it, per load.

    python benchmarks/results/serve_sst2_minilm/first_minute/first_minute.py DIR --data ../shared/data/sst2/dev.tsv \\
        --runtime onnx-int8 --requests 12000 --output first_minute.json
(run from the project root, with PYTHONPATH=.)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.serve_load import make_requests, run_server
from skeleton.core.machine import describe_cpu
from skeleton.core.outputs import source_commit
from skeleton.measure.bench import task_texts

KEYS = (
    "first_minute_sentences_per_second",
    "after_first_minute_sentences_per_second",
    "sentences_per_second",
    "p50_ms",
    "p99_ms",
    "seconds",
    "errors",
    "seconds_to_ready",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--runtime", default="auto")
    parser.add_argument("--requests", type=int, default=12000)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    requests = make_requests(task_texts(args.data, args.directory), args.requests, 0)
    result = run_server({"model": args.directory}, ["--runtime", args.runtime], requests, 32)
    fresh = {key: result.get(key) for key in KEYS}
    report = {
        "directory": str(args.directory),
        "runtime": args.runtime,
        "requests": args.requests,
        "code": source_commit(),
        "machine": describe_cpu(),
        "fresh": fresh,
        "warm": result["warm"],
        "first_minute_vs_rest": fresh["first_minute_sentences_per_second"]
        / fresh["after_first_minute_sentences_per_second"],
    }
    print(json.dumps(report, indent=1))
    if args.output:
        args.output.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
