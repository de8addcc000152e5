"""`skeleton serve` under serve_load's load (1,000 requests of 1 to 8 sentences, 32 clients) at each
--max-batch-size, the servers one after the other, round-robin over ROUNDS rounds.

    python benchmarks/results/serve_sst2_minilm/max_batch_size/max_batch_size.py DIR RUNTIME 1,4,8,16,32 3 OUT.json
(data: ../shared/data/sst2/dev.tsv; run from the project root, with PYTHONPATH=.)
"""

import json
import sys
from pathlib import Path

from benchmarks.serve_load import make_requests, run_server
from skeleton.core.machine import describe_cpu
from skeleton.measure.bench import task_texts

KEYS = (
    "sentences_per_second",
    "p50_ms",
    "p99_ms",
    "mean_batch_size",
    "cpu_ms_per_sentence",
    "errors",
    "first_tenth_sentences_per_second",
    "rest_sentences_per_second",
)


def main() -> None:
    directory, runtime, sizes, rounds, out = Path(sys.argv[1]), sys.argv[2], sys.argv[3].split(","), *sys.argv[4:6]
    requests = make_requests(task_texts(Path("../shared/data/sst2/dev.tsv"), directory), 1000, 0)
    results: dict[str, list[dict]] = {size: [] for size in sizes}
    for _ in range(int(rounds)):
        for size in sizes:
            result = run_server({"model": directory}, ["--runtime", runtime, "--max-batch-size", size], requests, 32)
            results[size].append({key: result[key] for key in KEYS})
            print(runtime, size, json.dumps(results[size][-1]), flush=True)
    Path(out).write_text(json.dumps({"runtime": runtime, "machine": describe_cpu(), "results": results}, indent=1))


if __name__ == "__main__":
    main()
