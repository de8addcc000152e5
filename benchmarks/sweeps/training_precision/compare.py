r"""fp32 against bf16-autocast training of the same fine-tune (skeleton tune --tune full --train-samples
4000, seed 42): validation (2,000 whole sentences) and test accuracy, paired intervals, and how often the two
models agree.

    for P in fp32 bf16; do skeleton tune --task sst2 --data-dir ../shared/data/sst2 --tune full \
        --train-samples 4000 --precision $P --output /tmp/runs/prec_$P; done
    python benchmarks/sweeps/training_precision/compare.py /tmp/runs/prec \
        benchmarks/sweeps/training_precision/sst2_fp32_vs_bf16.json
"""

import json
import sys

import numpy as np
import torch

import skeleton
from skeleton.core.data import DataConfig
from skeleton.core.statistics import paired_bootstrap
from skeleton.core.workspace import ModelConfig, Workspace

runs = {p: f"{sys.argv[1]}_{p}" for p in ("fp32", "bf16")}  # the two tune outputs: PREFIX_fp32, PREFIX_bf16
reports = {p: json.load(open(f"{d}/report.json")) for p, d in runs.items()}
cfg = reports["fp32"]["config"]
workspace = Workspace(DataConfig(**cfg["data"]), ModelConfig(**cfg["model"]))
preds, correct = {}, {}
for p, d in runs.items():
    classifier = skeleton.load(d, device="cpu").classifier
    preds[p] = workspace.split_predictions(classifier, torch.device("cpu"), 128)
    correct[p] = {s: workspace.correct(s, preds[p][s]) for s in ("validation", "test")}
SETTING = "skeleton tune --task sst2 --data-dir ../shared/data/sst2 --tune full --train-samples 4000 --precision P"
out = {
    "setting": SETTING,
    "training_seconds": {p: reports[p]["training"]["seconds"] for p in runs},
    "training_precision": {p: reports[p]["training_precision"] for p in runs},
}
for s in ("validation", "test"):
    ci = paired_bootstrap(np.asarray(correct["bf16"][s]), np.asarray(correct["fp32"][s]))
    out[s] = {
        "fp32": 100 * float(np.mean(correct["fp32"][s])),
        "bf16": 100 * float(np.mean(correct["bf16"][s])),
        "bf16_minus_fp32": ci,
        "agreement": 100 * float(np.mean(np.asarray(preds["fp32"][s]) == np.asarray(preds["bf16"][s]))),
    }
print(json.dumps(out, indent=1))
json.dump(out, open(sys.argv[2], "w"), indent=1)
