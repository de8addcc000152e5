"""Bench's batch-1 points with OpenVINO's graphs dynamic and static, alternated in one process, bench's regime
(one call of each per round): every model/runtime pair bench times, OpenVINO's twice (dynamic, and compiled for
the point's shape); per world, the fastest shippable Skeleton runtime against the teacher's fastest of all.

    python benchmarks/results/static_batch_one_sst2/bench_points_static_vs_dynamic.py REPEATS ROUNDS DIR
(here: 10 2 /tmp/runs/sst2_lr2, the README's SST-2 run; writes bench_points_static_vs_dynamic.json beside it)
"""

import json
import sys
from pathlib import Path

from skeleton.core.config import BenchConfig
from skeleton.deploy.runtimes import synthetic_batch
from skeleton.measure.bench import _timed, build_prompt_tuned, contenders

LENGTHS = (16, 64, 128)


def headline(world: list, timings: dict, static: bool) -> dict:
    """The fastest shippable Skeleton runtime against the teacher's fastest, in one world."""

    def ms(contender) -> float:
        prefix = "S" if static and contender.runtime.startswith("openvino") else "D"
        return timings[f"{prefix}:{contender.key}"]

    slim = min((ms(c), c.runtime) for c in world if c.model == "skeleton" and c.shippable)
    teacher = min((ms(c), c.runtime) for c in world if c.model == "prompt_tuned")
    return {"ratio": teacher[0] / slim[0], "skeleton": slim, "teacher": teacher}


def main() -> None:
    repeats, rounds, directory = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    teacher = build_prompt_tuned(directory)
    worlds = {
        static: contenders(
            directory,
            teacher,
            BenchConfig(batch_sizes=(1,), lengths=LENGTHS, static_batch_one=static, device="cpu", threads=2),
        )
        for static in (False, True)
    }
    timing = BenchConfig(batch_sizes=(1,), lengths=LENGTHS, repeats=repeats, min_repeats=repeats, max_seconds=60)
    rows = []
    for round_ in range(rounds):
        for length in LENGTHS:
            encoded = synthetic_batch(1, length, 30522)
            calls = {}
            for static, world in worlds.items():
                for c in world:
                    if static and not c.runtime.startswith("openvino"):
                        continue  # the same engine in both worlds
                    calls[f"{'S' if static else 'D'}:{c.key}"] = lambda c=c, e=encoded: c.engine.run(e)
            timings = {key: t.median_ms for key, t in _timed(calls, timing).items()}
            row = {"round": round_, "length": length, "ms": timings}
            row["dynamic"], row["static"] = (headline(worlds[s], timings, s) for s in (False, True))
            rows.append(row)
            print(round_, length, f"dynamic {row['dynamic']['ratio']:.2f} static {row['static']['ratio']:.2f}")
    Path(__file__).with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
