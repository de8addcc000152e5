"""Condensation settings on one prompt-tuned model, judged on the validation split.

Every setting prunes the same prompt-tuned model with the same neuron scores and head/layer exchange
rate (read from a finished ``skeleton compress`` directory that searched over FFN neurons, heads and
layers) at one predicted latency fraction, condenses it and evaluates it; validation accuracy is what
a default is chosen on, test accuracy is reported beside it. The teacher's logits are computed once.

    python benchmarks/condensation_sweep.py --from exported_models/sst2-2x --sweep prompt-length \\
        --task sst2 --data-dir ../shared/data/sst2 --output benchmarks/sweeps/condensation_prompt_length_sst2.json

Sweeps: ``prompt-length`` (4 / 8 / 12 / 20 prompt tokens at 2x, distilled full condensation),
``modes`` (prompt, distilled LoRA, distilled full at 2x, 8 tokens), ``curve`` (prompt-only against
distilled LoRA at predicted speed-ups 1.5 / 2 / 2.5 / 3, 8 tokens), ``epochs`` (the source run's own
shipped plan, ``pruning_plan.json``, condensed with its own recipe for 1 / 2 / 3 / 4 epochs: what a
longer condensation buys on a small training split), ``floor`` (that plan, one epoch raised to 600 steps),
``recipe`` (the distillation weight 0.5 / 1.0 and the backbone's learning rate 1e-4 / 2e-4, on the shipped
plan or, with ``--value V``, the plan the source run's search made at value V: its refitted cost model and
head/layer exchange rate, so a trial the search rejected can be condensed again; with ``--thin L:H:N``, a plan
made by hand: the first L layers, each with its H best-scored heads and N best-scored FFN neurons, the others
removed, to condense a plan the search's planner would not make).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from dataclasses import replace
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from skeleton.core.config import (
    CompressConfig,
    DataConfig,
    ModelConfig,
    SearchConfig,
    TrainConfig,
    default_condense_config,
    tuned_teacher,
)
from skeleton.core.evaluation import predict_logits
from skeleton.core.file_names import PLAN_FILE, PROMPT_TUNED_DIR, REPORT_FILE, SCORES_FILE
from skeleton.core.progress import Reporter
from skeleton.core.scores_and_plans import NeuronScores, PruningPlan
from skeleton.core.statistics import paired_bootstrap
from skeleton.core.workspace import Workspace
from skeleton.measure.latency import cost_model
from skeleton.method.planning import Planner
from skeleton.method.pruning import apply_pruning
from skeleton.method.tuning import train_prompt

FULL = dict(trains="full", distill=0.5, backbone_lr=1e-4)
LORA = dict(trains="lora", distill=0.5, backbone_lr=1e-3)
PROMPT = dict(trains="prompt", distill=0.0)
SWEEPS = {
    "prompt-length": [dict(speedup=2.0, tokens=t, **FULL) for t in (4, 8, 12, 20)],
    "modes": [dict(speedup=2.0, tokens=8, **m) for m in (PROMPT, LORA, FULL)],
    "curve": [dict(speedup=s, tokens=8, **m) for s in (2.0, 3.0, 1.5, 2.5) for m in (PROMPT, LORA)],
    "epochs": [dict(epochs=e, shipped_plan=True) for e in (1, 2, 3, 4)],
    "floor": [dict(epochs=1, min_steps=600, shipped_plan=True)],
    "recipe": [dict(recipe=True, distill=d, backbone_lr=lr) for d in (0.5, 1.0) for lr in (1e-4, 2e-4)],
}


def _teacher(workspace: Workspace, classifier, path: Path, device) -> torch.Tensor:
    if path.is_file():
        return load_file(str(path))["logits"]
    logits = predict_logits(classifier, workspace.train, device, 128, workspace.pad_token_id)
    save_file({"logits": logits.contiguous()}, str(path))
    return logits


def _planner(source: Path, setting: dict, workspace: Workspace, classifier, reporter) -> Planner:
    """The planner the source run used (its scores, exchange rate and, when it refitted its cost model to
    timed plans, that refit), at the setting's prompt length (default: the run's own)."""
    report = json.loads((source / REPORT_FILE).read_text())
    tokens = setting.get("tokens", report["config"]["condensed_prompt_tokens"])
    config = CompressConfig(
        data=workspace.data_config,
        targets=tuple(report["config"]["targets"]),
        condensed_prompt_tokens=tokens,
        search=SearchConfig(target_speedup=setting.get("speedup")),
    )
    scores = NeuronScores.load(source / SCORES_FILE)
    prompt = classifier.num_virtual_tokens
    shapes = [tuple(s) for s in report["config"]["cost_shapes"]]
    sequences = 2 if classifier.head_config.separate_pairs else 1  # a bi-encoder runs both sentences
    costs = cost_model(
        classifier.backbone, shapes, prompt, tokens or prompt, reporter=reporter, sequences_per_input=sequences
    )
    refit = (report.get("cost_model") or {}).get("refit")
    if refit and "tokens" not in setting:
        costs = costs.refitted(refit["points"])
    planner = Planner(scores, config, costs)
    planner.use(report["head_weight_calibration"]["weights"])
    return planner


def _thin_plan(source: Path, classifier, layers: int, heads: int, neurons: int):
    """A copy of the prompt-tuned classifier pruned to the first ``layers`` layers, each keeping its ``heads``
    best-scored attention heads and ``neurons`` best-scored FFN neurons (by the source run's scores, with its
    bias compensation), and the plan."""
    shipped = PruningPlan.load(source / PLAN_FILE)
    scores = NeuronScores.load(source / SCORES_FILE)
    total = len(scores.ffn)
    if scores.heads is None:
        raise SystemExit(f"--thin: {source} scored no attention heads")
    head_counts = [len(layer_scores) for layer_scores in scores.heads]
    width = min(len(layer) for layer in scores.ffn)
    if layers > total or heads > min(head_counts) or neurons > width:
        raise SystemExit(f"--thin: {source} has {total} layers of {min(head_counts)} heads and {width} neurons")

    def best(values: torch.Tensor, count: int) -> list[int]:
        return sorted(torch.topk(values, count).indices.tolist())

    plan = replace(
        shipped,
        keep_indices=[best(scores.ffn[i], neurons) if i < layers else [] for i in range(total)],
        out_keep_indices=None,
        num_heads=head_counts,
        head_keep_indices=[best(scores.heads[i], heads) if i < layers else [] for i in range(total)],
        kept_layers=list(range(layers)),
        latency_fraction=None,
    )
    pruned = copy.deepcopy(classifier)
    apply_pruning(pruned.backbone, plan, scores)
    return pruned, plan


def _shipped_plan(source: Path, classifier):
    """A copy of the prompt-tuned classifier pruned to the source run's shipped plan, and the plan."""
    plan = PruningPlan.load(source / PLAN_FILE)
    pruned = copy.deepcopy(classifier)
    apply_pruning(pruned.backbone, plan, NeuronScores.load(source / SCORES_FILE))
    return pruned, plan


def _recipe_plan(args, source: Path, workspace: Workspace, classifier, reporter):
    """The plan the recipe sweep condenses, and the classifier pruned to it: ``--thin``'s hand-made plan, the
    plan the source run's search made at ``--value``, or the shipped one."""
    if args.thin is not None:
        return _thin_plan(source, classifier, *args.thin)
    if args.value is None:
        return _shipped_plan(source, classifier)
    return _planner(source, {}, workspace, classifier, reporter).prune(classifier, args.value)


def run(args) -> dict:
    device = torch.device("cpu")
    reporter = Reporter(enabled=not args.quiet)
    source = Path(args.source)
    source_config = json.loads((source / REPORT_FILE).read_text())["config"]
    if args.data_dir is None:  # the source run's own data, splits and model settings
        data, model = DataConfig.from_dict(source_config["data"]), ModelConfig(**source_config["model"])
    else:
        data, model = DataConfig(args.task, args.data_dir), ModelConfig()
    if args.train_samples is not None:  # the rows condensation distils on (0: every training row)
        data = replace(data, train_samples=args.train_samples or None)
    workspace = Workspace.open(data, model, device, reporter)
    classifier = workspace.load_classifier(source / PROMPT_TUNED_DIR)
    teacher = _teacher(workspace, classifier, Path(args.output).with_suffix(".teacher.safetensors"), device)
    train = workspace.train.with_teacher(teacher)
    baseline = workspace.split_predictions(classifier, device)
    rows = []
    for setting in SWEEPS[args.sweep]:
        if args.only and (setting.get("distill"), setting.get("backbone_lr")) not in args.only:
            continue
        if setting.get("recipe"):
            pruned, plan = _recipe_plan(args, source, workspace, classifier, reporter)
            fields = {k: setting[k] for k in ("distill", "backbone_lr")}
            condense = replace(TrainConfig(**source_config["condense"]), **fields)
            if args.epochs is not None:
                condense = replace(condense, epochs=args.epochs)
            if args.steps is not None:  # a search trial's short condensation
                condense = replace(condense, steps=args.steps)
            if tuned_teacher(source_config["tune"]["trains"], source_config.get("teacher")):
                condense = replace(condense, head_lr=condense.backbone_lr)  # as compress trains a tuned head
        elif setting.get("shipped_plan"):
            pruned, plan = _shipped_plan(source, classifier)
            recipe = TrainConfig(**source_config["condense"])
            condense = replace(recipe, epochs=setting["epochs"], steps=None, min_steps=setting.get("min_steps"))
        else:
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
        row["history"] = result.history  # every validation checkpoint: is the plan still learning at the end?
        for split in ("validation", "test"):
            correct = workspace.correct(split, predictions[split])
            row[split] = 100.0 * float(correct.mean())
            row[f"{split}_difference"] = paired_bootstrap(correct, workspace.correct(split, baseline[split]))
        rows.append(row)
        row["value"], row["train_rows"], row["epochs"] = args.value, len(train), condense.epochs
        row["thin"] = args.thin
        shown = ("speedup", "tokens", "trains", "epochs", "train_rows", "distill", "backbone_lr", "validation", "test")
        shown += ("steps",)
        print(json.dumps({k: row.get(k) for k in shown}))
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


def _thin_spec(text: str) -> tuple[int, int, int]:
    """``--thin``'s LAYERS:HEADS:NEURONS, three positive whole numbers."""
    parts = text.split(":")
    if len(parts) != 3 or not all(part.isdigit() and int(part) > 0 for part in parts):
        raise argparse.ArgumentTypeError(f"expected LAYERS:HEADS:NEURONS, three positive numbers, got {text!r}")
    layers, heads, neurons = (int(part) for part in parts)
    return layers, heads, neurons


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", required=True, help="a compress output directory (ffn,heads,layers)")
    parser.add_argument("--sweep", choices=sorted(SWEEPS), required=True)
    parser.add_argument("--task", default="sst2")
    parser.add_argument("--data-dir", help="default: the source run's own data and model settings")
    parser.add_argument("--steps", type=int, default=None, help="condensation steps (default: one epoch)")
    parser.add_argument("--value", type=float, help="recipe: the plan at this search value (default: the shipped plan)")
    parser.add_argument(
        "--only",
        type=lambda text: [tuple(float(v) for v in pair.split(":")) for pair in text.split(",")],
        help="recipe: only these distill:backbone_lr settings, e.g. 0.5:2e-4",
    )
    parser.add_argument(
        "--train-samples", type=int, help="recipe: the training rows distilled on (0: all; default: the run's own)"
    )
    parser.add_argument("--epochs", type=float, help="recipe: condensation epochs (default: the run's own)")
    parser.add_argument(
        "--thin",
        type=_thin_spec,
        help="recipe: a hand-made plan instead, LAYERS:HEADS:NEURONS (the first layers, their best heads, neurons)",
    )
    parser.add_argument("--output", required=True)
    parser.add_argument("--quiet", action="store_true")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
