r"""SST-2's full fine-tuning (step 1 of the default compress) at other backbone learning rates, against the
default's 5e-5: validation accuracy (what a default is chosen on) with paired intervals; test reported only.

    skeleton tune --task sst2 --data-dir ../shared/data/sst2 --tune full --tune-lr LR --output /tmp/runs/lr_LR
    python benchmarks/sweeps/sst2_tune_lr/compare.py BASELINE_DIR OUT.json /tmp/runs/lr_1e-4 /tmp/runs/lr_2e-4

BASELINE_DIR: the fine-tuned model of a default compress run (its ``prompt_tuned`` directory, lr 5e-5).
"""

import json
import sys

import numpy as np
import torch

import skeleton
from skeleton.core.data import DataConfig
from skeleton.core.statistics import paired_bootstrap
from skeleton.core.workspace import ModelConfig, Workspace

baseline, output, others = sys.argv[1], sys.argv[2], sys.argv[3:]
config = json.load(open(f"{others[0]}/report.json"))["config"]
workspace = Workspace(DataConfig(**config["data"]), ModelConfig(**config["model"]))
correct, rows = {}, {}
for name in (baseline, *others):
    classifier = skeleton.load(name, device="cpu").classifier
    predictions = workspace.split_predictions(classifier, torch.device("cpu"), 128)
    correct[name] = {s: np.asarray(workspace.correct(s, predictions[s])) for s in ("validation", "test")}
for name in others:
    report = json.load(open(f"{name}/report.json"))
    rows[name] = {
        "backbone_lr": report["config"]["train"]["backbone_lr"],
        "training_seconds": report["training"]["seconds"],
        **{
            split: {
                "accuracy": 100 * float(correct[name][split].mean()),
                "minus_baseline": paired_bootstrap(correct[name][split], correct[baseline][split]),
            }
            for split in ("validation", "test")
        },
    }
result = {
    "baseline": {"dir": baseline, **{s: 100 * float(correct[baseline][s].mean()) for s in ("validation", "test")}},
    "runs": rows,
}
print(json.dumps(result, indent=1))
json.dump(result, open(output, "w"), indent=1)
