"""From a search value to a pruning plan: :class:`Planner` ranks the scored units (FFN neurons, and
with a latency table heads and whole layers, by score per unit of measured latency) and prunes a
copy of the prompt-tuned classifier to the plan for one search value.
"""

from __future__ import annotations

import copy
import math

import torch

from skeleton.core.config import CompressConfig
from skeleton.core.modeling import PromptedClassifier, shorten_prompt
from skeleton.core.scores_and_plans import NeuronScores, PruningPlan
from skeleton.method.pruning import Costs, apply_pruning, make_cost_plan, make_plan
from skeleton.method.search import KEPT_RATIO, LATENCY_FRACTION

# a screened calibration judges this many of its most accurate plans (benchmarks/results/LOG.md: on SST-2
# the three best after a third of a trial's condensation steps held the best after a trial's)
CALIBRATION_FINALISTS = 3


class Planner:
    """Turns a search value into a pruning plan and a pruned copy of the classifier.

    Without a cost model the value is the kept fraction of FFN neurons (the paper); with one it is
    the predicted latency of the Skeleton model over the prompt-tuned model's, and neurons and heads are
    ranked together by score per unit of measured latency.
    """

    HEAD_WEIGHTS = (1.0, 4.0, 16.0, 64.0, math.inf)  # inf: heads stay, only neurons go

    def __init__(self, scores: NeuronScores, config: CompressConfig, costs: Costs | None = None):
        self.scores = scores
        self.config = config
        self.costs = costs
        self.head_weight = 1.0
        self.prune_layers = "layers" in config.targets
        self.prompt_positions = None
        tokens = config.condensed_prompt_tokens
        if tokens is not None and scores.prompt is not None and tokens < len(scores.prompt):
            top = torch.argsort(scores.prompt, descending=True, stable=True)[:tokens]
            self.prompt_positions = sorted(int(i) for i in top)  # warm start: the highest-scoring positions

    @property
    def kind(self) -> str:
        """What this planner's search values are: kept ratios, or latency fractions with a cost model."""
        return KEPT_RATIO if self.costs is None else LATENCY_FRACTION

    def plan(self, value: float, backbone_config, **overrides) -> PruningPlan:
        settings = {"round_to": self.config.round_to, "bias_compensation": self.config.bias_compensation}
        settings.update(overrides)
        shape = {"hidden_size": backbone_config.hidden_size, "model_type": backbone_config.model_type}
        if self.costs is None:
            return make_plan(self.scores, value, prune_outputs="ffn-out" in self.config.targets, **shape, **settings)
        weight = settings.pop("head_weight", self.head_weight)
        prune_layers = settings.pop("prune_layers", self.prune_layers)
        prune_heads = "heads" in self.config.targets and math.isfinite(weight)
        weight = weight if math.isfinite(weight) else 1.0
        return make_cost_plan(
            self.scores,
            value,
            self.costs,
            prune_heads=prune_heads,
            head_weight=weight,
            prune_layers=prune_layers,
            **shape,
            **settings,
        )

    def prune(self, classifier: PromptedClassifier, value: float, shorten: bool = True, **overrides):
        """A copy of ``classifier`` pruned by the plan for ``value`` (prompt shortened when asked)."""
        pruned = copy.deepcopy(classifier)
        plan = self.plan(value, pruned.backbone.config, **overrides)
        apply_pruning(pruned.backbone, plan, self.scores)
        if shorten and self.prompt_positions is not None:
            pruned = shorten_prompt(pruned, self.prompt_positions)
        return pruned, plan

    def candidates(self) -> list[dict]:
        """The exchange rates a calibration tries: head weights (with heads) x whole layers on/off."""
        weights = self.HEAD_WEIGHTS if "heads" in self.config.targets else (1.0,)
        layers = (False, True) if "layers" in self.config.targets else (False,)
        return [{"head_weight": w, "prune_layers": on} for w in weights for on in layers]

    def calibrate(
        self, classifier: PromptedClassifier, value: float, judge, screen=None, finalists: int = CALIBRATION_FINALISTS
    ) -> list[dict]:
        """Choose how heads and whole layers rank against neurons, on validation.

        First-order attribution underrates what removing a whole head or layer costs. At the latency
        fraction ``value``, each candidate of :meth:`candidates` gives a plan (a higher head weight keeps
        more heads and removes more neurons; whole layers removable or not), pruned as a search trial
        prunes. ``judge(pruned, plan)`` gives its validation accuracy (after a trial's short condensation,
        where compress can afford one), once per distinct plan; the most accurate candidate is kept for the
        search, the first of equals in the order of :meth:`candidates` (whole layers kept, fewest heads).

        With ``screen`` (a cheaper ``judge``: a shorter condensation, which trains the copy it is given),
        every distinct plan is screened first and only the ``finalists`` most accurate there (the first of
        equals) are pruned afresh and judged; the others' rows carry their screening accuracy and no
        validation accuracy.
        """
        plans, rows = {}, []  # plan key -> {"candidate", and "screening" and/or "accuracy"}
        for candidate in self.candidates():
            pruned, plan = self.prune(classifier, value, **candidate)
            key = (tuple(plan.heads_per_layer([0] * len(plan.keep_indices))), tuple(plan.kept_sizes))
            if key not in plans:
                plans[key] = {"candidate": candidate}
                if screen is None:
                    plans[key]["accuracy"] = judge(pruned, plan)
                else:
                    plans[key]["screening"] = screen(pruned, plan)
            del pruned
            weight = candidate["head_weight"]
            rows.append(
                {
                    # JSON has no infinity: null stands for "heads stay"
                    "head_weight": weight if math.isfinite(weight) else None,
                    "prune_layers": candidate["prune_layers"],
                    "kept_heads": plan.kept_heads,
                    "kept_layers": plan.kept_layers,
                    "key": key,
                }
            )
        if screen is not None:
            for key in sorted(plans, key=lambda k: -plans[k]["screening"])[:finalists]:
                pruned, plan = self.prune(classifier, value, **plans[key]["candidate"])
                plans[key]["accuracy"] = judge(pruned, plan)
                del pruned
        for row in rows:
            judged = plans[row.pop("key")]
            if screen is not None:
                row["screening_accuracy"] = judged["screening"]
            row["validation_accuracy"] = judged.get("accuracy")
        self.use(rows)
        return rows

    def use(self, calibration: list[dict]) -> dict:
        """Adopt the best judged candidate of a calibration (the first of equals); returns its row."""
        best = best_calibrated(calibration)
        self.head_weight = math.inf if best["head_weight"] is None else best["head_weight"]
        self.prune_layers = bool(best.get("prune_layers", False))
        return best

    def describe(self, plan: PruningPlan) -> dict:
        """What a trial records of its plan: kept neurons and heads, predicted speed-ups."""
        details = {"kept_fraction": plan.kept_fraction}
        if plan.kept_heads is not None:
            details["kept_heads"] = plan.kept_heads
        if plan.kept_layers is not None:
            details["kept_layers"] = plan.kept_layers
        if self.costs is not None:
            details["predicted_speedup"] = self.costs.speedups(
                plan.heads_per_layer(self.costs.num_heads), plan.kept_sizes
            )
        return details


def best_calibrated(calibration: list[dict]) -> dict:
    """The most accurate judged row of a calibration (the first of equals); rows a screening left unjudged
    have no validation accuracy."""
    return max((row for row in calibration if calibration_accuracy(row) is not None), key=calibration_accuracy)


def calibration_accuracy(row: dict) -> float | None:
    """A calibration row's validation accuracy (reports before short condensation judged the candidates
    named it after the bias-adjusted accuracy they said they used)."""
    return row["validation_accuracy"] if "validation_accuracy" in row else row["bias_adjusted_validation_accuracy"]


def prune_classifier(classifier: PromptedClassifier, scores: NeuronScores, kept_ratio: float, config: CompressConfig):
    """A copy of ``classifier`` whose backbone keeps ``kept_ratio`` of the FFN neurons (prompt and head copied)."""
    return Planner(scores, config).prune(classifier, kept_ratio)
