"""Does who else is in bench's rotation change a batch-1 call? The Skeleton model's and the teacher's
openvino-int8 graphs at 1x16, alternated alone, then with bench's other contenders of one family between them
(onnxruntime's, OpenVINO's other precisions, PyTorch's), then with all of them; 30 rounds each, two passes.

    python benchmarks/results/static_batch_one_sst2/bench_neighbours.py DIR [--static-batch-one]
(here: /tmp/runs/sst2_lr2, the README's SST-2 run; writes bench_neighbours[_static].json beside it)
"""

import json
import sys
from pathlib import Path

from skeleton.core.config import BenchConfig
from skeleton.deploy.runtimes import synthetic_batch
from skeleton.measure.bench import _timed, build_prompt_tuned, contenders

PAIR = ["skeleton/openvino-int8", "prompt_tuned/openvino-int8"]


def main() -> None:
    directory, static = Path(sys.argv[1]), "--static-batch-one" in sys.argv
    teacher = build_prompt_tuned(directory)
    config = BenchConfig(batch_sizes=(1,), lengths=(16,), static_batch_one=static, device="cpu", threads=2)
    found = {c.key: c for c in contenders(directory, teacher, config)}
    groups = {
        "the pair alone": PAIR,
        "with onnxruntime's": PAIR + [k for k in found if "/onnx-" in k],
        "with OpenVINO's others": PAIR + [k for k in found if "/openvino-" in k and k not in PAIR],
        "with PyTorch's": PAIR + [k for k in found if "/torch-" in k],
        "with all": list(found),
    }
    timing = BenchConfig(batch_sizes=(1,), lengths=(16,), repeats=30, min_repeats=30, max_seconds=60)
    encoded = synthetic_batch(1, 16, 30522)
    rows = []
    for pass_ in range(2):
        for name, keys in groups.items():
            calls = {key: (lambda c=found[key]: c.engine.run(encoded)) for key in keys}
            ms = {key: t.median_ms for key, t in _timed(calls, timing).items()}
            slim, base = ms[PAIR[0]], ms[PAIR[1]]
            row = {"pass": pass_, "group": name, "contenders": len(keys), "skeleton_ms": slim, "teacher_ms": base}
            rows.append(row)
            print(pass_, f"{name:24s} skeleton {slim:.3f} ms, teacher {base:.3f} ms, {base / slim:.2f}x", flush=True)
    suffix = "_static" if static else ""
    Path(__file__).with_name(f"bench_neighbours{suffix}.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
