"""Where a loaded server's CPU goes: py-spy samples `skeleton serve` while benchmarks/serve_load.py's load runs.

The server runs as a user starts it (``ServerProcess``), gets 500 requests first, then 4,000 requests of 1 to 8
dev.tsv sentences from 32 clients while ``py-spy record`` samples every thread of its process for 12 s at 200 Hz.
Each sample is put in the first category whose frame it contains (``CATEGORIES``); the JSON has the shares of
samples per category and per thread, and the load's figures.

    python benchmarks/results/serve_sst2_minilm/amx/server_profile/profile_server.py MODEL_DIR RUNTIME OUT.json
"""

import asyncio
import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from benchmarks.serve_load import _load, make_requests
from skeleton.core.machine import describe_cpu
from skeleton.deploy.server import ServerProcess
from skeleton.measure.bench import task_texts

DATA = Path(__file__).resolve().parents[5] / ".." / "shared" / "data" / "sst2" / "dev.tsv"
CATEGORIES = (  # (category, a frame that puts a sample in it), first match wins
    ("inference (OpenVINO)", "_infer ("),
    ("inference (onnxruntime)", "onnxruntime"),
    ("tokenizer", "call_tokenizer"),
    ("padding into buckets", "finish_columns"),
    ("label scores", "scores ("),
    ("response model (FastAPI, pydantic)", "serialize_response"),
    ("HTTP parsing (httptools)", "httptools"),
    ("uvicorn", "uvicorn"),
    ("starlette / FastAPI routing", "starlette"),
    ("asyncio", "asyncio"),
)

directory, runtime, out = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
requests = make_requests(task_texts(DATA, directory), 4000, 0)
server = ServerProcess([f"m={directory}"], ["--runtime", runtime])
with tempfile.TemporaryDirectory() as scratch:
    raw = Path(scratch) / "samples.txt"
    try:
        url = f"{server.url}/v1/models/m/predict"
        asyncio.run(_load(lambda i: url, requests[:500], 32))
        command = ["py-spy", "record", "--pid", str(server.process.pid), "--duration", "12", "--rate", "200"]
        spy = subprocess.Popen(
            [*command, "--threads", "--nonblocking", "--format", "raw", "--output", str(raw)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        load = asyncio.run(_load(lambda i: url, requests, 32))
        spy.wait()
    finally:
        server.stop()
    categories, threads, total = Counter(), Counter(), 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        total += int(count)
        threads[stack.split(";")[0].split(":")[-1].strip()] += int(count)
        categories[next((name for name, frame in CATEGORIES if frame in stack), "other")] += int(count)
result = {
    "runtime": runtime,
    "samples": total,
    "share_of_samples": {name: round(n / total, 3) for name, n in categories.most_common()},
    "share_by_thread": {name: round(n / total, 3) for name, n in threads.most_common()},
    "load": {k: load[k] for k in ("sentences_per_second", "p50_ms", "p99_ms", "errors")},
    "machine": describe_cpu(),
}
out.write_text(json.dumps(result, indent=2) + "\n")
print(json.dumps(result, indent=2))
