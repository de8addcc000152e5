"""Does distilling the teacher's head features, beside its logits, condense a plan better?

Condensation distils the teacher's logits (two numbers a row on SST-2). What the head's linear layer reads (the
pooled, activated vector: 384 numbers on the default model) says far more of what the teacher computed, and costs
next to nothing to learn from: the teacher's pass that gives the logits gives it too, and matching it is one mean
squared error on a vector the student computes anyway. This condenses the shipped plan of a default run again in
full (its teacher in ``prompt_tuned``, ``pruning_plan.json`` and ``neuron_scores.safetensors``) with the recipe
the run condensed with (SST-2: two epochs over 45,894 rows in bf16; MRPC: its floor of 600 steps), the teacher's
logits and features computed in that precision as a run computes its logits, and the loss plus ``WEIGHT`` x the
features' mean squared error over the teacher's mean per-dimension variance (the share of the teacher's feature
variance the student misses). Every validation checkpoint is recorded with the test split's accuracy beside it:
the checkpoint kept is chosen on validation; test is reported only. WEIGHT 0 is the product's condensation.

    python benchmarks/sweeps/feature_distillation/features.py RUN_DIR WEIGHT OUT.json
"""

import json
import sys
import time
from pathlib import Path

import torch
from torch import nn

import skeleton.method.tuning as tuning
from benchmarks.condense_again import scoring_test_at_checkpoints, shipped_plan
from skeleton.core.batching import iterate_batches
from skeleton.core.config import TrainConfig
from skeleton.core.machine import describe_cpu
from skeleton.core.precision import autocast

CPU = torch.device("cpu")
run, weight, out = Path(sys.argv[1]), float(sys.argv[2]), Path(sys.argv[3])
report, workspace, teacher, pruned = shipped_plan(run)
condense = TrainConfig(**report["config"]["condense"])  # the recipe the run condensed with
pad = workspace.pad_token_id
labels = teacher.head_config.num_labels


def logits_and_features(classifier, batch):
    """(logits, what the head's linear layer read): the classifier's forward pass, kept apart at the head."""
    hidden, mask = classifier.hidden_states(**batch.inputs())
    start = hidden.shape[1] - batch.input_ids.shape[1]
    features = classifier.head.features(hidden[:, start:], mask[:, start:])
    return classifier.head.classifier(classifier.head.dropout(features)), features


@torch.no_grad()
def teacher_targets(split):
    """(rows, labels + features): the teacher's logits, then its features, carried as its "logits"."""
    teacher.eval()
    targets = torch.zeros(len(split), labels + teacher.head.classifier.in_features)
    for batch in iterate_batches(split, condense.eval_batch_size, pad, shuffle=False):
        logits, features = logits_and_features(teacher, batch)
        targets[batch.indices] = torch.cat([logits, features], dim=1).float()
    return targets


rows, more = workspace.train, workspace.more_training_rows((condense.max_samples or 0) - len(workspace.train))
rows = rows if more is None else rows.concatenated(more)  # a full condensation's rows (Condensation.full_rows)
with autocast(CPU, condense.precision):
    rows = rows.with_teacher(teacher_targets(rows))
variance = rows.teacher_logits[:, labels:].var(dim=0).mean()


def step(classifier, batch, config, optimizer, parameters):
    """tuning._step with the features' loss added (the same loss as the product's at WEIGHT 0)."""
    with autocast(batch.input_ids.device, config.precision):
        logits, features = logits_and_features(classifier, batch)
        targets = batch.teacher_logits
        loss = (1.0 - config.distill) * nn.functional.cross_entropy(logits.float(), batch.labels)
        loss = loss + config.distill * tuning.distillation_loss(logits, targets[:, :labels], config.temperature)
        if weight:
            loss = loss + weight * nn.functional.mse_loss(features.float(), targets[:, labels:]) / variance
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(parameters, 1.0)
    optimizer.step()
    return loss, logits


checkpoints = scoring_test_at_checkpoints(workspace)


tuning._step = step
started = time.perf_counter()
result = tuning.train_prompt(pruned, rows, workspace.validation, condense, CPU, pad, validate_start=False)
best = max(range(len(checkpoints)), key=lambda i: checkpoints[i]["validation_accuracy"])
record = {
    "run": f"the default {report['task']} run of code {report['versions'].get('skeleton_commit')}: its teacher, "
    "plan and scores",
    "feature_weight": weight,
    "plan": {key: report[key] for key in ("kept_layers", "kept_heads", "kept_sizes")},
    "teacher": {s: report["prompt_tuned"][s]["accuracy"] for s in ("validation", "test")},
    "rows": len(rows),
    "steps": result.steps,
    "checkpoints": checkpoints,
    "best_by_validation": best,
    "kept": checkpoints[best],
    "seconds": time.perf_counter() - started,
    "machine": describe_cpu(),
}
out.write_text(json.dumps(record, indent=2) + "\n")
print(json.dumps({k: v for k, v in record.items() if k != "machine"}, indent=2))
