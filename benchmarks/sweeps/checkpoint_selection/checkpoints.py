"""How much the best-of-checkpoints validation accuracy flatters a full condensation.

The shipped plan of a default run (its teacher in ``prompt_tuned``, ``pruning_plan.json`` and
``neuron_scores.safetensors``) condensed again in full from the pruned teacher with the SST-2 recipe in bf16 (two
epochs over the 45,894 training rows, the teacher's logits computed in bf16 as the run does), the test split
(reported only, never used to choose) scored at every validation checkpoint beside the validation accuracy that
picks the state a condensation keeps.

    python benchmarks/sweeps/checkpoint_selection/checkpoints.py RUN_DIR OUT.json
"""

import json
import sys
import time
from pathlib import Path

import torch

import skeleton.method.tuning as tuning
from benchmarks.condense_again import scoring_test_at_checkpoints, shipped_plan
from skeleton.core.config import CompressConfig
from skeleton.core.evaluation import predict_logits
from skeleton.core.machine import describe_cpu
from skeleton.core.precision import autocast

CPU = torch.device("cpu")
run, out = Path(sys.argv[1]), Path(sys.argv[2])
report, workspace, teacher, pruned = shipped_plan(run)
condense = CompressConfig().resolved().trained_in("bf16").condense
pad = workspace.pad_token_id

rows = workspace.train.concatenated(workspace.more_training_rows(condense.max_samples - len(workspace.train)))
with autocast(CPU, "bf16"):
    rows = rows.with_teacher(predict_logits(teacher, rows, CPU, condense.eval_batch_size, pad))

checkpoints = scoring_test_at_checkpoints(workspace)


started = time.perf_counter()
result = tuning.train_prompt(pruned, rows, workspace.validation, condense, CPU, pad, validate_start=False)
best = max(range(len(checkpoints)), key=lambda i: checkpoints[i]["validation_accuracy"])
record = {
    "run": f"the default SST-2 run of code {report['versions'].get('skeleton_commit')}: its teacher, plan and scores",
    "plan": {key: report[key] for key in ("kept_layers", "kept_heads", "kept_sizes")},
    "teacher": {s: report["prompt_tuned"][s]["accuracy"] for s in ("validation", "test")},
    "rows": len(rows),
    "checkpoints": checkpoints,
    "best_by_validation": best,
    "best_validation_minus_last": checkpoints[best]["validation_accuracy"] - checkpoints[-1]["validation_accuracy"],
    "test_at_best_minus_last": checkpoints[best]["test_accuracy"] - checkpoints[-1]["test_accuracy"],
    "seconds": time.perf_counter() - started,
    "machine": describe_cpu(),
}
out.write_text(json.dumps(record, indent=2) + "\n")
print(json.dumps({k: v for k, v in record.items() if k != "machine"}, indent=2))
