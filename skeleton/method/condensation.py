"""Step 4, knowledge condensation, and the search trials built on it (see :class:`Condensation`).

Condensation trains a pruned copy of the prompt-tuned classifier: its prompt and head, and what
``TrainConfig.trains`` opens in the backbone (:mod:`skeleton.method.adaptation`), distilled from the
prompt-tuned model when ``TrainConfig.distill`` is set. Checkpoints (the teacher's logits, condensed
trials) go to the run's stage directory, so ``--resume`` reuses them.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from safetensors.torch import load_file, load_model, save_file, save_model

from skeleton.core.batching import EncodedSplit
from skeleton.core.config import CompressConfig
from skeleton.core.evaluation import predict_logits
from skeleton.core.file_names import MODEL_FILE, TEACHER_FILE, TEACHER_MORE_FILE
from skeleton.core.modeling import PromptedClassifier, load_prompt_and_head, save_prompt_and_head
from skeleton.core.precision import autocast
from skeleton.core.progress import Reporter
from skeleton.core.scores_and_plans import PruningPlan
from skeleton.core.workspace import Workspace
from skeleton.method.planning import Planner
from skeleton.method.search import SearchResult, Trial, accepts
from skeleton.method.tuning import TrainResult, train_prompt

# a calibration screens every candidate plan with this share of a trial's condensation steps, then condenses
# the most accurate few (``planning.CALIBRATION_FINALISTS``) as trials are (benchmarks/results/LOG.md: on
# SST-2 the three best after 52 steps held the best after 156)
SCREENING_SHARE = 1 / 3


class Condensation:
    """Step 4, knowledge condensation, and the search trials built on it: prune a copy of the
    prompt-tuned classifier, condense it (its prompt and head warm-started from step 1's, and what
    ``condense.trains`` opens in the backbone; distilled from the prompt-tuned model when
    ``condense.distill`` is set, its logits computed once), remember every condensed model so that
    the chosen value is not condensed twice. With fast search, trials only judge the pruned model;
    with a trial budget (``CompressConfig.trial_budget``), trials condense that many steps and are
    judged by that accuracy or, when it alone misses the threshold, by what a full condensation is
    predicted to reach from it (:meth:`predicted_full`, from the plans condensed both ways: the first
    trial that needs a prediction, and every plan step 4 condenses in full); either way the chosen value
    is then condensed in full, and one that misses the margin there sends the search on (:meth:`skeleton_model`).
    """

    def __init__(
        self,
        workspace: Workspace,
        planner: Planner,
        classifier,
        config: CompressConfig,
        stages: Path,
        device,
        teacher: float,
        measure: Callable[[PromptedClassifier, PruningPlan], dict] | None = None,
    ) -> None:
        self.workspace, self.planner, self.classifier = workspace, planner, classifier
        self.measure = measure
        self.config, self.stages, self.device = config, stages, device
        self.teacher = teacher  # the teacher's validation accuracy
        self.threshold = config.search.threshold(teacher)  # the lowest validation accuracy the search accepts
        # search value -> (model, plan, validation accuracy) of every value condensed in full
        self.condensed: dict[float, tuple[PromptedClassifier, PruningPlan, float]] = {}
        self._train: EncodedSplit | None = None  # the training split (with teacher logits when distilling)
        self._full: EncodedSplit | None = None  # what a full condensation trains on
        self.trial_steps = config.trial_budget(len(workspace.train))  # None: trials condense in full
        # (short, full) validation accuracy of every plan condensed both ways: what predictions are made from
        self.full_pairs: list[tuple[float, float]] = []
        self._tried: dict[str, tuple[float, float, dict]] = {}  # plan structure -> (value, accuracy, details)
        self._same_plan: dict[float, float] = {}  # search value -> the earlier value with the same plan
        # (plan structure, model, result) of the calibration's most accurate short condensation, for that plan's trial
        self._short: tuple[str, PromptedClassifier, TrainResult] | None = None

    def training_split(self, reporter: Reporter, full: bool = False) -> EncodedSplit:
        """The rows condensation trains on, with the prompt-tuned model's logits per row when distilling
        (computed once, checkpointed for ``--resume``). A full condensation (``full``) trains on
        :attr:`full_rows`: the training split and, where ``condense.max_samples`` asks for more rows than
        it holds, as many more of the task's training rows that ``train_samples`` left out, labelled by the
        teacher; search trials and screenings keep the training split."""
        if self._train is None:
            self._train = self._with_teacher(self.workspace.train, TEACHER_FILE, reporter)
        if not full:
            return self._train
        if self._full is None:
            more = self.workspace.more_training_rows(self.full_rows - len(self._train))
            self._full = self._train
            if more is not None:
                what = "training rows --train-samples left out, for full condensations"
                more = self._with_teacher(more, TEACHER_MORE_FILE, reporter, what)
                self._full = self._train.concatenated(more)
        return self._full

    @property
    def full_rows(self) -> int:
        """The rows a full condensation trains on: ``condense.max_samples`` of them (all the split's when unset), at
        most every training row there is; fewer than the split holds are a seeded subset train_prompt takes."""
        wanted = self.config.condense.max_samples or len(self.workspace.train)
        left_out = self.workspace.data.left_out
        return min(wanted, len(self.workspace.train) + (0 if left_out is None else len(left_out)))

    def _with_teacher(
        self, split: EncodedSplit, file_name: str, reporter: Reporter, what: str = "training rows"
    ) -> EncodedSplit:
        """``split`` with the teacher's logits per row when distilling (kept in ``file_name`` of the stages), computed
        in the precision condensation trains in: a soft target rounded to bf16 teaches what the fp32 one does, and
        on a 2-core Intel Xeon with AMX the SST-2 teacher's logits on 3,000 training rows took 4.6 s in bf16
        autocast against 8.5 s in fp32 (1.83x, medians of 3 alternated passes; largest logit difference 0.022,
        argmax agreement 99.97%; ``benchmarks/sweeps/training_precision/teacher_logits_amx.json``)."""
        if self.config.condense.distill == 0:
            return split
        path = self.stages / file_name
        if path.is_file():
            logits = load_file(str(path))["logits"]
        else:
            reporter.message(f"teacher logits: the teacher on {len(split)} {what}")
            condense = self.config.condense
            with autocast(self.device, condense.precision):
                logits = predict_logits(
                    self.classifier, split, self.device, condense.eval_batch_size, self.workspace.pad_token_id
                )
            save_file({"logits": logits.contiguous()}, str(path))
        return split.with_teacher(logits)

    def condense(
        self,
        pruned: PromptedClassifier,
        value: float,
        reporter: Reporter,
        steps: int | None = None,
        validate_start: bool = True,
    ):
        config = self.config.condense if steps is None else replace(self.config.condense, steps=steps)
        description = f"condensing at {self.planner.kind} {value:.2f}"
        train, workspace = self.training_split(reporter, full=steps is None), self.workspace
        validation, pad = workspace.validation, workspace.pad_token_id
        return train_prompt(pruned, train, validation, config, self.device, pad, reporter, description, validate_start)

    @property
    def screening_steps(self) -> int | None:
        """The steps a calibration's screening condenses each candidate plan for (a share of a trial's)."""
        return None if self.trial_steps is None else max(1, round(SCREENING_SHARE * self.trial_steps))

    def screening(self, pruned: PromptedClassifier, plan: PruningPlan, value: float, reporter: Reporter) -> float:
        """Validation accuracy of ``pruned`` after a screening condensation (:attr:`screening_steps`), which
        only ranks candidate plans for the calibration: the untrained plan is not validated, nothing is kept."""
        result = self.condense(pruned, value, reporter, self.screening_steps, validate_start=False)
        return result.best_validation_accuracy

    def short_condensation(self, pruned: PromptedClassifier, plan: PruningPlan, value: float, reporter: Reporter):
        """Validation accuracy of ``pruned`` after a search trial's condensation (the calibration's judge).
        The most accurate so far, the first of equals (the calibration's own choice, as ``Planner.use``
        makes it), is kept, so the search's trial of that plan is not condensed a second time; the others
        are freed at once, so a calibration holds at most two condensed copies of the model."""
        result = self.condense(pruned, value, reporter, self.trial_steps)
        if self._short is None or result.best_validation_accuracy > self._short[2].best_validation_accuracy:
            self._short = (_structure(plan), pruned, result)
        return result.best_validation_accuracy

    def trial(self, value: float, reporter: Reporter) -> tuple[float, float, dict]:
        """One search trial: (validation accuracy, seconds, details). A value whose plan removes exactly
        what an earlier trial's did (whole layers make neighbouring values land on one plan) is that
        trial again, not condensed a second time."""
        started = time.perf_counter()
        pruned, plan = self.planner.prune(self.classifier, value)
        details = self.planner.describe(plan)
        structure = _structure(plan)
        if structure in self._tried:
            earlier, accuracy, earlier_details = self._tried[structure]
            self._same_plan[round(value, 6)] = earlier
            return accuracy, time.perf_counter() - started, {**earlier_details, "same_plan_as": earlier}
        if self.measure is not None:
            details.update(self.measure(pruned, plan))
        if self.config.fast_search:
            accuracy, predictions = self._validated(pruned)
            details["before_condensation"] = accuracy
        else:
            accuracy, predictions = self._condensed_trial(pruned, plan, value, details, reporter)
        details["correct"] = self.workspace.correct("validation", predictions)
        self._tried[structure] = (value, accuracy, dict(details))
        return accuracy, time.perf_counter() - started, details

    def _validated(self, model: PromptedClassifier) -> tuple[float, list[int]]:
        """(validation accuracy, argmax per validation row) of a model as it is."""
        batch_size = self.config.condense.eval_batch_size
        predictions = self.workspace.split_predictions(model, self.device, batch_size, ("validation",))["validation"]
        return 100.0 * float(self.workspace.correct("validation", predictions).mean()), predictions

    def _condensed_trial(self, pruned, plan, value: float, details: dict, reporter) -> tuple[float, list[int]]:
        """A trial judged by condensation: in full, or (with a trial budget) by a short condensation,
        or by the full condensation predicted from it where the short one alone misses the threshold. A
        short condensation that clears the threshold needs no prediction (the chosen value is condensed
        in full anyway, and a full condensation that falls short of it is caught there); one no better
        than the majority class has learned nothing to predict from. The first trial that needs a prediction
        is condensed in full instead (its model kept, for when that value is chosen): near the threshold, where
        predictions decide, it gives them their first pair of short and full accuracy; step 4 adds more."""
        if self._short is not None and self._short[0] == _structure(plan):  # the calibration condensed this plan
            _, pruned, result = self._short
            self._short = None
            details["condensed_by_calibration"] = True
        else:
            result = self.condense(pruned, value, reporter, self.trial_steps)
        accuracy, predictions = result.best_validation_accuracy, result.validation_predictions
        details["before_condensation"] = result.history[0]["validation_accuracy"]
        details["condensation_steps"] = result.steps
        if self.trial_steps is None:
            self._keep(pruned, plan, value, accuracy)
            return accuracy, predictions
        details["short_condensation_accuracy"] = accuracy
        if accuracy >= self.threshold:
            return accuracy, predictions
        if accuracy <= self.workspace.majority_metrics()["validation"]["accuracy"]:
            details["at_majority_class"] = True
            return accuracy, predictions
        if not self.full_pairs:
            full, _ = self.planner.prune(self.classifier, value)
            whole = self.condense(full, value, reporter)
            self.full_pairs.append((accuracy, whole.best_validation_accuracy))
            details["full_condensation_accuracy"] = whole.best_validation_accuracy
            self._keep(full, plan, value, whole.best_validation_accuracy)
            return whole.best_validation_accuracy, whole.validation_predictions
        self._predict(details)
        return details["predicted_full_condensation_accuracy"], predictions

    def _predict(self, details: dict) -> None:
        """A trial's predicted full condensation from its short one, with how it was had: as the share of the short
        one's gap to the teacher it leaves (exact whatever the pairs behind it) and how many pairs there were."""
        short = details["short_condensation_accuracy"]
        predicted = self.predicted_full(short)
        details["predicted_full_condensation_accuracy"] = predicted
        details["gap_left_by_full_condensation"] = (
            (self.teacher - predicted) / (self.teacher - short) if self.teacher > short else 0.0
        )
        details["teacher_accuracy"] = self.teacher
        details["predicted_from_pairs"] = len(self.full_pairs)

    def predicted_full(self, short: float) -> float:
        """What a full condensation is predicted to reach from a short one's ``short`` accuracy, from the plans
        condensed both ways (:func:`predicted_full`)."""
        return predicted_full(self.teacher, self.full_pairs, short)

    def _keep(self, condensed: PromptedClassifier, plan: PruningPlan, value: float, accuracy: float) -> None:
        _save_condensed(condensed, self.stages / f"trial-{value:.2f}", self.config.condense)
        self.condensed[round(value, 6)] = (condensed, plan, accuracy)

    def skeleton_model(
        self,
        search: SearchResult,
        reporter: Reporter,
        search_again: Callable[[list[Trial]], SearchResult] | None = None,
    ) -> tuple[PromptedClassifier, PruningPlan | None]:
        """The condensed model at the chosen value (the whole prompt-tuned model at 1.0).

        Where trials were judged by a short condensation, the search's boundary is checked in full on
        both sides. The faster trial next to the chosen value, when only a prediction rejected it, is
        condensed in full first and ships if it stays within the margin (``search.verified_from``). The
        chosen value is condensed in full and ships if it stays within the margin. Every full condensation
        is learnt from (:meth:`_learn`): its plan's trials take its accuracy, and every prediction is made
        again with its pair of short and full accuracy. When the chosen value misses the margin (or the
        neighbour does), the search goes on from what was learnt: ``search_again`` runs the binary search
        over the trials so far, trying new values where its path now leads (without it, the smallest value
        still accepted is chosen), until a chosen value holds in full or none is left and the model is kept
        whole; ``search.fallback_from`` is the first chosen value that missed. Only the latency fraction of a
        target speed-up (``--target-speedup``) that no trial kept within the margin ships whatever its accuracy,
        as the user asked (:meth:`_asked_for`), and the report says what it kept."""
        search_again = search_again or functools.partial(_smallest_accepted, search)
        while True:
            neighbour = self._verified_neighbour(search, reporter)
            if neighbour is not None:
                return neighbour
            value = search.value
            if value >= 1.0:
                reporter.message(f"no {self.planner.kind} on the grid held the margin: the model is kept whole")
                return self.classifier, None
            reporter.message(f"step 4/4: knowledge condensation at {self.planner.kind} {value:.2f}")
            chosen = self._condensed_in_full(value, reporter)
            search.condensed_in_full[f"{value:.2f}"] = chosen[2]
            if self.trial_steps is None or chosen[2] >= search.threshold:
                return chosen[:2]
            if self._asked_for(value, search):
                reporter.message(
                    f"  {value:.2f} condensed to {chosen[2]:.2f}, below the margin: shipped, the speed-up asked for"
                )
                return chosen[:2]
            search.fallback_from = search.fallback_from or value
            self._learn(search.trials, value, chosen[2])
            reporter.message(
                f"  {value:.2f} condensed to {chosen[2]:.2f}, below the margin: the search goes on from what the "
                "full condensations measured"
            )
            _merge(search, search_again(search.trials))
            search.searched_again += 1

    def _asked_for(self, value: float, search: SearchResult) -> bool:
        """Whether ``value`` is what ``--target-speedup`` asked for and no trial of it held the margin: the target
        model ships whatever its accuracy. A value the search chose, that a later prediction or its own full
        condensation then put below the margin, is not: the search falls back (a 2026-12-06 default run on the
        AMX Xeon shipped 2.6 points under its teacher by taking the one for the other)."""
        target = self.config.search.target_latency_fraction
        if target is None or round(value, 6) != round(target, 6):
            return False
        return not any(t.accepted and round(t.value, 6) == round(value, 6) for t in search.trials)

    def _verified_neighbour(self, search: SearchResult, reporter: Reporter):
        """(model, plan) of the chosen value's faster neighbour when only a prediction rejected it and it stays
        within the margin condensed in full; else ``None``, the neighbour learnt from and the search gone on."""
        faster = _nearest_rejected_by_prediction(search)
        if faster is None:
            return None
        reporter.message(
            f"step 4/4: knowledge condensation at {self.planner.kind} {faster:.2f} first: the faster neighbour "
            f"of the chosen {search.value:.2f}, rejected by a prediction only"
        )
        model, plan, accuracy = self._condensed_in_full(faster, reporter)
        search.condensed_in_full[f"{faster:.2f}"] = accuracy
        self._learn(search.trials, faster, accuracy)
        if accuracy >= search.threshold:
            search.verified_from, search.value = search.value, faster
            return model, plan
        reporter.message(f"  {faster:.2f} condensed to {accuracy:.2f}, below the margin as predicted")
        return None

    def _learn(self, trials: list[Trial], value: float, full: float) -> None:
        """What a full condensation of ``value``'s plan measured, into the trials: each trial of that plan is
        judged by it (its short condensation's interval dropped), the plan's short and full accuracy join the
        pairs predictions are made from, and every trial judged by a prediction is predicted again (and judged
        again, by the same rule the search used)."""
        values = self._plan_values(value)
        for trial in trials:
            details = trial.details
            if round(trial.value, 6) not in values or details.get("full_condensation_accuracy") == full:
                continue
            for key in (*_PREDICTION_KEYS, "drop_interval"):
                details.pop(key, None)
            details["full_condensation_accuracy"] = full
            trial.validation_accuracy, trial.accepted = full, full >= self.threshold
        self.full_pairs = full_pairs(trials)  # the pairs the trials now hold, this plan's among them
        for trial in trials:
            if "predicted_full_condensation_accuracy" in trial.details:
                self._predict(trial.details)
                trial.validation_accuracy = trial.details["predicted_full_condensation_accuracy"]
                trial.accepted = accepts(trial.validation_accuracy, trial.details, self.config.search, self.threshold)
        by_value = {round(t.value, 6): t for t in trials}
        for structure, (earlier, _, details) in list(self._tried.items()):
            trial = by_value.get(round(earlier, 6))
            if trial is not None:  # a later value of the same plan is this trial again, as learnt
                correct = {"correct": details["correct"]} if "correct" in details else {}
                self._tried[structure] = (earlier, trial.validation_accuracy, {**trial.details, **correct})

    def _plan_values(self, value: float) -> set[float]:
        """``value`` and every trial value whose plan is the same (rounded, as the trials' keys are)."""
        first = round(self._same_plan.get(round(value, 6), value), 6)
        return {first} | {later for later, earlier in self._same_plan.items() if round(earlier, 6) == first}

    def _condensed_in_full(self, value: float, reporter: Reporter) -> tuple[PromptedClassifier, PruningPlan, float]:
        """(model, plan, validation accuracy) of ``value`` condensed in full: the kept trial, the
        checkpoint of a resumed run, or a new condensation (kept, and checkpointed)."""
        value = self._same_plan.get(round(value, 6), value)
        if round(value, 6) in self.condensed:
            return self.condensed[round(value, 6)]
        model, plan = self.planner.prune(self.classifier, value)
        trial_dir = self.stages / f"trial-{value:.2f}"
        if (trial_dir / "prompt").is_dir():  # resumed: reuse the condensed trial
            model = _load_condensed(model, trial_dir, self.workspace).to(self.device)
            accuracy, _ = self._validated(model)
        else:
            accuracy = self.condense(model, value, reporter).best_validation_accuracy
        self._keep(model, plan, value, accuracy)
        return model, plan, accuracy


def predicted_full(teacher: float, pairs: list[tuple[float, float]], short: float) -> float:
    """A full condensation's accuracy predicted from a short one's, from ``pairs`` of (short, full) accuracy of
    plans condensed both ways. Between two pairs' short accuracies, the full accuracy is interpolated linearly;
    outside them, the nearest pair's share of the gap to the teacher that its full condensation left
    (:func:`gap_left`) is taken to hold: ``teacher - share * (teacher - short)``, so one pair gives that
    share for every plan. The share alone, measured near the threshold, over-promises for plans far below it:
    on SST-2 a share of 4% (83.70 short, 87.40 in full) predicted 86.95 for a one-layer plan whose short
    condensation reached 72.25, and it condensed in full to 79.35."""
    if not pairs:
        raise ValueError("a prediction needs at least one plan condensed both ways")
    ordered = sorted(pairs)
    below = [pair for pair in ordered if pair[0] <= short]
    above = [pair for pair in ordered if pair[0] >= short]
    if below and above:
        (low, low_full), (high, high_full) = below[-1], above[0]
        if high == low:
            return (low_full + high_full) / 2
        return low_full + (high_full - low_full) * (short - low) / (high - low)
    nearest_short, nearest_full = above[0] if above else below[-1]
    return teacher - gap_left(teacher, nearest_short, nearest_full) * (teacher - short)


def full_pairs(trials: list[Trial]) -> list[tuple[float, float]]:
    """(short, full) validation accuracy of every plan the trials hold condensed both ways (a resumed run's
    predictions are made from them again)."""
    pairs = []
    for trial in trials:
        details = trial.details
        if "full_condensation_accuracy" in details and "short_condensation_accuracy" in details:
            pair = (details["short_condensation_accuracy"], details["full_condensation_accuracy"])
            pairs += [] if pair in pairs else [pair]
    return pairs


def gap_left(teacher: float, short: float, full: float) -> float:
    """The share of a short condensation's gap to the teacher that a full condensation of the same plan left,
    within [0, 1]: 0 where the full one reached the teacher (or passed it), 1 where it added nothing."""
    return min(1.0, max(0.0, (teacher - full) / (teacher - short))) if teacher > short else 0.0


# what a trial judged by a predicted full condensation holds about the prediction
_PREDICTION_KEYS = (
    "predicted_full_condensation_accuracy",
    "gap_left_by_full_condensation",
    "teacher_accuracy",
    "predicted_from_pairs",
)


def _smallest_accepted(search: SearchResult, trials: list[Trial]) -> SearchResult:
    """The search as its trials now judge it, no new trial run: the smallest value still accepted (1.0 if none)."""
    accepted = [t.value for t in trials if t.accepted]
    return SearchResult(min(accepted, default=1.0), search.threshold, trials, search.kind)


def _merge(search: SearchResult, again: SearchResult) -> None:
    """``search`` takes the value the search chose again and the trials it ran new (after those run before)."""
    known = {id(t) for t in search.trials}
    search.trials.extend(t for t in again.trials if id(t) not in known)
    search.value = again.value


def _nearest_rejected_by_prediction(search: SearchResult) -> float | None:
    """The rejected trial faster than the chosen value and nearest to it, when the full condensation predicted
    from a short one (not a full condensation, nor the majority class) rejected it; else ``None``."""
    rejected = [t for t in search.trials if not t.accepted and t.value < search.value]
    if not rejected:
        return None
    nearest = max(rejected, key=lambda t: t.value)
    return nearest.value if "predicted_full_condensation_accuracy" in nearest.details else None


def _structure(plan: PruningPlan) -> str:
    """What a plan removes (FFN neurons and output dims, heads, layers), as a comparable key."""
    kept = (plan.keep_indices, plan.out_keep_indices, plan.head_keep_indices, plan.kept_layers)
    return json.dumps(kept)


def _save_condensed(classifier: PromptedClassifier, directory: Path, condense) -> None:
    """Checkpoint a condensed trial: its prompt and head, and its backbone when condensation adapted it."""
    save_prompt_and_head(classifier, directory)
    if condense.trains != "prompt":
        save_model(classifier.backbone, str(directory / MODEL_FILE))


def _load_condensed(pruned: PromptedClassifier, directory: Path, workspace: Workspace) -> PromptedClassifier:
    """A checkpointed trial (:func:`_save_condensed`) on the pruned classifier's backbone."""
    if (directory / MODEL_FILE).is_file():
        load_model(pruned.backbone, str(directory / MODEL_FILE))
    return load_prompt_and_head(pruned.backbone, workspace.tokenizer, workspace.spec, directory)
