"""Condensation settings on one prompt-tuned model, judged on the validation split.

Every setting prunes the same prompt-tuned model with the same neuron scores and head/layer exchange
rate (read from a finished ``skeleton compress`` directory that searched over FFN neurons, heads and
layers) at one predicted latency fraction, condenses it and evaluates it; validation accuracy is what
a default is chosen on, test accuracy is reported beside it. The teacher's logits are computed once.

    python benchmarks/condensation_sweep.py --from exported_models/sst2-2x --sweep prompt-length \\
        --task sst2 --data-dir ../shared/data/sst2 --output benchmarks/sweeps/condensation_prompt_length_sst2.json

Sweeps: ``prompt-length`` (4 / 8 / 12 / 20 prompt tokens at 2x, distilled full condensation),
``modes`` (prompt, distilled LoRA, distilled full at 2x, 8 tokens), ``curve`` (prompt-only against
distilled LoRA at predicted speed-ups 1.5 / 2 / 2.5 / 3, 8 tokens).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from skeleton.core.config import CompressConfig, DataConfig, ModelConfig, SearchConfig, default_condense_config
from skeleton.core.evaluation import predict_logits
from skeleton.core.file_names import PROMPT_TUNED_DIR, REPORT_FILE, SCORES_FILE
from skeleton.core.progress import Reporter
from skeleton.core.scores_and_plans import NeuronScores
from skeleton.core.statistics import paired_bootstrap
from skeleton.core.workspace import Workspace
from skeleton.measure.latency import cost_model
from skeleton.method.planning import Planner
from skeleton.method.tuning import train_prompt

FULL = dict(trains="full", distill=0.5, backbone_lr=1e-4)
LORA = dict(trains="lora", distill=0.5, backbone_lr=1e-3)
PROMPT = dict(trains="prompt", distill=0.0)
SWEEPS = {
    "prompt-length": [dict(speedup=2.0, tokens=t, **FULL) for t in (4, 8, 12, 20)],
    "modes": [dict(speedup=2.0, tokens=8, **m) for m in (PROMPT, LORA, FULL)],
    "curve": [dict(speedup=s, tokens=8, **m) for s in (2.0, 3.0, 1.5, 2.5) for m in (PROMPT, LORA)],
}


def _teacher(workspace: Workspace, classifier, path: Path, device) -> torch.Tensor:
    if path.is_file():
        return load_file(str(path))["logits"]
    logits = predict_logits(classifier, workspace.train, device, 128, workspace.pad_token_id)
    save_file({"logits": logits.contiguous()}, str(path))
    return logits


def _planner(source: Path, setting: dict, workspace: Workspace, classifier, reporter) -> Planner:
    """The planner the source run used (its scores and exchange rate), at the setting's prompt length."""
    report = json.loads((source / REPORT_FILE).read_text())
    config = CompressConfig(
        data=workspace.data_config,
        targets=tuple(report["config"]["targets"]),
        condensed_prompt_tokens=setting["tokens"],
        search=SearchConfig(target_speedup=setting["speedup"]),
    )
    scores = NeuronScores.load(source / SCORES_FILE)
    prompt = classifier.num_virtual_tokens
    shapes = [tuple(s) for s in report["config"]["cost_shapes"]]
    costs = cost_model(classifier.backbone, shapes, prompt, setting["tokens"], reporter=reporter)
    planner = Planner(scores, config, costs)
    planner.use(report["head_weight_calibration"]["weights"])
    return planner


def run(args) -> dict:
    device = torch.device("cpu")
    reporter = Reporter(enabled=not args.quiet)
    workspace = Workspace.open(DataConfig(args.task, args.data_dir), ModelConfig(), device, reporter)
    source = Path(args.source)
    classifier = workspace.load_classifier(source / PROMPT_TUNED_DIR)
    teacher = _teacher(workspace, classifier, Path(args.output).with_suffix(".teacher.safetensors"), device)
    train = workspace.train.with_teacher(teacher)
    baseline = workspace.split_predictions(classifier, device)
    rows = []
    for setting in SWEEPS[args.sweep]:
        planner = _planner(source, setting, workspace, classifier, reporter)
        pruned, plan = planner.prune(classifier, 1.0 / setting["speedup"])
        fields = {k: setting[k] for k in ("trains", "distill", "backbone_lr") if k in setting}
        condense = replace(default_condense_config(), **fields, steps=args.steps)
        started = time.perf_counter()
        result = train_prompt(pruned, train, workspace.validation, condense, device, workspace.pad_token_id, reporter)
        seconds = time.perf_counter() - started
        predictions = workspace.split_predictions(pruned, device)
        row = {**setting, "steps": result.steps, "condensation_seconds": seconds, "kept_layers": plan.kept_layers}
        row["kept_heads"], row["kept_sizes"] = plan.kept_heads, plan.kept_sizes
        for split in ("validation", "test"):
            correct = workspace.correct(split, predictions[split])
            row[split] = 100.0 * float(correct.mean())
            row[f"{split}_difference"] = paired_bootstrap(correct, workspace.correct(split, baseline[split]))
        rows.append(row)
        print(json.dumps({k: row[k] for k in ("speedup", "tokens", "trains", "validation", "test", "steps")}))
        Path(args.output).write_text(json.dumps(_document(args, workspace, classifier, baseline, rows), indent=2))
    return _document(args, workspace, classifier, baseline, rows)


def _document(args, workspace, classifier, baseline, rows) -> dict:
    return {
        "what": f"condensation sweep '{args.sweep}' on the prompt-tuned model of {args.source}",
        "chosen_on": "validation split (test reported only)",
        "prompt_tuned": {split: 100.0 * float(workspace.correct(split, baseline[split]).mean()) for split in baseline},
        "condense_steps": args.steps,
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", required=True, help="a compress output directory (ffn,heads,layers)")
    parser.add_argument("--sweep", choices=sorted(SWEEPS), required=True)
    parser.add_argument("--task", default="sst2")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--steps", type=int, default=None, help="condensation steps (default: one epoch)")
    parser.add_argument("--output", required=True)
    parser.add_argument("--quiet", action="store_true")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
