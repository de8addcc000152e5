"""The heads-and-layers calibration's candidates of a finished compress run, judged four ways on validation.

At the calibration's latency fraction (0.50), each candidate plan of the run's planner (its neuron scores and
refitted cost model) is judged by: plain accuracy before condensation (what the calibration computed until
90a5b84), bias-adjusted accuracy before condensation (what it said it computed), a logistic-regression probe
on the pooled features (2,048 training rows), and the best validation accuracy of a condensation for the
search's trial budget (once per distinct plan): what the search's own trials go by.

    python benchmarks/sweeps/calibration_judges_sst2/calibration_judges.py RUN_DIR OUT.json
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from skeleton.core.config import CompressConfig, DataConfig, ModelConfig, TrainConfig
from skeleton.core.evaluation import bias_adjusted_accuracy, predict_logits
from skeleton.core.progress import Reporter
from skeleton.core.scores_and_plans import NeuronScores
from skeleton.core.workspace import Workspace
from skeleton.measure.latency import cost_model
from skeleton.method.planning import Planner
from skeleton.method.tuning import fit_logistic, pooled_features, train_prompt

PROBE_ROWS, PROBE_C, FRACTION = 2048, (0.1, 1.0), 0.5


def planner_of(source: Path, workspace: Workspace, classifier, report: dict) -> tuple[Planner, CompressConfig]:
    """The run's planner: its scores, targets, prompt length and cost model refitted to its timed plans."""
    cfg = report["config"]
    tokens = cfg["condensed_prompt_tokens"]
    config = CompressConfig(data=workspace.data_config, targets=tuple(cfg["targets"]), condensed_prompt_tokens=tokens)
    prompt = classifier.num_virtual_tokens
    sequences = 2 if classifier.head_config.separate_pairs else 1
    shapes = [tuple(s) for s in cfg["cost_shapes"]]
    costs = cost_model(classifier.backbone, shapes, prompt, tokens or prompt, sequences_per_input=sequences)
    refit = (report.get("cost_model") or {}).get("refit")
    if refit:
        costs = costs.refitted(refit["points"])
    return Planner(NeuronScores.load(source / "neuron_scores.safetensors"), config, costs), config


def probe_accuracy(pruned, probe_train, workspace: Workspace, device) -> float:
    labels = torch.tensor(workspace.validation.labels)
    fit_x = pooled_features(pruned, probe_train, device, 128, workspace.pad_token_id)
    val_x = pooled_features(pruned, workspace.validation, device, 128, workspace.pad_token_id)
    best = 0.0
    for c in PROBE_C:
        linear = fit_logistic(fit_x, torch.tensor(probe_train.labels), pruned.head_config.num_labels, c)
        with torch.no_grad():
            best = max(best, 100.0 * float((linear(val_x).argmax(-1) == labels).float().mean()))
    return best


def main() -> None:
    source, out = Path(sys.argv[1]), Path(sys.argv[2])
    report = json.loads((source / "report.json").read_text())
    cfg, device = report["config"], torch.device("cpu")
    workspace = Workspace.open(DataConfig.from_dict(cfg["data"]), ModelConfig(**cfg["model"]), device, Reporter(False))
    classifier = workspace.load_classifier(source / "prompt_tuned")
    planner, config = planner_of(source, workspace, classifier, report)
    teacher_path = out.with_suffix(".teacher.safetensors")
    if not teacher_path.is_file():
        logits = predict_logits(classifier, workspace.train, device, 128, workspace.pad_token_id)
        save_file({"logits": logits.contiguous()}, str(teacher_path))
    train = workspace.train.with_teacher(load_file(str(teacher_path))["logits"])
    generator = torch.Generator().manual_seed(0)
    order = torch.randperm(len(workspace.train), generator=generator)
    probe_train = workspace.train.select(order[:PROBE_ROWS].tolist())
    steps = config.trial_budget(len(workspace.train))
    condense = replace(TrainConfig(**cfg["condense"]), steps=steps)
    labels, rows, condensed = torch.tensor(workspace.validation.labels), [], {}
    for candidate in planner.candidates():
        pruned, plan = planner.prune(classifier, FRACTION, **candidate)
        logits = predict_logits(pruned, workspace.validation, device, 128, workspace.pad_token_id)
        weight = candidate["head_weight"]
        row = {"head_weight": weight if weight != float("inf") else None, "prune_layers": candidate["prune_layers"]}
        row.update(kept_heads=plan.kept_heads, kept_layers=plan.kept_layers)
        row["plain"] = 100.0 * float((logits.argmax(-1) == labels).float().mean())
        row["bias_adjusted"] = bias_adjusted_accuracy(logits, labels)
        row["probe"] = probe_accuracy(pruned, probe_train, workspace, device)
        key = json.dumps([plan.kept_heads, plan.kept_sizes])
        if key not in condensed:
            started = time.perf_counter()
            result = train_prompt(pruned, train, workspace.validation, condense, device, workspace.pad_token_id)
            condensed[key] = result.best_validation_accuracy
            row["short_seconds"] = time.perf_counter() - started
        row["short"], row["short_steps"] = condensed[key], steps
        rows.append(row)
        print(json.dumps(row), flush=True)
        out.write_text(json.dumps({"source": str(source), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
