"""Linear probes on the frozen default model for a pair task: what the prompt-tuned model is measured against.

1. cross-encoded: the templated pair in one sequence behind the (text-initialised, untrained) soft
   prompt, mean-pooled over the text positions, as the cls head reads it;
2. bi-encoded: each sentence encoded alone and mean-pooled (how all-MiniLM-L6-v2 was trained),
   features [u, v, |u - v|, u * v, cos].

Logistic regression (scikit-learn) with C chosen on validation; test is reported only.

    python benchmarks/probes_pair_task.py --task mrpc --data-dir ../shared/data/mrpc
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from skeleton.core.config import DataConfig, ModelConfig
from skeleton.core.workspace import Workspace
from skeleton.method.tuning import pooled_features

C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0)


def bi_encoded(workspace: Workspace, split) -> np.ndarray:
    backbone = workspace.load_backbone().eval()
    tokenizer = workspace.tokenizer
    embeddings = []
    for field in workspace.spec.text_fields:
        texts, rows = list(split[field]), []
        with torch.no_grad():
            for start in range(0, len(texts), 64):
                batch = tokenizer(texts[start : start + 64], padding=True, truncation=True, return_tensors="pt")
                hidden = backbone(**batch)[0]
                mask = batch["attention_mask"].unsqueeze(-1).float()
                rows.append(torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1))
        embeddings.append(torch.cat(rows).numpy())
    u, v = embeddings
    return np.hstack([u, v, np.abs(u - v), u * v, (u * v).sum(1, keepdims=True)])


def probe(features: dict, labels: dict) -> dict:
    fits = {c: LogisticRegression(C=c, max_iter=5000).fit(features["train"], labels["train"]) for c in C_GRID}
    best = max(C_GRID, key=lambda c: fits[c].score(features["validation"], labels["validation"]))
    result = {"C": best}
    for split in ("validation", "test"):
        predicted = fits[best].predict(features[split])
        result[split] = {
            "accuracy": 100 * float((predicted == labels[split]).mean()),
            "f1": 100 * float(f1_score(labels[split], predicted)),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="mrpc")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--output", default=None, help="JSON file (default: print only)")
    args = parser.parse_args()
    workspace = Workspace(DataConfig(args.task, args.data_dir), ModelConfig())
    classifier = workspace.new_classifier().eval()
    splits = ("train", "validation", "test")
    labels = {s: np.array(getattr(workspace, s).labels) for s in splits}
    cross = {
        s: pooled_features(classifier, getattr(workspace, s), torch.device("cpu"), 64, workspace.pad_token_id).numpy()
        for s in splits
    }
    bi = {s: bi_encoded(workspace, getattr(workspace.data, s)) for s in splits}
    result = {"cross_encoded": probe(cross, labels), "bi_encoded": probe(bi, labels)}
    print(json.dumps(result, indent=2))
    if args.output:
        with open(args.output, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
