# ruff: noqa
# One-off script behind sst2_050.json; paths of that session (/work/main, /tmp/exp). The runs used two copies of it,
# one without the feature term; merged here: a variant without "beta" is the plain recipe. Run with PYTHONPATH at the
# repository: python condense_again.py RUN_DIR VALUE '[{}, {"epochs": 2.0}, {"beta": 10.0}]'
"""Condense the plan a compress run's search made at VALUE again, with variant recipes (TrainConfig fields, and
"beta": the weight of an MSE to the teacher's pooled features, what its head reads); validation only."""

import json, sys, time
from dataclasses import replace
from pathlib import Path
import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, "/work/main/benchmarks")
import condensation_sweep as cs
import skeleton.method.tuning as tuning
from skeleton.core.config import DataConfig, ModelConfig, TrainConfig
from skeleton.core.progress import Reporter
from skeleton.core.workspace import Workspace
from skeleton.core.file_names import PROMPT_TUNED_DIR, REPORT_FILE

source = Path(sys.argv[1])
value = float(sys.argv[2])
variants = json.loads(sys.argv[3])
device = torch.device("cpu")
reporter = Reporter(enabled=False)
cfg = json.loads((source / REPORT_FILE).read_text())["config"]
ws = Workspace.open(DataConfig.from_dict(cfg["data"]), ModelConfig(**cfg["model"]), device, reporter)
clf = ws.load_classifier(source / PROMPT_TUNED_DIR)
teacher = cs._teacher(ws, clf, Path(f"/tmp/exp/{source.name}.teacher.safetensors"), device)
train = ws.train.with_teacher(teacher)
feats = None
if any("beta" in v for v in variants):  # the teacher's pooled features, computed once, only when a variant uses them
    fpath = Path(f"/tmp/exp/{source.name}.features.safetensors")
    if fpath.is_file():
        feats = load_file(str(fpath))["f"]
    else:
        feats = tuning.pooled_features(clf, ws.train, device, 128, ws.pad_token_id)
        save_file({"f": feats.contiguous()}, str(fpath))
    print("feature mean square", float(feats.pow(2).mean()), flush=True)
STATE = {"beta": 0.0}
orig = tuning._step


def step(classifier, batch, config, optimizer, parameters):
    if STATE["beta"] == 0:
        return orig(classifier, batch, config, optimizer, parameters)
    hidden, mask = classifier.hidden_states(**batch.inputs())
    n = hidden.shape[1] - batch.input_ids.shape[1]
    f = classifier.head.features(hidden[:, n:], mask[:, n:])
    logits = classifier.head.classifier(classifier.head.dropout(f))
    target = feats[batch.indices].to(f.device)
    loss = tuning._loss(logits, batch, config) + STATE["beta"] * torch.nn.functional.mse_loss(f.float(), target)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(parameters, 1.0)
    optimizer.step()
    return loss, logits


tuning._step = step
for v in variants:
    v = dict(v)
    beta = v.pop("beta", None)
    STATE["beta"] = beta or 0.0
    pruned, plan = cs._planner(source, {}, ws, clf, reporter).prune(clf, value)
    condense = TrainConfig(**cfg["condense"])
    condense = replace(condense, head_lr=condense.backbone_lr, **v)
    t = time.perf_counter()
    r = tuning.train_prompt(pruned, train, ws.validation, condense, device, ws.pad_token_id, reporter)
    row = {
        "value": value,
        **({} if beta is None else {"beta": beta}),
        **v,
        "val": r.best_validation_accuracy,
        "steps": r.steps,
        "sec": round(time.perf_counter() - t),
    }
    if beta is None:
        row |= {"heads": plan.kept_heads, "sizes": plan.kept_sizes}
    print(json.dumps(row), flush=True)
