"""Attribution against the paper's baselines (activation, gradient, random) at one kept ratio.

Scores the prompt-tuned model saved by ``skeleton compress`` (its ``prompt_tuned/``), prunes at
the same kept ratio with each scorer, and reports validation and test accuracy without
condensation, with plain removal and with bias compensation.

    python benchmarks/compare_scorers.py exported_models/sst2-all-MiniLM-L6-v2 [--ratio 0.5]
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from skeleton.batching import iterate_batches
from skeleton.data import DataConfig
from skeleton.device import resolve_device
from skeleton.layout import PROMPT_TUNED_DIR, REPORT_FILE
from skeleton.modeling import load_prompt_and_head
from skeleton.pruning import apply_pruning, make_plan
from skeleton.records import CompressReport
from skeleton.scoring import SCORERS, get_scorer
from skeleton.tuning import evaluate
from skeleton.workspace import ModelConfig, Workspace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--ratio", type=float, default=None, help="kept ratio (default: the run's chosen ratio)")
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--output", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()

    report = CompressReport.load(args.directory / REPORT_FILE)
    config = report.config
    ratio = args.ratio or report.kept_ratio
    device = resolve_device(args.device)
    workspace = Workspace(DataConfig(**config["data"]), ModelConfig(**config["model"]))
    classifier = load_prompt_and_head(
        workspace.load_backbone(), workspace.tokenizer, workspace.spec, args.directory / PROMPT_TUNED_DIR
    ).to(device)
    samples = workspace.attribution_split(args.samples, config["tune"]["seed"])
    results = []
    for name in SCORERS:
        started = time.perf_counter()
        scores = get_scorer(name, config["tune"]["seed"]).score(
            classifier, iterate_batches(samples, 8, workspace.pad_token_id, shuffle=False), device
        )
        for compensation in (False, True):
            pruned = copy.deepcopy(classifier)
            backbone = pruned.backbone
            plan = make_plan(
                scores,
                ratio,
                backbone.config.hidden_size,
                backbone.config.model_type,
                round_to=config["round_to"],
                bias_compensation=compensation,
            )
            apply_pruning(backbone, plan, scores)
            results.append(
                {
                    "scorer": name,
                    "bias_compensation": compensation,
                    "kept_ratio": ratio,
                    "kept_fraction": plan.kept_fraction,
                    "validation_accuracy": evaluate(pruned, workspace.validation, device)["accuracy"],
                    "test_accuracy": evaluate(pruned, workspace.test, device)["accuracy"],
                    "seconds": time.perf_counter() - started,
                }
            )
    table = Table(
        title=f"scorers at kept ratio {ratio:.2f}, no condensation "
        f"(prompt-tuned: validation {report['prompt_tuned']['validation']['accuracy']:.2f}, "
        f"test {report['prompt_tuned']['test']['accuracy']:.2f})"
    )
    for column in ("scorer", "bias compensation", "kept", "validation acc", "test acc"):
        table.add_column(column, justify="right")
    for row in results:
        table.add_row(
            row["scorer"],
            "yes" if row["bias_compensation"] else "no",
            f"{100 * row['kept_fraction']:.1f}%",
            f"{row['validation_accuracy']:.2f}",
            f"{row['test_accuracy']:.2f}",
        )
    Console().print(table)
    if args.output:
        args.output.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
