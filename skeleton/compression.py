"""``skeleton compress``: the paper's four steps end to end.

1. prior knowledge injection (prompt tuning, or a given tuned prompt),
2. quantification (a scorer ranks every FFN neuron),
3. localization (structured pruning, kept ratio found by binary search),
4. knowledge condensation (the prompt re-tuned on the slim model),

then the slim model is saved (and exported to ONNX). Work happens in a hidden directory beside the
output, with a checkpoint after every stage, so ``--resume`` continues after the last finished one
and a failure never leaves a half-written model under the output name.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from skeleton.artifacts import atomic_directory, library_versions, save_classifier
from skeleton.batching import iterate_batches
from skeleton.config import CompressConfig as CompressConfig
from skeleton.config import default_condense_config as default_condense_config
from skeleton.device import resolve_device
from skeleton.errors import SkeletonError
from skeleton.layout import PROMPT_TUNED_DIR, REPORT_FILE, SCORES_FILE, STAGES_DIR, STATE_FILE
from skeleton.modeling import PromptedClassifier, load_prompt_and_head, save_prompt_and_head, shorten_prompt
from skeleton.progress import SILENT, Reporter
from skeleton.pruning import (
    PruningPlan,
    apply_pruning,
    count_ffn_parameters,
    count_parameters,
    make_cost_plan,
    make_plan,
)
from skeleton.records import CompressReport, write_json
from skeleton.scoring import NeuronScores, ScoringContext, get_scorer
from skeleton.search import SearchResult, Trial, binary_search
from skeleton.statistics import paired_bootstrap
from skeleton.tuning import evaluate, model_slug, skeleton_meta, train_on
from skeleton.workspace import Workspace

if TYPE_CHECKING:
    from skeleton.latency import CostModel


class WeakPriorError(SkeletonError):
    """The prompt-tuned model does not beat the majority class: there is no task knowledge to localise."""


@dataclass
class CompressResult:
    output: str
    report: CompressReport


@dataclass
class Prior:
    """Step 1's result: the prompt-tuned model's metrics per split, its per-row predictions (for
    paired intervals, also after ``--resume``), how it was trained (``None``: a given prompt) and
    how long it took. Checkpointed as JSON."""

    validation: dict
    test: dict
    predictions: dict[str, list[int]]
    training: dict | None
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Prior:
        return cls(**{k: data[k] for k in ("validation", "test", "predictions", "training", "seconds")})


class _Checkpoint:
    """``state.json`` in the working directory: finished stages and their results."""

    def __init__(self, work: Path, config: CompressConfig, resume: bool):
        self.path = work / STATE_FILE
        self.stages = work / STAGES_DIR
        self.stages.mkdir(exist_ok=True)
        fingerprint = {
            k: v
            for k, v in config.to_dict().items()
            # settings that do not change what a finished stage computed may differ on --resume
            if k not in ("resume", "overwrite", "output", "device", "export", "min_gain", "allow_weak_prior")
        }
        self.state: dict = {"fingerprint": fingerprint, "done": {}}
        if resume and self.path.is_file():
            previous = json.loads(self.path.read_text())
            if previous.get("fingerprint") != json.loads(json.dumps(fingerprint, default=str)):
                raise SkeletonError(f"cannot resume: {self.path} was written with different settings")
            self.state = previous

    def done(self, stage: str) -> dict | None:
        return self.state["done"].get(stage)

    def finish(self, stage: str, result: dict) -> None:
        self.state["done"][stage] = result
        write_json(self.path, self.state)


def _prior(
    workspace: Workspace, config: CompressConfig, checkpoint: _Checkpoint, device, reporter: Reporter
) -> tuple[PromptedClassifier, Prior]:
    """Step 1: the prompt-tuned classifier on the unpruned backbone, and its metrics."""
    stage_dir = checkpoint.stages / "prior"
    done = checkpoint.done("prior")
    if done is not None:
        reporter.message("resume: reusing the prompt-tuned model")
        classifier = workspace.load_classifier(stage_dir)
        return classifier.to(device), Prior.from_dict(done)
    started = time.perf_counter()
    if config.prompt:
        reporter.message(f"step 1/4: reusing the tuned prompt in {config.prompt}")
        classifier = workspace.load_classifier(config.prompt)
        classifier.to(device)
        training = None
    else:
        reporter.message("step 1/4: prior knowledge injection (prompt tuning)")
        classifier = workspace.new_classifier(seed=config.tune.seed)
        training = train_on(workspace, classifier, config.tune, device, reporter, "prompt tuning").to_dict()
    predictions = workspace.split_predictions(classifier, device, config.tune.eval_batch_size)
    metrics = workspace.split_metrics(predictions)
    result = Prior(metrics["validation"], metrics["test"], predictions, training, time.perf_counter() - started)
    save_prompt_and_head(classifier, stage_dir)
    checkpoint.finish("prior", result.to_dict())
    return classifier, result


def _scores(workspace, config, checkpoint, classifier, device, reporter) -> NeuronScores:
    """Step 2: score every FFN neuron on ``attribution_samples`` training instances."""
    path = checkpoint.stages / SCORES_FILE
    if checkpoint.done("scores") is not None:
        return NeuronScores.load(path)
    reporter.message(f"step 2/4: scoring FFN neurons ({config.scorer}, {config.attribution_samples} samples)")
    started = time.perf_counter()
    # the head pass also scores the soft-prompt positions, which a shorter condensed prompt keeps
    targets = (*config.targets, "heads") if config.condensed_prompt_tokens else config.targets
    context = scoring_context(workspace, config, checkpoint.stages / "skill", reporter)
    scores = score_neurons(config.scorer, classifier, workspace, config, device, context, targets)
    scores.save(path)
    checkpoint.finish("scores", {"seconds": time.perf_counter() - started, "num_samples": scores.num_samples})
    return scores


def score_neurons(
    name: str,
    classifier: PromptedClassifier,
    workspace: Workspace,
    config: CompressConfig,
    device,
    context: ScoringContext,
    targets: tuple[str, ...] = ("ffn",),
    seed: int | None = None,
) -> NeuronScores:
    """Step 2's pass with scorer ``name``: the run's ``attribution_samples`` training instances, drawn
    with its seed (which also seeds the scorer unless ``seed`` is given)."""
    samples = workspace.attribution_split(config.attribution_samples, config.tune.seed)
    batches = iterate_batches(samples, 8, workspace.pad_token_id, shuffle=False)
    scorer = get_scorer(name, config.tune.seed if seed is None else seed)
    return scorer.score(classifier, batches, device, targets, context)


def scoring_context(workspace: Workspace, config: CompressConfig, cache: Path | None, reporter) -> ScoringContext:
    """What the skill and LCA scorers read: the splits, and how extra skill prompts are tuned (as step 1)."""
    return ScoringContext(workspace, config.tune, config.scorer_samples, config.skill_prompts, cache, reporter)


class Planner:
    """Turns a search value into a pruning plan and a pruned copy of the classifier.

    Without a cost model the value is the kept fraction of FFN neurons (the paper); with one it is
    the predicted latency of the slim model over the unpruned model's, and neurons and heads are
    ranked together by score per unit of measured latency.
    """

    HEAD_WEIGHTS = (1.0, 4.0, 16.0, 64.0, math.inf)  # inf: heads stay, only neurons go

    def __init__(self, scores: NeuronScores, config: CompressConfig, costs: CostModel | None = None):
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

    def calibrate(self, classifier: PromptedClassifier, value: float, accuracy) -> list[dict]:
        """Choose how heads and whole layers rank against neurons, on validation.

        First-order attribution underrates what removing a whole head or layer costs. At the latency
        fraction ``value``, each candidate of :meth:`candidates` gives a plan (a higher head weight
        keeps more heads and removes more neurons); each is judged by ``accuracy`` (bias-adjusted
        validation accuracy before condensation, full prompt: see
        :func:`~skeleton.evaluation.bias_adjusted_accuracy`) and the best one is kept for the search.
        """
        results, seen = [], {}
        for candidate in self.candidates():
            pruned, plan = self.prune(classifier, value, shorten=False, **candidate)
            key = (tuple(plan.heads_per_layer([0] * len(plan.keep_indices))), tuple(plan.kept_sizes))
            score = seen[key] if key in seen else accuracy(pruned)
            seen[key] = score
            weight = candidate["head_weight"]
            results.append(
                {
                    # JSON has no infinity: null stands for "heads stay"
                    "head_weight": weight if math.isfinite(weight) else None,
                    "prune_layers": candidate["prune_layers"],
                    "kept_heads": plan.kept_heads,
                    "kept_layers": plan.kept_layers,
                    "bias_adjusted_validation_accuracy": score,
                }
            )
            del pruned
        self.use(results)
        return results

    def use(self, calibration: list[dict]) -> dict:
        """Adopt the best candidate of a calibration; returns its row."""
        best = max(calibration, key=lambda r: r["bias_adjusted_validation_accuracy"])
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


def prune_classifier(classifier: PromptedClassifier, scores: NeuronScores, kept_ratio: float, config: CompressConfig):
    """A copy of ``classifier`` whose backbone keeps ``kept_ratio`` of the FFN neurons (prompt and head copied)."""
    return Planner(scores, config).prune(classifier, kept_ratio)


def _cost_model(config: CompressConfig, classifier: PromptedClassifier, reporter: Reporter) -> CostModel | None:
    if not config.uses_costs:
        return None
    from skeleton.latency import cost_model

    prompt = classifier.num_virtual_tokens
    shortened = config.condensed_prompt_tokens or prompt
    return cost_model(classifier.backbone, list(config.cost_shapes), prompt, shortened, reporter=reporter)


def _search(config: CompressConfig, run_trial, baseline: float, record, previous, baseline_correct) -> SearchResult:
    """The paper's binary search over the search config's grid (with a target speed-up alone, the
    grid is the target's latency fraction only, so it is the one trial)."""
    search = binary_search(run_trial, baseline, config.search, record, previous, baseline_correct)
    target = config.search.target_fraction
    if target is not None and search.kept_ratio >= 1.0:
        # nothing at or beyond the target speed-up stayed within the margin: the target model is
        # the answer, and its trial says it missed the margin
        search.kept_ratio = target
    return search


class Condensation:
    """Step 4, knowledge condensation, and the search trials built on it: prune a copy of the
    prompt-tuned classifier, re-tune its prompt (and head) warm-started from step 1's, remember
    every condensed model so that the chosen ratio is not condensed twice. With fast search, trials
    only judge the pruned model and the chosen ratio alone is condensed.
    """

    def __init__(self, workspace: Workspace, planner: Planner, classifier, config: CompressConfig, checkpoint, device):
        self.workspace, self.planner, self.classifier = workspace, planner, classifier
        self.config, self.checkpoint, self.device = config, checkpoint, device
        self.condensed: dict[float, tuple[PromptedClassifier, PruningPlan]] = {}  # ratio -> (model, plan)

    def condense(self, pruned: PromptedClassifier, ratio: float, reporter: Reporter):
        description = f"condensing at kept ratio {ratio:.2f}"
        return train_on(self.workspace, pruned, self.config.condense, self.device, reporter, description)

    def trial(self, ratio: float, reporter: Reporter) -> tuple[float, float, dict]:
        """One search trial: (validation accuracy, seconds, details)."""
        started = time.perf_counter()
        pruned, plan = self.planner.prune(self.classifier, ratio)
        details = self.planner.describe(plan)
        if self.config.fast_search:
            batch_size = self.config.condense.eval_batch_size
            predictions = self.workspace.split_predictions(pruned, self.device, batch_size, ("validation",))
            predictions = predictions["validation"]
            accuracy = 100.0 * float(self.workspace.correct("validation", predictions).mean())
            details["before_condensation"] = accuracy
        else:
            result = self.condense(pruned, ratio, reporter)
            accuracy, predictions = result.best_validation_accuracy, result.validation_predictions
            details["before_condensation"] = result.history[0]["validation_accuracy"]
            save_prompt_and_head(pruned, self.checkpoint.stages / f"trial-{ratio:.2f}")
            self.condensed[round(ratio, 6)] = (pruned, plan)
        details["correct"] = self.workspace.correct("validation", predictions)
        return accuracy, time.perf_counter() - started, details

    def final(self, ratio: float, reporter: Reporter) -> tuple[PromptedClassifier, PruningPlan | None]:
        """The condensed model at the chosen ratio (the whole prompt-tuned model at ratio 1)."""
        if ratio >= 1.0:
            reporter.message("no kept ratio on the grid stayed within the margin: the model is kept whole")
            return self.classifier, None
        reporter.message(f"step 4/4: knowledge condensation at kept ratio {ratio:.2f}")
        if round(ratio, 6) in self.condensed:
            return self.condensed[round(ratio, 6)]
        final, plan = self.planner.prune(self.classifier, ratio)
        trial_dir = self.checkpoint.stages / f"trial-{ratio:.2f}"
        if not self.config.fast_search and (trial_dir / "prompt").is_dir():  # resumed: reuse the condensed prompt
            spec, tokenizer = self.workspace.spec, self.workspace.tokenizer
            return load_prompt_and_head(final.backbone, tokenizer, spec, trial_dir).to(self.device), plan
        self.condense(final, ratio, reporter)
        return final, plan


def _guard(workspace: Workspace, prior: Prior, config: CompressConfig, reporter: Reporter) -> str | None:
    """After step 1: stop unless the prompt-tuned model beats the majority class (or the user allows it)."""
    weak_prior = workspace.prior_problem(prior.validation["accuracy"], config.min_gain)
    if weak_prior and not config.allow_weak_prior:
        raise WeakPriorError(
            f"{weak_prior}. Try more steps (--steps), a probe-started head (--head-init probe), a longer "
            "prompt (--prompt-tokens), another head or model; the tuned prompt is kept, so "
            "--resume --allow-weak-prior goes on from it"
        )
    if weak_prior:
        reporter.message(f"warning: {weak_prior}; going on (--allow-weak-prior)")
    return weak_prior


def _run_search(condensation: Condensation, prior: Prior, checkpoint, reporter: Reporter, with_costs: bool):
    """Step 3: the search over the kept ratio (or latency fraction), each trial checkpointed."""
    config, workspace = condensation.config, condensation.workspace
    baseline = prior.validation["accuracy"]

    def record(trial: Trial) -> None:
        reporter.message(
            f"  trial kept ratio {trial.kept_ratio:.2f}: validation {trial.validation_accuracy:.2f} "
            f"({'accepted' if trial.accepted else 'rejected'}, "
            f"threshold {baseline - config.search.margin:.2f}, {trial.seconds:.0f}s)"
        )
        finished = (checkpoint.done("trials") or {"trials": []})["trials"] + [asdict(trial)]
        checkpoint.finish("trials", {"trials": finished})

    variable = "predicted latency fraction" if with_costs else "kept ratio"
    reporter.message(f"step 3/4: search over the {variable} (margin {config.search.margin} points)")
    previous = [Trial(**t) for t in (checkpoint.done("trials") or {"trials": []})["trials"]]
    baseline_correct = workspace.correct("validation", prior.predictions["validation"])
    run_trial = functools.partial(condensation.trial, reporter=reporter)
    return _search(config, run_trial, baseline, record, previous, baseline_correct)


def compress(config: CompressConfig, reporter: Reporter = SILENT) -> CompressResult:
    """Run the four steps and save the slim model, its prompt and a report; see the module docstring."""
    started = time.perf_counter()
    config = config.resolved()
    device = resolve_device(config.device)
    reporter.message(f"loading {config.data.task} and {config.model.model} (device {device})")
    workspace = Workspace(config.data, config.model)
    reporter.message(workspace.data.describe())
    output = Path(
        config.output or Path("exported_models") / f"{workspace.spec.name}-{model_slug(workspace.model_path)}"
    )
    with atomic_directory(output, overwrite=config.overwrite, resume=config.resume) as work:
        checkpoint = _Checkpoint(work, config, config.resume)
        classifier, prior = _prior(workspace, config, checkpoint, device, reporter)
        weak_prior = _guard(workspace, prior, config, reporter)
        scores = _scores(workspace, config, checkpoint, classifier, device, reporter)
        timings = {"prior": prior.seconds, "scoring": checkpoint.done("scores")["seconds"]}
        clock = time.perf_counter()
        costs = _cost_model(config, classifier, reporter)
        timings["latency_table"] = time.perf_counter() - clock
        planner = Planner(scores, config, costs)
        calibration = _calibrate(planner, classifier, config, checkpoint, workspace, device, reporter)
        condensation = Condensation(workspace, planner, classifier, config, checkpoint, device)
        clock = time.perf_counter()
        search = _run_search(condensation, prior, checkpoint, reporter, costs is not None)
        timings["search"] = time.perf_counter() - clock
        clock = time.perf_counter()
        final, plan = condensation.final(search.kept_ratio, reporter)
        timings["condensation"] = time.perf_counter() - clock
        outcome = _Outcome(prior, final, plan, search, calibration, costs, weak_prior, timings)
        report = _finish(work, outcome, condensation, scores, started, reporter)
        # the prompt-tuned (unpruned) prompt and head stay, for comparisons and re-runs with --prompt
        (work / STATE_FILE).unlink(missing_ok=True)
        shutil.rmtree(work / PROMPT_TUNED_DIR, ignore_errors=True)
        shutil.move(str(checkpoint.stages / "prior"), str(work / PROMPT_TUNED_DIR))
        shutil.rmtree(work / STAGES_DIR, ignore_errors=True)
    return CompressResult(str(output), report)


@dataclass
class _Outcome:
    """What the stages produced, for the report."""

    prior: Prior
    final: PromptedClassifier
    plan: PruningPlan | None
    search: SearchResult
    calibration: dict | None
    costs: CostModel | None
    weak_prior: str | None
    timings: dict[str, float]


def _finish(
    work: Path, outcome: _Outcome, condensation: Condensation, scores, started: float, reporter
) -> CompressReport:
    """Evaluate the final model, save it with its scores and report (and export it when asked)."""
    workspace, config, device = condensation.workspace, condensation.config, condensation.device
    final, plan, prior = outcome.final, outcome.plan, outcome.prior
    final_predictions = workspace.split_predictions(final, device, config.condense.eval_batch_size)
    differences = {
        split: paired_bootstrap(
            workspace.correct(split, final_predictions[split]),
            workspace.correct(split, prior.predictions[split]),
        )
        for split in ("validation", "test")
    }
    ratio = outcome.search.kept_ratio
    classifier, planner = condensation.classifier, condensation.planner
    ablations = _ablations(classifier, planner, ratio, config, workspace, device) if plan is not None else {}
    save_classifier(final, workspace.tokenizer, work, plan, skeleton_meta(workspace))
    scores.save(work / SCORES_FILE)
    outcome.timings["total"] = time.perf_counter() - started
    report = _report(outcome, condensation, workspace.split_metrics(final_predictions), differences, ablations)
    report.save(work / REPORT_FILE)
    if config.export:
        from skeleton.export import ExportConfig, export_directory

        reporter.message("exporting to ONNX")
        report.export = export_directory(work, ExportConfig(), workspace=workspace, reporter=reporter)
        report.save(work / REPORT_FILE)
    return report


def _report(
    outcome: _Outcome, condensation: Condensation, metrics: dict, differences: dict, ablations: dict
) -> CompressReport:
    workspace, config, classifier = condensation.workspace, condensation.config, condensation.classifier
    final, plan, prior = outcome.final, outcome.plan, outcome.prior
    kept = plan.kept_fraction if plan else 1.0
    return CompressReport(
        task=workspace.spec.name,
        model=workspace.model_path,
        head=workspace.head,
        device=str(condensation.device),
        data=workspace.data.summary(),
        seed=config.tune.seed,
        majority_class=workspace.majority_metrics(),
        weak_prior=outcome.weak_prior,
        prompt_tuned={"validation": prior.validation, "test": prior.test},
        skeleton=metrics,
        accuracy_difference=differences,
        kept_ratio=outcome.search.kept_ratio,
        kept_fraction=kept,
        removed_fraction=1.0 - kept,
        kept_sizes=plan.kept_sizes if plan else None,
        targets=list(config.targets),
        kept_heads=plan.kept_heads if plan else None,
        kept_layers=plan.kept_layers if plan else None,
        prompt_tokens={"prompt_tuned": classifier.num_virtual_tokens, "skeleton": final.num_virtual_tokens},
        template_tokens=workspace.template_tokens(),
        cost_model=_cost_summary(outcome.costs, plan, final),
        head_weight_calibration=outcome.calibration,
        parameters={
            "backbone_before": count_parameters(classifier.backbone),
            "backbone_after": count_parameters(final.backbone),
            "ffn_before": count_ffn_parameters(classifier.backbone),
            "ffn_after": count_ffn_parameters(final.backbone),
        },
        search=outcome.search.to_dict(),
        ablations=ablations,
        timings_seconds=outcome.timings,
        prior_training=prior.training,
        config=config.to_dict(),
        versions=library_versions(),
    )


def _calibrate(planner: Planner, classifier, config: CompressConfig, checkpoint, workspace, device, reporter):
    """With heads in the cost ranking: the head-score exchange rate, chosen on validation (and kept
    across ``--resume``)."""
    if planner.costs is None or len(planner.candidates()) < 2:
        return None
    done = checkpoint.done("calibration")
    if done is None:
        value = config.search.target_fraction or 0.5
        reporter.message(f"calibrating heads and layers against neurons on validation at latency fraction {value:.2f}")

        def accuracy(pruned):
            return evaluate(
                pruned, workspace.validation, device, config.condense.eval_batch_size, workspace.pad_token_id
            )["accuracy"]

        done = {"fraction": value, "weights": planner.calibrate(classifier, value, accuracy)}
        checkpoint.finish("calibration", done)
    best = planner.use(done["weights"])
    reporter.message(
        f"  head weight {best['head_weight']}, whole layers {'removable' if best.get('prune_layers') else 'kept'}: "
        f"validation {best['bias_adjusted_validation_accuracy']:.2f} before condensation (bias-adjusted)"
    )
    return done


def _cost_summary(costs: CostModel | None, plan: PruningPlan | None, final: PromptedClassifier) -> dict | None:
    """The latency table behind the search and what it predicts for the final model."""
    if costs is None:
        return None
    heads = plan.heads_per_layer(costs.num_heads) if plan else costs.num_heads
    widths = plan.kept_sizes if plan else costs.widths
    table = costs.table
    return {
        "predicted_speedup": costs.speedups(heads, widths),
        "predicted_latency_fraction": costs.fraction(heads, widths),
        "reference_ms": costs.reference_ms(),
        "unit_costs": dict(zip(("head", "neuron"), costs.unit_costs(), strict=True)),
        "prompt_tokens": final.num_virtual_tokens,
        "table": {"key": table.key, "seconds_to_measure": table.seconds, "heads": table.heads, "widths": table.widths},
    }


def _ablations(classifier, planner: Planner, ratio, config: CompressConfig, workspace: Workspace, device) -> dict:
    """At the chosen ratio, before condensation: plain removal (the paper) vs bias compensation, and
    per-layer widths rounded vs not, so the report shows what each option is worth here.
    """
    result = {}
    for name, overrides in (
        ("plain_removal", {"bias_compensation": False}),
        ("bias_compensation", {"bias_compensation": True}),
    ):
        pruned, plan = planner.prune(classifier, ratio, **overrides)
        result[name] = {
            "validation_accuracy_before_condensation": evaluate(
                pruned, workspace.validation, device, config.condense.eval_batch_size, workspace.pad_token_id
            )["accuracy"],
            "kept_sizes": plan.kept_sizes,
        }
        del pruned
    result["unrounded_kept_sizes"] = planner.plan(ratio, classifier.backbone.config, round_to=1).kept_sizes
    return result


__all__ = ["CompressConfig", "CompressResult", "WeakPriorError", "compress", "prune_classifier"]
