"""Two tuned models of one pair task, each saved with its own head (``skeleton tune --head ...``, or
a compress run's ``prompt_tuned/``), compared on validation and test with paired bootstrap intervals.

    python benchmarks/compare_pair_heads.py --task mrpc --data-dir ../shared/data/mrpc \\
        --a exported_models/mrpc-all-MiniLM-L6-v2/prompt_tuned --b exported_models/mrpc-all-MiniLM-L6-v2-prompt \\
        --output benchmarks/sweeps/mrpc_cross_encoded_tune/heads_compared.json

Each model is evaluated through its own head's encoding (a bi-encoder's sentences apart, a cross-encoder's
templated pair); the data settings are the defaults, so the splits are the ones compress and tune used.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from skeleton.core.config import DataConfig, ModelConfig
from skeleton.core.statistics import paired_bootstrap
from skeleton.core.workspace import Workspace


def head_of(directory: Path) -> str:
    return json.loads((directory / "head_config.json").read_text())["kind"]


def evaluated(task: str, data_dir: str, directory: Path) -> tuple[dict, dict]:
    """(metrics, correct per row) of one saved prompt and head, on validation and test."""
    meta = json.loads((directory / "skeleton.json").read_text())  # how the model reads texts: prompt, template
    model = ModelConfig(
        head=head_of(directory), num_virtual_tokens=meta.get("num_virtual_tokens"), use_template=meta["use_template"]
    )
    workspace = Workspace(DataConfig(task, data_dir), model)
    classifier = workspace.load_classifier(directory)
    predictions = workspace.split_predictions(classifier, torch.device("cpu"))
    correct = {split: workspace.correct(split, predictions[split]) for split in ("validation", "test")}
    return workspace.split_metrics(predictions), correct


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="mrpc")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--a", required=True, type=Path, help="first model directory (prompt and head)")
    parser.add_argument("--b", required=True, type=Path, help="second model directory")
    parser.add_argument("--output", default=None, help="JSON file (default: print only)")
    args = parser.parse_args()
    (metrics_a, correct_a), (metrics_b, correct_b) = (evaluated(args.task, args.data_dir, d) for d in (args.a, args.b))
    result = {
        "a": {"head": head_of(args.a), **metrics_a},
        "b": {"head": head_of(args.b), **metrics_b},
        "a_minus_b": {split: paired_bootstrap(correct_a[split], correct_b[split]) for split in correct_a},
    }
    print(json.dumps(result, indent=2))
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
