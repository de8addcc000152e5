"""Is a fresh server's first tenth of answers slower because the server is cold, or because of how a load
starts? Two server processes in turn, each sent three loads of the same requests one after the other (each load
a fresh client session): the first tenth's rate against the rest's, per load.

    python benchmarks/results/serve_sst2_minilm/first_tenth/first_tenth.py DIR RUNTIME OUTPUT.json
(data: ../shared/data/sst2/dev.tsv; run from the project root, with PYTHONPATH=.)
"""

import asyncio
import json
import sys
from pathlib import Path

from benchmarks.serve_load import _load, make_requests
from skeleton.deploy.server import ServerProcess
from skeleton.measure.bench import task_texts

directory, runtime, out = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
texts = task_texts(Path("../shared/data/sst2/dev.tsv"), directory)
requests = make_requests(texts, 1000, 0)
results = []
for server_round in range(2):
    server = ServerProcess([f"model={directory}"], ["--runtime", runtime])
    try:
        url = f"{server.url}/v1/models/model/predict"
        for load in range(3):
            r = asyncio.run(_load(lambda i, u=url: u, requests, 32))
            keys = ("sentences_per_second", "first_tenth_sentences_per_second", "rest_sentences_per_second")
            row = {"server": server_round, "load": load, **{k: r[k] for k in keys}}
            results.append(row)
            print(json.dumps(row), flush=True)
    finally:
        server.stop()
Path(out).write_text(json.dumps(results, indent=1))
