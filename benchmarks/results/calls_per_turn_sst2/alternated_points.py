# ruff: noqa
# One-off script behind the JSON beside it, kept as it ran (paths of that session); run with PYTHONPATH at the repository.
"""Same process, same graphs: bench's own grid points timed with one call per turn and with three, alternated."""

import json, sys
from dataclasses import replace
from pathlib import Path
from skeleton.core.config import BenchConfig
from skeleton.measure import bench as B

d = Path("/tmp/runs/sst2_lr2")
t = d / "bench" / "prompt_tuned"
config = BenchConfig(batch_sizes=(1, 8), lengths=(16, 64), threads=2, device="cpu")
cs = B.contenders(d, t, config)
shapes = {"skeleton": B.ModelShape.of(d), "prompt_tuned": B.ModelShape.of(t)}
rows = []
for rnd in range(2):
    for turns in (1, 3):
        for batch, length in ((1, 16), (1, 64), (8, 16)):
            p = B._point(cs, shapes, batch, length, replace(config, calls_per_turn=turns))
            h = p["headline"]
            row = {
                "round": rnd,
                "calls_per_turn": turns,
                "shape": f"{batch}x{length}",
                "speedup": h["speedup"],
                "skeleton": [h["skeleton_runtime"], h["skeleton_ms"]],
                "teacher": [h["prompt_tuned_runtime"], h["prompt_tuned_ms"]],
                "medians_ms": {k: v["median_ms"] for k, v in p["latency"].items()},
            }
            rows.append(row)
            print(
                json.dumps({k: row[k] for k in ("round", "calls_per_turn", "shape", "speedup", "skeleton", "teacher")}),
                flush=True,
            )
json.dump(
    {
        "what": "bench points (skeleton.measure.bench._point) of the default SST-2 model, all 16 contenders, one call per turn against three, alternated in one process, 2 rounds",
        "machine": B.machine_description(2),
        "rows": rows,
    },
    open("/tmp/exp/ab_turns.json", "w"),
    indent=1,
)
