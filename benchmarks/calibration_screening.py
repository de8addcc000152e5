"""How many condensation steps a calibration candidate needs for its rank.

Every distinct candidate plan of a finished ``skeleton compress`` run's head/layer calibration (its
scores, refitted cost model and calibration fraction) is condensed from the run's own teacher with the
run's condensation recipe for each step budget, and validated: whether a short screening ranks the plans
as the trial-length condensation does. Validation only; nothing here reads the test split.

    python benchmarks/calibration_screening.py --from /tmp/runs/sst2_fast --steps 156,52 \\
        --output benchmarks/sweeps/calibration_screening/sst2.json
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from benchmarks.condensation_sweep import _planner, _teacher
from skeleton.core.config import DataConfig, ModelConfig, TrainConfig
from skeleton.core.file_names import PROMPT_TUNED_DIR, REPORT_FILE
from skeleton.core.machine import describe_cpu
from skeleton.core.progress import SILENT
from skeleton.core.workspace import Workspace
from skeleton.method.tuning import train_prompt


def run(source: Path, budgets: list[int], output: Path) -> dict:
    report = json.loads((source / REPORT_FILE).read_text())
    config, device = report["config"], torch.device("cpu")
    workspace = Workspace.open(DataConfig.from_dict(config["data"]), ModelConfig(**config["model"]), device, SILENT)
    classifier = workspace.load_classifier(source / PROMPT_TUNED_DIR)
    teacher = _teacher(workspace, classifier, output.with_suffix(".teacher.safetensors"), device)
    train = workspace.train.with_teacher(teacher)
    planner = _planner(source, {}, workspace, classifier, SILENT)
    fraction = report["head_weight_calibration"]["fraction"]
    rows, seen = [], set()
    for candidate in planner.candidates():
        pruned, plan = planner.prune(classifier, fraction, **candidate)
        key = json.dumps([plan.kept_sizes, plan.kept_heads, plan.kept_layers])
        if key in seen:
            continue
        seen.add(key)
        row = {**candidate, "kept_layers": plan.kept_layers, "kept_heads": plan.kept_heads}
        for steps in budgets:
            condense = replace(TrainConfig(**config["condense"]), steps=steps)
            started = time.perf_counter()
            result = train_prompt(
                copy.deepcopy(pruned), train, workspace.validation, condense, device, workspace.pad_token_id
            )
            row[f"validation_{steps}_steps"] = result.best_validation_accuracy
            row[f"seconds_{steps}_steps"] = time.perf_counter() - started
        print(json.dumps(row), flush=True)
        rows.append(row)
    document = {
        "what": f"each distinct calibration plan of {source} condensed for {budgets} steps",
        "fraction": fraction,
        "chosen_on": "validation split (the test split is not read)",
        "machine": describe_cpu(),
        "rows": rows,
    }
    output.write_text(json.dumps(document, indent=1, default=str))
    return document


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", required=True, help="a compress output directory")
    parser.add_argument("--steps", required=True, help="comma-separated step budgets, e.g. 156,52")
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    run(Path(args.source), [int(s) for s in args.steps.split(",")], Path(args.output))


if __name__ == "__main__":
    main()
