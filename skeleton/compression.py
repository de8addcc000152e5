"""``skeleton compress``: the paper's four steps end to end.

1. prior knowledge injection (prompt tuning, or a given tuned prompt),
2. quantification (a scorer ranks every FFN neuron),
3. localization (structured pruning, the search value found by binary search: the kept ratio, or
   with a latency table the latency fraction),
4. knowledge condensation (the prompt re-tuned on the pruned backbone),

then the Skeleton model is saved (and exported to ONNX). Work happens in a hidden directory beside the
output, with a checkpoint after every stage, so ``--resume`` continues after the last finished one
and a failure never leaves a half-written model under the output name.
"""

from __future__ import annotations

import functools
import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from skeleton.core.config import CompressConfig as CompressConfig
from skeleton.core.config import ExportConfig
from skeleton.core.config import default_condense_config as default_condense_config
from skeleton.core.device import resolve_device
from skeleton.core.errors import SkeletonError
from skeleton.core.evaluation import bias_adjusted_accuracy, predict_logits
from skeleton.core.file_names import (
    PROMPT_TUNED_DIR,
    REPORT_FILE,
    SCORES_FILE,
    STAGES_DIR,
    STATE_FILE,
)
from skeleton.core.machine import describe_cpu
from skeleton.core.modeling import PromptedClassifier, save_prompt_and_head
from skeleton.core.outputs import atomic_directory, library_versions, save_classifier
from skeleton.core.precision import PrecisionChoice
from skeleton.core.progress import SILENT, Reporter
from skeleton.core.reports import CompressReport, speed_text, write_json
from skeleton.core.scores_and_plans import NeuronScores, PruningPlan
from skeleton.core.statistics import paired_bootstrap, paired_bootstrap_f1
from skeleton.core.workspace import Workspace
from skeleton.deploy.export import export_directory
from skeleton.measure.latency import CostModel, cost_model
from skeleton.measure.plan_latency import (
    PlanTimer,
    largest_error,
    refit_costs,
    shipped_timing,
)
from skeleton.method.condensation import Condensation, full_pairs
from skeleton.method.planning import CALIBRATION_FINALISTS, Planner, calibration_accuracy
from skeleton.method.pruning import (
    count_ffn_parameters,
    count_parameters,
)
from skeleton.method.scoring import score_neurons, scoring_context
from skeleton.method.search import KEPT_RATIO, LATENCY_FRACTION, SearchResult, Trial, binary_search
from skeleton.method.tuning import evaluate, skeleton_meta, train_on, training_precision

TUNE_KINDS = {"prompt": "prompt tuning", "lora": "LoRA fine-tuning", "full": "fine-tuning"}


class WeakPriorError(SkeletonError):
    """The prompt-tuned model does not beat the majority class: there is no task knowledge to localise."""


@dataclass
class CompressResult:
    output: str
    report: CompressReport


@dataclass
class PromptTuned:
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
    def from_dict(cls, data: dict) -> PromptTuned:
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
            if k
            not in ("resume", "overwrite", "output", "device", "precision", "export", "min_gain", "allow_weak_prior")
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


def _training_precision(workspace: Workspace, config: CompressConfig, checkpoint: _Checkpoint, device, reporter):
    """What steps 1 and 4 train in (:func:`~skeleton.method.tuning.training_precision`, timed on the model
    step 1 starts from); a resumed run keeps its choice when asked the same."""
    done = checkpoint.done("precision")
    if done is not None and done["asked"] == config.precision:
        return PrecisionChoice(**done)
    if config.teacher:
        start = workspace.teacher_classifier
    elif config.prompt:
        start = functools.partial(workspace.load_classifier, config.prompt)
    else:
        start = functools.partial(workspace.new_classifier, seed=config.tune.seed)
    choice = training_precision(config.precision, workspace, start, config.tune, device, reporter)
    checkpoint.finish("precision", choice.to_dict())
    return choice


def _prompt_tuned(
    workspace: Workspace, config: CompressConfig, checkpoint: _Checkpoint, device, reporter: Reporter
) -> tuple[PromptedClassifier, PromptTuned]:
    """Step 1: the prompt-tuned classifier on the unpruned backbone, and its metrics."""
    stage_dir = checkpoint.stages / "prompt_tuned"
    done = checkpoint.done("prompt_tuned")
    if done is not None:
        reporter.message("resume: reusing the prompt-tuned model")
        classifier = workspace.load_classifier(stage_dir)
        return classifier.to(device), PromptTuned.from_dict(done)
    started = time.perf_counter()
    if config.prompt:
        reporter.message(f"step 1/4: reusing the tuned prompt in {config.prompt}")
        classifier = workspace.load_classifier(config.prompt)
        classifier.to(device)
        training = None
    elif config.teacher:
        reporter.message(f"step 1/4: the teacher is the classifier in {config.teacher} (no tuning)")
        classifier = workspace.teacher_classifier().to(device)
        training = None
    else:
        kind = TUNE_KINDS[config.tune.trains]
        reporter.message(f"step 1/4: prior knowledge injection ({kind})")
        classifier = workspace.new_classifier(seed=config.tune.seed)
        trained = train_on(workspace, classifier, config.tune, device, reporter, kind)
        training = trained.to_dict()
    if training is None:
        predictions = workspace.split_predictions(classifier, device, config.tune.eval_batch_size)
    else:  # training validated the restored best state already: the same pass, not run twice
        predictions = workspace.split_predictions(classifier, device, config.tune.eval_batch_size, ("test",))
        predictions["validation"] = trained.validation_predictions
    metrics = workspace.split_metrics(predictions)
    result = PromptTuned(metrics["validation"], metrics["test"], predictions, training, time.perf_counter() - started)
    if config.teacher or (config.tune.trains == "prompt" and not config.prompt):
        save_prompt_and_head(classifier, stage_dir)  # on the pretrained backbone, or the teacher checkpoint's
    else:  # a tuned backbone: a whole model directory (skeleton.load, export and save-transformers read it)
        save_classifier(classifier, workspace.tokenizer, stage_dir, None, skeleton_meta(workspace))
    checkpoint.finish("prompt_tuned", result.to_dict())
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


def _cost_model(config: CompressConfig, classifier: PromptedClassifier, reporter: Reporter) -> CostModel | None:
    if not config.uses_costs:
        return None

    prompt = classifier.num_virtual_tokens
    shortened = config.condensed_prompt_tokens or prompt
    sequences = 2 if classifier.head_config.separate_pairs else 1  # a bi-encoder runs both sentences
    return cost_model(
        classifier.backbone,
        list(config.cost_shapes),
        prompt,
        shortened,
        reporter=reporter,
        sequences_per_input=sequences,
    )


def _search(config: CompressConfig, run_trial, teacher: float, record, previous, teacher_correct) -> SearchResult:
    """The paper's binary search over the search config's grid (with a target speed-up alone, the
    grid is the target's latency fraction only, so it is the one trial)."""
    kind = LATENCY_FRACTION if config.uses_costs else KEPT_RATIO
    search = binary_search(run_trial, teacher, config.search, record, previous, teacher_correct, kind)
    target = config.search.target_latency_fraction
    if target is not None and search.value >= 1.0:
        # nothing at or beyond the target speed-up stayed within the margin: the target model is
        # the answer, and its trial says it missed the margin
        search.value = target
    return search


def _guard(workspace: Workspace, tuned: PromptTuned, config: CompressConfig, reporter: Reporter) -> str | None:
    """After step 1: stop unless the prompt-tuned model beats the majority class (or the user allows it)."""
    weak_prior = workspace.prior_problem(tuned.validation["accuracy"], config.min_gain)
    if weak_prior and not config.allow_weak_prior:
        raise WeakPriorError(
            f"{weak_prior}. Try more steps (--steps), a probe-started head (--head-init probe), a longer "
            "prompt (--prompt-tokens), another head or model; the tuned prompt is kept, so "
            "--resume --allow-weak-prior goes on from it"
        )
    if weak_prior:
        reporter.message(f"warning: {weak_prior}; going on (--allow-weak-prior)")
    return weak_prior


def _run_search(condensation: Condensation, tuned: PromptTuned, checkpoint, reporter: Reporter):
    """Step 3: the search over the kept ratio (or the latency fraction), each trial checkpointed. Returns it and
    what step 4 calls to search on from trials its full condensations corrected (``Condensation.skeleton_model``)."""
    config, workspace = condensation.config, condensation.workspace
    teacher = tuned.validation["accuracy"]
    variable = condensation.planner.kind

    def record(trial: Trial) -> None:
        speed = speed_text(trial.details)
        reporter.message(
            f"  trial {variable} {trial.value:.2f}: validation {trial.validation_accuracy:.2f} "
            f"({'accepted' if trial.accepted else 'rejected'}, "
            f"threshold {config.search.threshold(teacher):.2f}, {trial.seconds:.0f}s)" + (f"; {speed}" if speed else "")
        )
        finished = (checkpoint.done("trials") or {"trials": []})["trials"] + [asdict(trial)]
        checkpoint.finish("trials", {"trials": finished})

    reporter.message(f"step 3/4: search over the {variable} (margin {config.search.margin} points)")
    previous = [Trial(**t) for t in (checkpoint.done("trials") or {"trials": []})["trials"]]
    condensation.full_pairs = full_pairs(previous)  # resumed: the plans condensed both ways, predictions' basis
    teacher_correct = workspace.correct("validation", tuned.predictions["validation"])
    run_trial = functools.partial(condensation.trial, reporter=reporter)

    def search_again(trials: list[Trial]) -> SearchResult:
        """Step 4's search on, from the trials as full condensations corrected them (checkpointed first)."""
        checkpoint.finish("trials", {"trials": [asdict(t) for t in trials]})
        reporter.message(f"  search over the {variable} again, from what the full condensations measured")
        return _search(config, run_trial, teacher, record, trials, teacher_correct)

    return _search(config, run_trial, teacher, record, previous, teacher_correct), search_again


def compress(config: CompressConfig, reporter: Reporter = SILENT) -> CompressResult:
    """Run the four steps and save the Skeleton model, its prompt and a report; see the module docstring."""
    started = time.perf_counter()
    config = config.resolved()
    device = resolve_device(config.device)
    workspace = Workspace.open(config.data, config.model, device, reporter)
    output = Path(config.output or workspace.default_output())
    with atomic_directory(output, overwrite=config.overwrite, resume=config.resume) as work:
        checkpoint = _Checkpoint(work, config, config.resume)
        precision = _training_precision(workspace, config, checkpoint, device, reporter)
        config = config.trained_in(precision.used)
        classifier, tuned = _prompt_tuned(workspace, config, checkpoint, device, reporter)
        weak_prior = _guard(workspace, tuned, config, reporter)
        scores = _scores(workspace, config, checkpoint, classifier, device, reporter)
        timings = {"prompt_tuning": tuned.seconds, "scoring": checkpoint.done("scores")["seconds"]}
        clock = time.perf_counter()
        costs = _cost_model(config, classifier, reporter)
        timings["latency_table"] = time.perf_counter() - clock
        planner = Planner(scores, config, costs)
        clock = time.perf_counter()
        timer, refit = _refit(planner, classifier, checkpoint, reporter)
        timings["latency_refit"] = time.perf_counter() - clock
        teacher = tuned.validation["accuracy"]
        condensation = Condensation(
            workspace, planner, classifier, config, checkpoint.stages, device, teacher, _trial_timing(timer)
        )
        clock = time.perf_counter()
        condensation.training_split(reporter, full=True)
        timings["teacher_logits"] = time.perf_counter() - clock
        clock = time.perf_counter()
        calibration = _calibrate(planner, condensation, checkpoint, reporter)
        timings["calibration"] = time.perf_counter() - clock
        clock = time.perf_counter()
        search, search_again = _run_search(condensation, tuned, checkpoint, reporter)
        timings["search"] = time.perf_counter() - clock
        clock = time.perf_counter()
        skeleton_model, plan = condensation.skeleton_model(search, reporter, search_again)
        timings["condensation"] = time.perf_counter() - clock
        if timer is not None:
            timer.close()
        outcome = _Outcome(
            tuned, skeleton_model, plan, search, calibration, planner.costs, refit, weak_prior, timings, precision
        )
        report = _finish(work, outcome, condensation, scores, started, reporter)
        # the prompt-tuned prompt and head stay, for comparisons and re-runs with --prompt
        (work / STATE_FILE).unlink(missing_ok=True)
        shutil.rmtree(work / PROMPT_TUNED_DIR, ignore_errors=True)
        shutil.move(str(checkpoint.stages / "prompt_tuned"), str(work / PROMPT_TUNED_DIR))
        shutil.rmtree(work / STAGES_DIR, ignore_errors=True)
    return CompressResult(str(output), report)


@dataclass
class _Outcome:
    """What the stages produced, for the report."""

    tuned: PromptTuned
    skeleton_model: PromptedClassifier
    plan: PruningPlan | None
    search: SearchResult
    calibration: dict | None
    costs: CostModel | None  # refitted to timed whole models
    refit: dict | None  # the timed plans the cost model was refitted to
    weak_prior: str | None
    timings: dict[str, float]
    precision: PrecisionChoice


def _finish(
    work: Path, outcome: _Outcome, condensation: Condensation, scores, started: float, reporter
) -> CompressReport:
    """Evaluate the Skeleton model, save it with its scores and report (and export it when asked)."""
    workspace, config, device = condensation.workspace, condensation.config, condensation.device
    skeleton_model, plan, tuned = outcome.skeleton_model, outcome.plan, outcome.tuned
    skeleton_predictions = workspace.split_predictions(skeleton_model, device, config.condense.eval_batch_size)
    differences = {
        split: paired_bootstrap(
            workspace.correct(split, skeleton_predictions[split]),
            workspace.correct(split, tuned.predictions[split]),
        )
        for split in ("validation", "test")
    }
    spec = workspace.spec
    metric_differences = {}
    for metric in spec.metrics:  # the task's F1 differs with an interval too
        metric_differences[metric] = {
            split: paired_bootstrap_f1(
                skeleton_predictions[split],
                tuned.predictions[split],
                getattr(workspace, split).labels,
                metric,
                spec.num_labels,
            )
            for split in ("validation", "test")
        }
    value = outcome.search.value
    classifier, planner = condensation.classifier, condensation.planner
    ablations = _ablations(classifier, planner, value, config, workspace, device) if plan is not None else {}
    meta = skeleton_meta(workspace, skeleton_model.num_virtual_tokens)
    save_classifier(skeleton_model, workspace.tokenizer, work, plan, meta)
    scores.save(work / SCORES_FILE)
    outcome.timings["total"] = time.perf_counter() - started
    report = _report(outcome, condensation, workspace.split_metrics(skeleton_predictions), differences, ablations)
    report.metric_difference = metric_differences
    report.save(work / REPORT_FILE)
    if config.export:
        reporter.message("exporting to ONNX")
        try:
            report.export = export_directory(work, ExportConfig(), workspace=workspace, reporter=reporter)
        except SkeletonError as error:
            raise SkeletonError(
                f"{error}; the trained Skeleton model is kept in {work}: run the same command with --resume "
                "to export it again, or 'skeleton export' on that directory"
            ) from None
        report.timings_seconds["export"] = report.export.seconds
        report.timings_seconds["total"] = time.perf_counter() - started
        report.save(work / REPORT_FILE)
    return report


def _report(
    outcome: _Outcome, condensation: Condensation, metrics: dict, differences: dict, ablations: dict
) -> CompressReport:
    workspace, config, classifier = condensation.workspace, condensation.config, condensation.classifier
    skeleton_model, plan, tuned = outcome.skeleton_model, outcome.plan, outcome.tuned
    kept = plan.kept_fraction if plan else 1.0
    return CompressReport(
        task=workspace.spec.name,
        model=workspace.model_path,
        head=workspace.head,
        device=str(condensation.device),
        training_precision=outcome.precision.to_dict(),
        data={**workspace.data.summary(), "condensation_rows": condensation.full_rows},
        seed=config.tune.seed,
        majority_class=workspace.majority_metrics(),
        weak_prior=outcome.weak_prior,
        prompt_tuned={"validation": tuned.validation, "test": tuned.test},
        skeleton=metrics,
        accuracy_difference=differences,
        search_value=outcome.search.value,
        kept_fraction=kept,
        removed_fraction=1.0 - kept,
        kept_sizes=plan.kept_sizes if plan else None,
        targets=list(config.targets),
        kept_heads=plan.kept_heads if plan else None,
        kept_layers=plan.kept_layers if plan else None,
        prompt_tokens={"prompt_tuned": classifier.num_virtual_tokens, "skeleton": skeleton_model.num_virtual_tokens},
        template_tokens=workspace.template_tokens(),
        cost_model=_cost_summary(outcome),
        head_weight_calibration=outcome.calibration,
        parameters={
            "backbone_before": count_parameters(classifier.backbone),
            "backbone_after": count_parameters(skeleton_model.backbone),
            "ffn_before": count_ffn_parameters(classifier.backbone),
            "ffn_after": count_ffn_parameters(skeleton_model.backbone),
        },
        search=outcome.search.to_dict(),
        ablations=ablations,
        timings_seconds=outcome.timings,
        prompt_tuning=tuned.training,
        config=config.to_dict(),
        versions=library_versions(),
        machine=describe_cpu(),
    )


def _calibrate(planner: Planner, condensation: Condensation, checkpoint, reporter) -> dict | None:
    """With heads in the cost ranking: the head-score exchange rate and whether whole layers go, chosen on
    validation (and kept across ``--resume``).

    Each candidate plan is judged as a search trial is: after the trial's short condensation, which the
    search's first trial (at the same latency fraction) then reuses. Before condensation, a fine-tuned
    teacher's pruned candidates all answer the majority class at the search's middle fraction, and what
    sets them apart there does not predict what condensation recovers (``benchmarks/results/LOG.md``).
    Where trials are not condensed short (``fast_search``, or trials condensed in full), each is judged
    by its bias-adjusted accuracy before condensation instead.
    """
    if planner.costs is None or len(planner.candidates()) < 2:
        return None
    config, workspace = condensation.config, condensation.workspace
    done = checkpoint.done("calibration")
    if done is None:
        value = config.search.target_latency_fraction or 0.5
        steps = None if config.fast_search else condensation.trial_steps
        judged_by = "bias-adjusted accuracy before condensation" if steps is None else f"{steps}-step condensation"
        screen = None
        if steps is not None:
            judged_by += f", the {CALIBRATION_FINALISTS} best of a {condensation.screening_steps}-step screening"
            screen = functools.partial(condensation.screening, value=value, reporter=reporter)
        reporter.message(
            f"calibrating heads and layers against neurons at latency fraction {value:.2f}: plans judged on "
            f"validation by their {judged_by}"
        )
        if steps is None:
            judge = functools.partial(_bias_adjusted, workspace=workspace, device=condensation.device, config=config)
        else:
            judge = functools.partial(condensation.short_condensation, value=value, reporter=reporter)
        done = {
            "fraction": value,
            "judged_by": judged_by,
            "weights": planner.calibrate(condensation.classifier, value, judge, screen),
        }
        checkpoint.finish("calibration", done)
    best = planner.use(done["weights"])
    reporter.message(
        f"  head weight {best['head_weight']}, whole layers {'removable' if best.get('prune_layers') else 'kept'}: "
        f"validation {calibration_accuracy(best):.2f} ({done.get('judged_by', 'before condensation')})"
    )
    return done


def _bias_adjusted(pruned: PromptedClassifier, plan, workspace: Workspace, device, config: CompressConfig) -> float:
    """A pruned model's validation accuracy before condensation, its logits' offsets refitted."""
    split = workspace.validation
    logits = predict_logits(pruned, split, device, config.condense.eval_batch_size, workspace.pad_token_id)
    return bias_adjusted_accuracy(logits, torch.tensor(split.labels))


def _refit(planner: Planner, classifier, checkpoint, reporter) -> tuple[PlanTimer | None, dict | None]:
    """Before the search: time a few pruned backbones beside the unpruned one on the table's runtime and
    refit the planner's cost model to them (the timings kept across ``--resume``). Returns the timer the
    search's trials are timed with, and the refit's record."""
    if planner.costs is None:
        return None, None
    timer = PlanTimer(planner.costs, classifier.backbone)
    done = checkpoint.done("latency_refit")
    if done is None:
        refitted, done = refit_costs(timer, planner, classifier, reporter)
        checkpoint.finish("latency_refit", done)
    else:
        refitted = planner.costs.refitted(done["points"])
    reporter.message(
        f"  largest error over the timed plans and shapes: table {100 * largest_error(done, 'table'):.0f}%, "
        f"refitted {100 * largest_error(done):.0f}%"
    )
    planner.costs = timer.costs = refitted
    return timer, done


def _trial_timing(timer: PlanTimer | None):
    """What a search trial calls to time its pruned model (``None`` without a cost model)."""
    if timer is None:
        return None

    def measure(pruned: PromptedClassifier, plan: PruningPlan) -> dict:
        return timer.measure(pruned.backbone, plan.heads_per_layer(timer.costs.num_heads), plan.kept_sizes)

    return measure


def _cost_summary(outcome: _Outcome) -> dict | None:
    """The latency table behind the search, what it predicts for the Skeleton model and, for the trial
    that shipped, what was measured."""
    costs, plan, skeleton_model = outcome.costs, outcome.plan, outcome.skeleton_model
    if costs is None:
        return None
    heads = plan.heads_per_layer(costs.num_heads) if plan else costs.num_heads
    widths = plan.kept_sizes if plan else costs.widths
    table = costs.table
    return {
        **shipped_timing(outcome.search),
        "predicted_speedup": costs.speedups(heads, widths),
        "predicted_latency_fraction": costs.fraction(heads, widths),
        "predicted_slowest_shape": costs.slowest_shape(heads, widths),
        "refit": outcome.refit,
        "reference_ms": costs.reference_ms(),
        "unit_costs": dict(zip(("head", "neuron"), costs.unit_costs(), strict=True)),
        "prompt_tokens": skeleton_model.num_virtual_tokens,
        "table": {"key": table.key, "seconds_to_measure": table.seconds, "heads": table.heads, "widths": table.widths},
    }


def _ablations(classifier, planner: Planner, value, config: CompressConfig, workspace: Workspace, device) -> dict:
    """At the chosen search value, before condensation: plain removal (the paper) vs bias compensation, and
    per-layer widths rounded vs not, so the report shows what each option is worth here.
    """
    result = {}
    for name, overrides in (
        ("plain_removal", {"bias_compensation": False}),
        ("bias_compensation", {"bias_compensation": True}),
    ):
        pruned, plan = planner.prune(classifier, value, **overrides)
        result[name] = {
            "validation_accuracy_before_condensation": evaluate(
                pruned, workspace.validation, device, config.condense.eval_batch_size, workspace.pad_token_id
            )["accuracy"],
            "kept_sizes": plan.kept_sizes,
        }
        del pruned
    result["unrounded_kept_sizes"] = planner.plan(value, classifier.backbone.config, round_to=1).kept_sizes
    return result


__all__ = ["CompressConfig", "CompressResult", "WeakPriorError", "compress"]
