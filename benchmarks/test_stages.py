"""The pipeline's own stages on the default model: one scoring pass (20 instances, forward and
backward) and one search trial without condensation (prune, then score the validation split).

    pytest benchmarks/ --benchmark-only
"""

from __future__ import annotations

import torch


def test_one_scoring_pass(benchmark, workspace, classifier):
    from skeleton.core.batching import iterate_batches
    from skeleton.method.scoring import get_scorer

    samples = workspace.attribution_split(20, seed=42)
    scorer = get_scorer("attribution")

    def score():
        return scorer.score(classifier, iterate_batches(samples, 8, workspace.pad_token_id, False), torch.device("cpu"))

    scores = benchmark.pedantic(score, rounds=3, iterations=1)
    assert len(scores.ffn) == 6 and scores.num_samples == 20


def test_one_search_trial(benchmark, workspace, classifier):
    from skeleton.compression import CompressConfig
    from skeleton.core.batching import iterate_batches
    from skeleton.core.evaluation import evaluate
    from skeleton.method.planning import prune_classifier
    from skeleton.method.scoring import get_scorer

    samples = workspace.attribution_split(20, seed=42)
    batches = iterate_batches(samples, 8, workspace.pad_token_id, False)
    scores = get_scorer("attribution").score(classifier, batches, torch.device("cpu"))
    config = CompressConfig()

    def trial():
        pruned, plan = prune_classifier(classifier, scores, 0.3, config)
        return plan, evaluate(pruned, workspace.validation, torch.device("cpu"), 64, workspace.pad_token_id)

    plan, metrics = benchmark.pedantic(trial, rounds=3, iterations=1)
    assert abs(plan.kept_fraction - 0.3) < 0.01 and set(metrics) == {"accuracy"}
