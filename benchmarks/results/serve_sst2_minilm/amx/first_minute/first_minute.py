"""Is a fresh server's first minute slower than the rest? One long load on a fresh server, then the same load on it
warm (``serve_load.run_server``: loads longer than two minutes report their first minute against the rest).

serve_load.py's raw loop would time the graph on every sentence of the load at eight settings, an hour for a load
this long, so this script sends the loads alone.

    PYTHONPATH=. python benchmarks/results/serve_sst2_minilm/amx/first_minute/first_minute.py MODEL_DIR \
        --runtime openvino-int8 --requests 30000 --output first_minute_openvino-int8.json
"""

import argparse
import json
from pathlib import Path

from benchmarks.serve_load import make_requests, run_server
from skeleton.core.machine import describe_cpu
from skeleton.core.outputs import source_commit
from skeleton.measure.bench import task_texts

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("directory", type=Path)
parser.add_argument("--data", type=Path, default=Path("../shared/data/sst2/dev.tsv"))
parser.add_argument("--runtime", default="openvino-int8")
parser.add_argument("--requests", type=int, default=30000)
parser.add_argument("--output", type=Path, required=True)
args = parser.parse_args()
requests = make_requests(task_texts(args.data, args.directory), args.requests, 0)
fresh = run_server({"model": args.directory}, ["--runtime", args.runtime], requests, 32)
report = {
    "directory": str(args.directory),
    "runtime": args.runtime,
    "requests": args.requests,
    "code": source_commit(),
    "machine": describe_cpu(),
    "fresh": fresh,
    "first_minute_vs_rest": fresh["first_minute_sentences_per_second"]
    / fresh["after_first_minute_sentences_per_second"],
    "warm_first_minute_vs_rest": fresh["warm"]["first_minute_sentences_per_second"]
    / fresh["warm"]["after_first_minute_sentences_per_second"],
}
args.output.write_text(json.dumps(report, indent=1) + "\n")
print(json.dumps({k: v for k, v in report.items() if k.endswith("rest")}))
