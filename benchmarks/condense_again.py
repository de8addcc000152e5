"""For sweeps that condense a default run's shipped plan again: the run's teacher and its pruned copy, and the test
split scored at every validation checkpoint of a training."""

import copy
import json
from pathlib import Path

import skeleton.method.tuning as tuning
from skeleton.core.config import ModelConfig
from skeleton.core.data import DataConfig
from skeleton.core.evaluation import evaluate
from skeleton.core.scores_and_plans import NeuronScores, PruningPlan
from skeleton.core.workspace import Workspace
from skeleton.method.pruning import apply_pruning


def shipped_plan(run: Path):
    """(report, workspace, teacher, pruned) of a ``skeleton compress`` directory: its report, its data and model
    settings, its tuned teacher (``prompt_tuned``) and a copy of that teacher pruned to the shipped plan."""
    report = json.loads((run / "report.json").read_text())
    workspace = Workspace(DataConfig.from_dict(report["config"]["data"]), ModelConfig(**report["config"]["model"]))
    teacher = workspace.load_classifier(run / "prompt_tuned")
    pruned = copy.deepcopy(teacher)
    apply_pruning(
        pruned.backbone,
        PruningPlan.load(run / "pruning_plan.json"),
        NeuronScores.load(run / "neuron_scores.safetensors"),
    )
    return report, workspace, teacher, pruned


def scoring_test_at_checkpoints(workspace) -> list[dict]:
    """Make every validation checkpoint of ``tuning.train_prompt`` also score ``workspace.test`` (reported only:
    the checkpoint kept is still chosen on validation). Returns the list each checkpoint's
    ``{"validation_accuracy", "test_accuracy"}`` is appended to, in order."""
    checkpoints, validate = [], tuning._validate

    def validate_and_test(classifier, validation, device, config, pad_token_id):
        accuracy, predictions = validate(classifier, validation, device, config, pad_token_id)
        test = evaluate(classifier, workspace.test, device, config.eval_batch_size, pad_token_id)["accuracy"]
        checkpoints.append({"validation_accuracy": accuracy, "test_accuracy": test})
        return accuracy, predictions

    tuning._validate = validate_and_test
    return checkpoints
