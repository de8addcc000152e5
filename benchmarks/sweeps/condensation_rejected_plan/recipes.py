# ruff: noqa
# One-off script behind the JSON beside it, kept as it ran (paths of that session); run with PYTHONPATH at the repository.
"""Quick experiment: condense the sst2_lr2 search plan at VALUE with variant recipes (validation only)."""
import json, sys, time
from dataclasses import replace
from pathlib import Path
import torch
sys.path.insert(0, "/work/main/benchmarks")
import condensation_sweep as cs
from skeleton.core.config import DataConfig, ModelConfig, TrainConfig
from skeleton.core.progress import Reporter
from skeleton.core.workspace import Workspace
from skeleton.core.file_names import PROMPT_TUNED_DIR, REPORT_FILE
from skeleton.method.tuning import train_prompt

source = Path(sys.argv[1]); value = float(sys.argv[2]); variants = json.loads(sys.argv[3])
device = torch.device("cpu"); reporter = Reporter(enabled=False)
cfg = json.loads((source / REPORT_FILE).read_text())["config"]
ws = Workspace.open(DataConfig.from_dict(cfg["data"]), ModelConfig(**cfg["model"]), device, reporter)
clf = ws.load_classifier(source / PROMPT_TUNED_DIR)
teacher = cs._teacher(ws, clf, Path(f"/tmp/exp/{source.name}.teacher.safetensors"), device)
train = ws.train.with_teacher(teacher)
for v in variants:
    pruned, plan = cs._planner(source, {}, ws, clf, reporter).prune(clf, value)
    condense = TrainConfig(**cfg["condense"]); condense = replace(condense, head_lr=condense.backbone_lr, **v)
    t = time.perf_counter()
    r = train_prompt(pruned, train, ws.validation, condense, device, ws.pad_token_id, reporter)
    print(json.dumps({"value": value, **v, "val": r.best_validation_accuracy, "steps": r.steps,
                      "sec": round(time.perf_counter() - t), "heads": plan.kept_heads, "sizes": plan.kept_sizes}), flush=True)
