"""news.csv, step 1's budget: the default fine-tuning (one epoch, lr 5e-5) against lr 1e-4 and three epochs,
on the same held-out splits, with paired bootstrap intervals (benchmarks/sweeps/news_step1_budget/).

    skeleton tune --data ../shared/data/news/news.csv --text-column headline --text-column body \
        --label-column category [--tune-lr 1e-4 | --epochs 3] --output DIR    # each model first
    python benchmarks/news_step1_budget.py benchmarks/sweeps/news_step1_budget/teachers_compared.json
"""

import json
import sys
from pathlib import Path

import torch

from skeleton.core.config import DataConfig, ModelConfig
from skeleton.core.statistics import paired_bootstrap
from skeleton.core.workspace import Workspace

data = DataConfig(data_file="../shared/data/news/news.csv", text_columns=["headline", "body"], label_column="category")
ws = Workspace(data, ModelConfig(head="cls", num_virtual_tokens=0, use_template=False))
out = {}
correct = {}
for name, d in (
    ("one_epoch_5e-5", "/tmp/runs/news/prompt_tuned"),
    ("lr_1e-4", "/tmp/runs/news_tune_lr1e-4"),
    ("three_epochs", "/tmp/runs/news_tune_ep3"),
):
    p = ws.split_predictions(ws.load_classifier(d), torch.device("cpu"))
    out[name] = ws.split_metrics(p)
    correct[name] = {s: ws.correct(s, p[s]) for s in ("validation", "test")}
for other in ("lr_1e-4", "three_epochs"):
    out[f"{other}_minus_one_epoch_5e-5"] = {
        s: paired_bootstrap(correct[other][s], correct["one_epoch_5e-5"][s]) for s in ("validation", "test")
    }
print(json.dumps(out, indent=1))
Path(sys.argv[1]).write_text(json.dumps(out, indent=1) + "\n")
