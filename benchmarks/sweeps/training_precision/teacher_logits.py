"""What bf16 autocast buys the teacher's logits that condensation distils to (``Condensation._with_teacher``).

The fine-tuned SST-2 teacher of a default run (its ``<run>/prompt_tuned`` directory) classifies the first
``ROWS`` rows of the run's training split, sorted into batches of 128 by length as the run does, in fp32 and in
bf16 autocast, passes alternating in one process (one untimed pass each first); medians of ``ROUNDS``. Also the
largest logit difference and the argmax agreement between the two.

    python benchmarks/sweeps/training_precision/teacher_logits.py RUN_DIR OUT.json
"""

import json
import sys
from pathlib import Path

import torch

from skeleton.core.config import ModelConfig
from skeleton.core.data import DataConfig
from skeleton.core.evaluation import predict_logits
from skeleton.core.machine import describe_cpu
from skeleton.core.precision import autocast
from skeleton.core.timing import time_alternating
from skeleton.core.workspace import Workspace

ROWS, ROUNDS = 3000, 3
CPU = torch.device("cpu")

run, out = Path(sys.argv[1]), Path(sys.argv[2])
report = json.loads((run / "report.json").read_text())
workspace = Workspace(DataConfig.from_dict(report["config"]["data"]), ModelConfig(**report["config"]["model"]))
teacher = workspace.load_classifier(run / "prompt_tuned")
rows = workspace.train.select(list(range(ROWS)))


def logits(precision: str) -> torch.Tensor:
    with autocast(CPU, precision):
        return predict_logits(teacher, rows, CPU, 128, workspace.pad_token_id)


fp32, bf16 = logits("fp32"), logits("bf16")
timings = time_alternating({p: (lambda p=p: logits(p)) for p in ("fp32", "bf16")}, repeats=ROUNDS, warmup=0)
result = {
    "rows": ROWS,
    "rounds": ROUNDS,
    "seconds": {
        p: {k: round(getattr(t, f"{k}_ms") / 1000, 3) for k in ("median", "p10", "p90")} for p, t in timings.items()
    },
    "bf16_speedup": round(timings["fp32"].median_ms / timings["bf16"].median_ms, 2),
    "max_abs_logit_difference": round(float((fp32 - bf16).abs().max()), 4),
    "argmax_agreement": round(float((fp32.argmax(-1) == bf16.argmax(-1)).float().mean()), 5),
    "machine": describe_cpu(),
    "torch": torch.__version__,
}
out.write_text(json.dumps(result, indent=2) + "\n")
print(json.dumps(result, indent=2))
