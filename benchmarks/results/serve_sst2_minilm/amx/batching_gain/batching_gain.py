"""What batching buys a graph on its own: serve_load's raw loop (tokenizer included) on the Skeleton model and on
its teacher, in turn, each in a child process of its own, for a few rounds. The ratio of the best warmed batch to
two streams at batch 1 (as a ``--max-batch-size 1`` server runs the graph) bounds what a server can gain over its
batch-1 server.

    PYTHONPATH=. python benchmarks/results/serve_sst2_minilm/amx/batching_gain/batching_gain.py RUN \
        --data ../shared/data/sst2/dev.tsv --output batching_gain.json
"""

import argparse
import json
import platform
from pathlib import Path

from benchmarks.serve_load import raw_in_child, warmed_best
from skeleton.core.machine import describe_cpu
from skeleton.core.outputs import source_commit
from skeleton.measure.bench import task_texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a compress directory with onnx/ and bench/prompt_tuned/onnx")
    parser.add_argument("--data", required=True)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--runtime", default="openvino-int8")
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    models = {"skeleton": args.run, "teacher": args.run / "bench" / "prompt_tuned"}
    texts = task_texts(Path(args.data), models["skeleton"])
    rounds = []
    for _ in range(args.rounds):
        row = {}
        for name, directory in models.items():
            raw = raw_in_child(directory, texts, (1, 8, 16, 32), args.runtime)  # no runtime threads left behind
            best = warmed_best(raw)
            gain = best / raw["streams_batch_1"]
            row[name] = {"raw": raw, "best": best, "gain_over_two_streams_at_batch_1": gain}
            print(name, round(best), round(raw["streams_batch_1"]), round(gain, 2))
        rounds.append(row)
    document = {"run": str(args.run), "runtime": args.runtime, "sentences": len(texts), "rounds": rounds}
    document.update(code=source_commit(), machine={"cpu": describe_cpu(), "python": platform.python_version()})
    Path(args.output).write_text(json.dumps(document, indent=2))


if __name__ == "__main__":
    main()
