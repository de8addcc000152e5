"""Condensation beyond the prompt: distillation to the prompt-tuned model, LoRA merged into the
weights, every encoder weight trained; and the paper's prompt-only mode left as it was."""

import json
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file

import skeleton
from skeleton.compression import compress
from skeleton.core.config import DEFAULT_CONDENSED_PROMPT_TOKENS, SearchConfig, TrainConfig
from skeleton.core.data import DataConfig
from skeleton.core.evaluation import predict_logits
from skeleton.core.workspace import ModelConfig, Workspace
from skeleton.method.adaptation import close_backbone, open_backbone
from skeleton.method.tuning import distillation_loss, evaluate, train_prompt
from tests.conftest import ARCHITECTURE_NAMES
from tests.helpers import random_inputs, tiny_classifier, tiny_compress_config

CPU = torch.device("cpu")


def test_a_teacher_identical_to_the_student_gives_zero_kl():
    logits = torch.randn(16, 3) * 4
    for temperature in (1.0, 2.0, 5.0):
        assert distillation_loss(logits, logits.clone(), temperature).item() == pytest.approx(0.0, abs=1e-6)
    other = logits + torch.randn(16, 3)
    assert distillation_loss(other, logits, 2.0).item() > 1e-3
    # a shift of every logit by one constant leaves the softmax, and so the loss, at zero
    assert distillation_loss(logits + 7.0, logits, 2.0).item() == pytest.approx(0.0, abs=1e-5)


def test_distillation_worked_by_hand():
    student, teacher = torch.tensor([[0.0, 0.0]]), torch.tensor([[2.0, 0.0]])
    p = torch.softmax(teacher / 2.0, -1)[0]  # the softened teacher: (e/(e+1), 1/(e+1))
    expected = (p * (p.log() - torch.log(torch.tensor([0.5, 0.5])))).sum() * 4.0
    assert distillation_loss(student, teacher, 2.0).item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("model_type", ARCHITECTURE_NAMES)
def test_merged_lora_equals_the_unmerged_adapter(model_type, tokenizer, tokenizer_dir):
    classifier = tiny_classifier(model_type, tokenizer, tokenizer_dir)
    inputs = random_inputs()
    names_before = set(classifier.backbone.state_dict())
    with torch.no_grad():
        untouched = classifier(**inputs)
    parameters = open_backbone(classifier, "lora", rank=4)
    assert parameters and all(p.requires_grad for p in parameters)
    trainable = {id(p) for p in classifier.backbone.parameters() if p.requires_grad}
    assert trainable == {id(p) for p in parameters}  # only the adapters, never a base weight
    with torch.no_grad():
        assert torch.equal(classifier(**inputs), untouched)  # B starts at zero: nothing changes yet
        for parameter in parameters:
            parameter.normal_(0, 0.2)  # as if trained
        adapted = classifier(**inputs)
    assert (adapted - untouched).abs().max() > 1e-3
    assert close_backbone(classifier) == 6 * 2  # six linear layers in each of the two layers
    with torch.no_grad():
        torch.testing.assert_close(classifier(**inputs), adapted, atol=1e-5, rtol=1e-5)
    # a plain model again: the same weights by name, nothing trainable
    assert set(classifier.backbone.state_dict()) == names_before
    assert not any(p.requires_grad for p in classifier.backbone.parameters())


def test_full_condensation_trains_the_encoder_not_the_embeddings(tokenizer, tokenizer_dir):
    classifier = tiny_classifier("bert", tokenizer, tokenizer_dir)
    parameters = open_backbone(classifier, "full")
    names = {name for name, p in classifier.backbone.named_parameters() if p.requires_grad}
    assert names and all(name.startswith("encoder.layer.") for name in names)
    assert sum(p.numel() for p in parameters) == sum(
        p.numel() for name, p in classifier.backbone.named_parameters() if name.startswith("encoder.layer.")
    )
    close_backbone(classifier)
    assert not any(p.requires_grad for p in classifier.backbone.parameters())


def _workspace(tiny_bert_dir, sst2_dir):
    model_config = ModelConfig(model=str(tiny_bert_dir), num_virtual_tokens=4, use_template=False)
    return Workspace(DataConfig("sst2", str(sst2_dir), validation_rows="all"), model_config)


def test_distillation_needs_teacher_logits(tiny_bert_dir, sst2_dir):
    workspace = _workspace(tiny_bert_dir, sst2_dir)
    config = TrainConfig(steps=2, batch_size=16, distill=0.5)
    with pytest.raises(ValueError, match="teacher"):
        train_prompt(workspace.new_classifier(), workspace.train, workspace.validation, config, CPU)
    with pytest.raises(ValueError, match="rows"):
        workspace.train.with_teacher(torch.zeros(len(workspace.train) + 1, 2))


def test_pure_distillation_follows_the_teacher_not_the_labels(tiny_bert_dir, sst2_dir):
    """With distill 1 the labels play no part: a teacher that says the opposite of every label is
    what the student learns (the best state is chosen on a validation split labelled as the teacher says)."""
    from skeleton.core.batching import EncodedSplit

    workspace = _workspace(tiny_bert_dir, sst2_dir)
    labels = torch.tensor(workspace.train.labels)
    contrary = torch.nn.functional.one_hot(1 - labels, 2).float() * 8.0  # confident, and always wrong
    train = workspace.train.with_teacher(contrary)
    flipped = [1 - label for label in workspace.validation.labels]
    validation = EncodedSplit(workspace.validation.input_ids, workspace.validation.token_type_ids, flipped)
    classifier = workspace.new_classifier()
    config = TrainConfig(epochs=4, batch_size=16, lr=5e-2, head_lr=5e-2, evals_per_epoch=1, patience=8, distill=1.0)
    train_prompt(classifier, train, validation, config, CPU)
    assert evaluate(classifier, workspace.train, CPU)["accuracy"] < 25


@pytest.mark.parametrize("trains", ["lora", "full"])
def test_an_adapted_slim_model_saves_reloads_and_exports_with_parity(tmp_path, tiny_bert_dir, sst2_dir, trains):
    from skeleton.core.config import ExportConfig
    from skeleton.deploy.export import export_directory

    condense = TrainConfig(
        epochs=2, batch_size=16, lr=5e-2, head_lr=5e-2, evals_per_epoch=4, trains=trains, backbone_lr=1e-3, distill=0.5
    )
    # without the template, and judged on every validation row, the tiny model learns the keyword
    # task well enough that condensation gains over the pruned model, so the adapted state is kept
    data = DataConfig("sst2", str(sst2_dir), validation_rows="all")
    model = ModelConfig(model=str(tiny_bert_dir), num_virtual_tokens=4, use_template=False)
    search = SearchConfig(margin=100.0, max_trials=1)
    out = tmp_path / "out"
    config = tiny_compress_config(
        out, tiny_bert_dir, sst2_dir, condense=condense, search=search, data=data, model=model
    )
    report = compress(config).report
    trial = report.search["trials"][0]
    assert trial["details"]["condensation_steps"] > 0
    # the shipped model is the trial's value condensed in full
    assert report.skeleton["validation"]["accuracy"] > trial["details"]["before_condensation"]
    loaded = skeleton.load(out, device="cpu")
    workspace = Workspace(data, model)
    accuracy = evaluate(loaded.classifier, workspace.test, CPU)["accuracy"]
    assert accuracy == pytest.approx(report.skeleton["test"]["accuracy"])
    pretrained = load_file(str(tiny_bert_dir / "model.safetensors"))
    saved = load_file(str(out / "model.safetensors"))
    query = "encoder.layer.0.attention.self.query.weight"
    pretrained_query = next(v for k, v in pretrained.items() if k.endswith(query))
    assert pretrained_query.shape == saved[query].shape  # heads are not pruned here
    assert not torch.allclose(pretrained_query, saved[query])
    assert not any("lora" in name for name in saved)
    summary = export_directory(out, ExportConfig(variants=("fp32",), parity_samples=8, latency_repeats=2))
    manifest = json.loads((out / "onnx" / "manifest.json").read_text())
    assert manifest["variants"]["fp32"]["max_abs_diff"] < 1e-4
    assert summary.variants["fp32"]["test_accuracy"] == pytest.approx(accuracy)


def test_prompt_condensation_is_the_papers_whatever_the_other_settings(tmp_path, tiny_bert_dir, sst2_dir, monkeypatch):
    """``--condense prompt`` without distillation: the backbone settings that only lora and full read
    change nothing, and the backbone stays the pruned pretrained one."""
    from skeleton.method import condensation

    teacher_passes, real_logits = [], condensation.predict_logits
    monkeypatch.setattr(
        condensation, "predict_logits", lambda *a, **k: teacher_passes.append(1) or real_logits(*a, **k)
    )
    reports, plans = [], []
    for name, extra in (("a", {}), ("b", {"trains": "prompt", "backbone_lr": 0.5, "lora_rank": 3, "temperature": 9.0})):
        condense = TrainConfig(
            **{"epochs": 1, "batch_size": 16, "lr": 5e-2, "head_lr": 5e-2, "evals_per_epoch": 1, **extra}
        )
        config = tiny_compress_config(tmp_path / name, tiny_bert_dir, sst2_dir, condense=condense, targets=("ffn",))
        reports.append(compress(config).report)
        plans.append(json.loads((tmp_path / name / "pruning_plan.json").read_text()))
    assert plans[0]["keep_indices"] == plans[1]["keep_indices"]
    assert reports[0].skeleton == reports[1].skeleton
    assert [t["validation_accuracy"] for t in reports[0].search["trials"]] == [
        t["validation_accuracy"] for t in reports[1].search["trials"]
    ]
    assert teacher_passes == []  # no teacher pass without distillation
    # the saved backbone is the pretrained one with the pruned rows and columns removed
    pretrained = {k.removeprefix("bert."): v for k, v in load_file(str(tiny_bert_dir / "model.safetensors")).items()}
    saved = load_file(str(tmp_path / "a" / "model.safetensors"))
    for layer, kept in enumerate(plans[0]["keep_indices"]):
        name = f"encoder.layer.{layer}.intermediate.dense.weight"
        torch.testing.assert_close(saved[name], pretrained[name][torch.tensor(kept, dtype=torch.long)], rtol=0, atol=0)


def test_the_default_compress_searches_everything_and_condenses_the_backbone():
    from skeleton.core.config import (
        CONDENSE_RECIPES,
        DEFAULT_CONDENSED_PROMPT_TOKENS,
        DEFAULT_TRIAL_SHARE,
        CompressConfig,
        default_condense_config,
    )

    config = CompressConfig().resolved()
    assert config.targets == ("ffn", "heads", "layers") and config.uses_costs
    assert config.condense.trains == "full" and config.condense.distill == 0.5
    # the default step 1 fine-tunes the backbone: no soft prompt to shorten; the paper's prompt is shortened
    assert config.model.num_virtual_tokens == 0 and config.condensed_prompt_tokens is None
    prompted = CompressConfig(tune=TrainConfig(trains="prompt")).resolved()
    assert prompted.condensed_prompt_tokens == DEFAULT_CONDENSED_PROMPT_TOKENS
    # 20,000 rows at batch 32: 625 steps, above the floor; trials take a quarter of them
    assert config.trial_budget(20000) == round(DEFAULT_TRIAL_SHARE * 625) and not config.fast_search
    # a trial budget at or past the whole condensation is the whole condensation
    unfloored = replace(default_condense_config(), min_steps=None)
    assert CompressConfig(trial_steps=50, condense=unfloored).resolved().trial_budget(30 * 32) is None
    # the paper's mode: FFN neurons by kept ratio, the prompt alone, no teacher, trials in full
    paper = CompressConfig(targets=("ffn",), condense=default_condense_config("prompt")).resolved()
    mrpc = CompressConfig(data=DataConfig("mrpc")).resolved()
    assert not mrpc.fast_search  # short trials instead of judging the uncondensed model
    mrpc_paper = CompressConfig(data=DataConfig("mrpc"), condense=default_condense_config("prompt")).resolved()
    assert mrpc_paper.fast_search  # the paper's mode keeps the task's recipe
    assert not paper.uses_costs and paper.condensed_prompt_tokens is None and paper.trial_budget(20000) is None
    assert paper.condense.distill == 0.0 and paper.condense.trains == "prompt"
    for trains, recipe in CONDENSE_RECIPES.items():
        assert default_condense_config(trains) == TrainConfig(
            epochs=1.0, evals_per_epoch=2, patience=2, trains=trains, **recipe
        )
    with pytest.raises(ValueError, match="condense must be one of"):
        default_condense_config("everything")


def test_a_small_training_split_is_condensed_for_at_least_the_floor_and_its_trials_stay_short():
    """min_steps raises one epoch of a small split to the floor; --condense-steps overrides both; search
    trials take their share of the epoch, not of the floor, so the floor costs only full condensations."""
    from skeleton.core.config import DEFAULT_CONDENSE_MIN_STEPS, DEFAULT_TRIAL_SHARE, CompressConfig

    condense = TrainConfig(epochs=1, batch_size=32, min_steps=600, trains="full")
    assert condense.planned_steps(4798) == 600  # news.csv: 150 steps an epoch
    assert condense.planned_steps(20000) == 625  # SST-2's epoch is past the floor: unchanged
    assert replace(condense, epochs=5).planned_steps(4798) == 750
    assert replace(condense, steps=40).planned_steps(4798) == 40
    assert replace(condense, min_steps=None).planned_steps(4798) == 150
    with pytest.raises(ValueError, match="min_steps"):
        TrainConfig(min_steps=0)
    user_file = DataConfig(data_file="news.csv", text_columns=["text"], label_column="label")
    config = CompressConfig(data=user_file).resolved()  # a user's file: the general recipe
    assert config.condense.min_steps == DEFAULT_CONDENSE_MIN_STEPS
    assert config.trial_budget(4798) == round(DEFAULT_TRIAL_SHARE * 150)
    assert config.condense.planned_steps(4798) == DEFAULT_CONDENSE_MIN_STEPS
    # SST-2's recipe: two passes over every training row, no floor; its trials keep a quarter of one epoch
    sst2 = CompressConfig().resolved().condense
    assert (sst2.epochs, sst2.min_steps, sst2.max_samples) == (2, None, 50000)
    assert CompressConfig().resolved().trial_budget(20000) == round(DEFAULT_TRIAL_SHARE * 625)


def test_trials_keep_a_quarter_of_one_epoch_however_long_the_full_condensation():
    from skeleton.core.config import DEFAULT_TRIAL_SHARE, CompressConfig, default_condense_config

    for epochs in (1.0, 2.0, 4.0):
        config = CompressConfig(condense=replace(default_condense_config(), epochs=epochs)).resolved()
        assert config.trial_budget(20000) == round(DEFAULT_TRIAL_SHARE * 625)
        assert config.condense.planned_steps(20000) == 625 * epochs


def test_a_full_condensation_distils_on_the_rows_train_samples_left_out_and_trials_do_not(
    tmp_path, tiny_bert_dir, sst2_dir
):
    """--condense-samples above the training split: full condensations train on that many rows, the left-out
    ones labelled by the teacher (its logits checkpointed); trials and screenings keep the training split."""
    from skeleton.core.file_names import TEACHER_FILE, TEACHER_MORE_FILE
    from skeleton.core.progress import SILENT
    from skeleton.method.condensation import Condensation

    data = DataConfig("sst2", str(sst2_dir), validation_rows="all", train_samples=100)
    workspace = Workspace(data, ModelConfig(model=str(tiny_bert_dir), num_virtual_tokens=0))
    classifier = workspace.new_classifier()
    for wanted, rows in ((None, 100), (80, 80), (200, 200), (10_000, 270)):  # 270 training rows in all
        condense = TrainConfig(trains="full", distill=0.5, max_samples=wanted)
        config = tiny_compress_config(tmp_path, tiny_bert_dir, sst2_dir, data=data, condense=condense)
        stages = tmp_path / f"stages-{wanted}"
        stages.mkdir()
        condensation = Condensation(workspace, None, classifier, config, stages, CPU, 50.0)
        assert condensation.full_rows == rows
        trials, full = condensation.training_split(SILENT), condensation.training_split(SILENT, full=True)
        assert len(trials) == 100 and trials.input_ids == workspace.train.input_ids
        assert len(full) == max(rows, 100)  # fewer rows than the split: train_prompt subsamples (max_samples)
        assert full.input_ids[:100] == workspace.train.input_ids and full.teacher_logits.shape == (len(full), 2)
        if rows > 100:  # the left-out rows carry the teacher's own logits
            expected = predict_logits(classifier, workspace.more_training_rows(rows - 100), CPU, 64, 0)
            torch.testing.assert_close(full.teacher_logits[100:], expected)
        assert (stages / TEACHER_FILE).is_file() and (stages / TEACHER_MORE_FILE).is_file() == (rows > 100)


def test_the_teachers_logits_are_computed_in_the_precision_condensation_trains_in(tmp_path, tiny_bert_dir, sst2_dir):
    """A bf16 run distils to logits its teacher gave under bf16 autocast (the fp32 pass is the slow one on a CPU
    with AMX); an fp32 run to fp32 logits."""
    from skeleton.core.precision import autocast
    from skeleton.core.progress import SILENT
    from skeleton.method.condensation import Condensation

    data = DataConfig("sst2", str(sst2_dir), validation_rows="all", train_samples=100)
    workspace = Workspace(data, ModelConfig(model=str(tiny_bert_dir), num_virtual_tokens=0))
    classifier = workspace.new_classifier()
    fp32 = predict_logits(classifier, workspace.train, CPU, 64, 0)
    with autocast(CPU, "bf16"):
        bf16 = predict_logits(classifier, workspace.train, CPU, 64, 0)
    assert not torch.equal(fp32, bf16)  # the two precisions give different logits on this model
    for precision, expected in (("fp32", fp32), ("bf16", bf16)):
        condense = TrainConfig(trains="full", distill=0.5, precision=precision)
        config = tiny_compress_config(tmp_path, tiny_bert_dir, sst2_dir, data=data, condense=condense)
        stages = tmp_path / f"stages-{precision}"
        stages.mkdir()
        condensation = Condensation(workspace, None, classifier, config, stages, CPU, 50.0)
        teacher = condensation.training_split(SILENT).teacher_logits
        assert teacher.dtype == torch.float32
        torch.testing.assert_close(teacher, expected, rtol=0, atol=0)


def test_the_command_line_takes_the_recipe_of_the_kind_asked_for():
    from cli.main import train_config

    assert train_config("sst2", "condense", {"trains": "prompt"}).distill == 0.0
    lora = train_config("sst2", "condense", {"trains": "lora", "lora_rank": 4})
    assert (lora.distill, lora.backbone_lr, lora.lora_rank) == (0.5, 1e-3, 4)
    given = train_config("sst2", "condense", {"trains": "prompt", "distill": 0.3, "lr": None})
    assert given.distill == 0.3 and given.lr == TrainConfig.lr
    assert train_config("sst2", "condense", {}).trains == "full"
    # epochs asked for are that many passes: the recipe's floor goes with its epoch
    assert train_config("mrpc", "condense", {}).min_steps == 600
    two = train_config("mrpc", "condense", {"epochs": 2.0})
    assert two.min_steps is None and two.planned_steps(4798) == 300
    sst2 = train_config("sst2", "condense", {})  # SST-2's recipe: two passes over up to 50,000 rows, no floor
    assert (sst2.epochs, sst2.min_steps, sst2.max_samples) == (2, None, 50000)
    floored = train_config("mrpc", "condense", {"epochs": 2.0, "min_steps": 400})
    assert floored.planned_steps(4798) == 400


def test_the_default_search_returns_the_fastest_trial_within_the_margin(tmp_path, tiny_bert_dir, sst2_dir, monkeypatch):
    """Latency fractions below 0.3 are made to fail (their trials report no accuracy): the search
    must end on the smallest accepted fraction, the fastest model within the margin, and ship it."""
    import skeleton.measure.latency as latency
    import skeleton.method.condensation as condensation

    monkeypatch.setenv("SKELETON_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(latency, "default_grid", lambda full, points: sorted({1, full // 2, full}))
    real_trial = condensation.Condensation.trial

    def cliff(self, value, reporter):
        accuracy, seconds, details = real_trial(self, value, reporter)
        if value < 0.3 - 1e-9:
            details["correct"] = details["correct"] & False
            return 0.0, seconds, details
        return accuracy, seconds, details

    monkeypatch.setattr(condensation.Condensation, "trial", cliff)
    condensed, real_condense = [], condensation.Condensation.condense

    def counted(self, pruned, value, reporter, steps=None, **options):
        condensed.append((round(value, 6), steps))
        return real_condense(self, pruned, value, reporter, steps, **options)

    monkeypatch.setattr(condensation.Condensation, "condense", counted)
    teacher_passes, real_logits = [], condensation.predict_logits
    monkeypatch.setattr(
        condensation, "predict_logits", lambda *a, **k: teacher_passes.append(1) or real_logits(*a, **k)
    )
    condense = TrainConfig(
        epochs=1, batch_size=16, lr=5e-2, head_lr=5e-2, evals_per_epoch=1, trains="full", distill=0.5
    )
    config = tiny_compress_config(
        tmp_path / "out",
        tiny_bert_dir,
        sst2_dir,
        targets=("ffn", "heads", "layers"),
        condense=condense,
        search=SearchConfig(margin=10.0, max_trials=6),
        trial_steps=3,
        cost_shapes=((1, 8), (4, 16)),
    )
    report = compress(config).report
    trials = report.search["trials"]
    assert report.search["kind"] == "latency fraction"
    assert all(t["details"]["condensation_steps"] <= 3 for t in trials)  # short trials
    assert [t["value"] for t in trials][:2] == [0.5, 0.25]
    accepted = [t["value"] for t in trials if t["accepted"]]
    assert all(t["accepted"] == (t["value"] >= 0.3 - 1e-9) for t in trials)
    assert report.search_value == min(accepted) == pytest.approx(0.3)
    # the shipped model is the chosen fraction's, condensed in full (not the 3-step trial): on a tiny model
    # neighbouring fractions can land on one plan, which is then condensed once, under the first of them
    chosen = next(t for t in trials if t["value"] == pytest.approx(0.3))
    assert (round(chosen["details"].get("same_plan_as", 0.3), 6), None) in condensed
    assert len(teacher_passes) == 1  # the teacher's logits are computed once, for every trial
    assert report.prompt_tokens["skeleton"] == min(
        DEFAULT_CONDENSED_PROMPT_TOKENS, report.prompt_tokens["prompt_tuned"]
    )


def test_short_trials_are_predicted_only_below_the_threshold_and_above_the_majority_class(tmp_path):
    """A short condensation that clears the threshold is judged by itself; one at the majority class
    has learned nothing to predict from; the first one in between is condensed in full, which measures the
    share of its gap to the teacher a full condensation leaves, and later ones are predicted with that share:
    never above the teacher, however far below it the measurement was made."""
    from types import SimpleNamespace

    from skeleton.method.condensation import Condensation
    from skeleton.method.tuning import TrainResult

    condensation = object.__new__(Condensation)
    condensation.trial_steps, condensation.full_pairs, condensation.stages = 10, [], tmp_path
    condensation.teacher, condensation.threshold, condensation.condensed, condensation._short = 80.0, 75.0, {}, None
    condensation.workspace = SimpleNamespace(majority_metrics=lambda: {"validation": {"accuracy": 40.0}})
    condensation.planner = SimpleNamespace(prune=lambda classifier, value: ("full model", None))
    condensation.classifier = None
    kept = []
    condensation._keep = lambda model, plan, value, accuracy: kept.append((model, value))
    reached = {"short": 76.0, "full": 78.0}
    runs = []

    def fake_condense(pruned, value, reporter, steps=None):
        runs.append("short" if steps else "full")
        accuracy = reached["short" if steps else "full"]
        return TrainResult(accuracy, steps or 100, 0.0, [{"validation_accuracy": 30.0}], [1, 0])

    condensation.condense = fake_condense
    details: dict = {}
    # clears the threshold short: no full condensation, nothing measured
    assert condensation._condensed_trial(None, None, 0.5, details, None) == (76.0, [1, 0])
    assert runs == ["short"] and condensation.full_pairs == [] and "gap_left_by_full_condensation" not in details
    # at the majority class: rejected as it is, nothing measured on it
    reached["short"], details = 40.0, {}
    assert condensation._condensed_trial(None, None, 0.2, details, None) == (40.0, [1, 0])
    assert details["at_majority_class"] and condensation.full_pairs == [] and runs == ["short", "short"]
    # below the threshold, far above the majority: condensed in full, 50 -> 78 leaves 2 of the 30 points to 80
    reached["short"], details = 50.0, {}
    assert condensation._condensed_trial(None, None, 0.3, details, None) == (78.0, [1, 0])
    assert runs[-2:] == ["short", "full"] and kept == [("full model", 0.3)]
    assert condensation.full_pairs == [(50.0, 78.0)] and details["full_condensation_accuracy"] == 78.0
    # later trials are predicted with that share: 74 short -> 80 - 6 * 2/30 = 79.6 (the 28 points the first
    # full condensation added would have said 102)
    reached["short"], details = 74.0, {}
    predicted, _ = condensation._condensed_trial(None, None, 0.35, details, None)
    assert predicted == pytest.approx(79.6) and runs[-1] == "short"
    assert details["predicted_full_condensation_accuracy"] == pytest.approx(79.6)
    assert details["gap_left_by_full_condensation"] == pytest.approx(2 / 30) and details["teacher_accuracy"] == 80.0
    assert details["predicted_from_pairs"] == 1


def test_the_share_of_the_gap_left_stays_between_none_and_all():
    from skeleton.method.condensation import gap_left

    assert gap_left(80.0, 60.0, 75.0) == pytest.approx(0.25)
    assert gap_left(80.0, 60.0, 81.0) == 0.0  # the full condensation passed the teacher
    assert gap_left(80.0, 60.0, 55.0) == 1.0  # it did worse than the short one: predicted no better than short


def test_a_prediction_interpolates_between_the_plans_condensed_both_ways_and_keeps_a_share_beyond_them():
    from skeleton.method.condensation import predicted_full

    # one pair: its share of the gap to the teacher, for every plan (60 -> 75 leaves a quarter of 20 points)
    assert predicted_full(80.0, [(60.0, 75.0)], 70.0) == pytest.approx(77.5)
    assert predicted_full(80.0, [(60.0, 75.0)], 40.0) == pytest.approx(70.0)
    # the SST-2 run that over-promised: a 4% share measured at 83.70 said 86.95 for a short 72.25; with the
    # one-layer plan's own pair (62.65 -> 78.60) the same short is 82.6, under the margin's 86.55
    pairs = [(83.70, 87.40), (62.65, 78.60)]
    assert predicted_full(87.55, pairs[:1], 72.25) == pytest.approx(86.954, abs=1e-3)
    assert predicted_full(87.55, pairs, 72.25) == pytest.approx(78.60 + 8.80 * (9.60 / 21.05))
    # beyond every pair, the nearest one's share: above 83.70 its 4%, below 62.65 the other's 36%
    assert predicted_full(87.55, pairs, 85.0) == pytest.approx(87.55 - (0.15 / 3.85) * 2.55)
    assert predicted_full(87.55, pairs, 50.0) == pytest.approx(87.55 - (8.95 / 24.90) * 37.55)
    # two plans with the same short accuracy: their mean
    assert predicted_full(80.0, [(70.0, 76.0), (70.0, 78.0)], 70.0) == 77.0
    with pytest.raises(ValueError, match="at least one plan"):
        predicted_full(80.0, [], 70.0)


def _layers_plan(layers):
    from types import SimpleNamespace

    return SimpleNamespace(
        keep_indices=[[1, 2]] * len(layers), out_keep_indices=None, head_keep_indices=None, kept_layers=layers
    )


def test_the_calibrations_short_condensation_of_the_plan_it_chose_is_that_plans_trial(tmp_path):
    """The calibration condenses each candidate plan as a search trial would; the trial of the plan it
    chose reuses that condensation instead of condensing the plan again, and the others are freed."""
    from types import SimpleNamespace

    from skeleton.method.condensation import Condensation
    from skeleton.method.tuning import TrainResult

    condensation = object.__new__(Condensation)
    condensation.trial_steps, condensation.full_pairs, condensation.stages = 10, [], tmp_path
    condensation.threshold, condensation.condensed, condensation._short = 75.0, {}, None
    condensation.workspace = SimpleNamespace(majority_metrics=lambda: {"validation": {"accuracy": 68.0}})
    runs = []

    def fake_condense(pruned, value, reporter, steps=None):
        runs.append((pruned, steps))
        return TrainResult(80.0 if pruned == "chosen" else 78.0, steps, 0.0, [{"validation_accuracy": 50.0}], [1, 0])

    condensation.condense = fake_condense
    chosen, other = _layers_plan([0, 1]), _layers_plan([0, 1, 2])
    assert condensation.short_condensation("chosen", chosen, 0.5, None) == 80.0
    assert condensation.short_condensation("other", other, 0.5, None) == 78.0
    details: dict = {}  # the same plan, planned again for the trial
    assert condensation._condensed_trial("a fresh copy", _layers_plan([0, 1]), 0.5, details, None) == (80.0, [1, 0])
    assert runs == [("chosen", 10), ("other", 10)] and details["condensed_by_calibration"]
    # the other plan's condensation was freed: its trial condenses it
    details = {}
    assert condensation._condensed_trial("a fresh copy", other, 0.45, details, None) == (78.0, [1, 0])
    assert runs[-1] == ("a fresh copy", 10) and "condensed_by_calibration" not in details


def test_the_calibration_judges_each_distinct_plan_once_and_keeps_the_most_accurate():
    """Candidates that land on one plan are judged once; the most accurate candidate wins, and among
    equals the first (whole layers kept, the lowest head weight)."""
    import math
    from types import SimpleNamespace

    from skeleton.method.planning import Planner

    planner = object.__new__(Planner)
    planner.config = SimpleNamespace(targets=("ffn", "heads", "layers"))

    def prune(classifier, value, **candidate):  # the head weight changes nothing here; whole layers do
        layers = [0, 1] if candidate["prune_layers"] else [0, 1, 2]
        plan = SimpleNamespace(
            keep_indices=[[1]] * 3, kept_sizes=[1] * len(layers), kept_heads=[1] * len(layers), kept_layers=layers
        )
        plan.heads_per_layer = lambda heads: [1] * len(layers)
        return f"pruned to {len(layers)} layers", plan

    planner.prune = prune
    for accuracy, winner in (({2: 81.0, 3: 80.0}, (1.0, True)), ({2: 80.0, 3: 80.0}, (1.0, False))):
        judged = []

        def judge(pruned, plan, accuracy=accuracy, judged=judged):
            judged.append(pruned)
            return accuracy[len(plan.kept_layers)]

        rows = planner.calibrate(None, 0.5, judge)
        assert sorted(judged) == ["pruned to 2 layers", "pruned to 3 layers"] and len(rows) == 10
        assert (planner.head_weight, planner.prune_layers) == winner and math.isfinite(planner.head_weight)


def test_a_screened_calibration_judges_only_its_finalists_and_keeps_the_best_judged():
    """With a screening, every distinct plan is screened once, only the most accurate few there (the first
    of equals) are judged, and the best judged wins even where another screened higher; unjudged rows keep
    their screening accuracy and have no validation accuracy."""
    from types import SimpleNamespace

    from skeleton.method.planning import Planner, best_calibrated

    planner = object.__new__(Planner)
    planner.config = SimpleNamespace(targets=("ffn", "heads", "layers"))

    def prune(classifier, value, **candidate):  # four distinct plans: by layers, and heads stay or not
        layers = [0, 1] if candidate["prune_layers"] else [0, 1, 2]
        heads = 12 if candidate["head_weight"] in (16.0, 64.0, float("inf")) else candidate["head_weight"]
        plan = SimpleNamespace(keep_indices=[[1]] * 3, kept_sizes=[1] * len(layers), kept_layers=layers)
        plan.kept_heads = [heads] * len(layers)
        plan.heads_per_layer = lambda _: plan.kept_heads
        return (len(layers), heads), plan

    planner.prune = prune
    screened = {(2, 1.0): 70.0, (3, 1.0): 74.0, (2, 4.0): 74.0, (3, 4.0): 60.0, (2, 12): 72.0, (3, 12): 73.0}
    judged = {(3, 1.0): 80.0, (2, 4.0): 81.0, (3, 12): 82.0, (2, 12): 99.0}
    screens, judges = [], []
    screen = lambda pruned, plan: screens.append(pruned) or screened[pruned]  # noqa: E731
    judge = lambda pruned, plan: judges.append(pruned) or judged[pruned]  # noqa: E731
    rows = planner.calibrate(None, 0.5, judge, screen, finalists=3)
    assert sorted(screens) == sorted(screened) and len(rows) == 10
    # (2, 12) screened fourth: never judged, though it would have judged best
    assert judges == [(3, 1.0), (2, 4.0), (3, 12)]
    assert (planner.head_weight, planner.prune_layers) == (16.0, False)  # the first candidate of plan (3, 12)
    assert best_calibrated(rows) == rows[4] and rows[4]["validation_accuracy"] == 82.0
    unjudged = [row for row in rows if row["validation_accuracy"] is None]
    assert {row["screening_accuracy"] for row in unjudged} == {70.0, 60.0, 72.0}


def _step_4(tmp_path, full_accuracy):
    """A Condensation with nothing behind it but step 4's bookkeeping: each value's plan is "plan V", its model
    "model V", and a full condensation of it reaches ``full_accuracy(V)``; the teacher is at 81, the threshold
    80, and one plan was condensed both ways (70 short, 79 in full). Returns it and the values condensed."""
    from types import SimpleNamespace

    from skeleton.core.config import SearchConfig
    from skeleton.method.condensation import Condensation
    from skeleton.method.tuning import TrainResult

    condensation = object.__new__(Condensation)
    condensation._same_plan, condensation._tried, condensation.full_pairs = {}, {}, [(70.0, 79.0)]
    condensation.trial_steps, condensation.stages, condensation.condensed = 10, tmp_path, {}
    condensation.teacher, condensation.threshold = 81.0, 80.0
    condensation.config = SimpleNamespace(search=SearchConfig())
    condensation.classifier = "whole model"
    condensation.planner = SimpleNamespace(kind="latency fraction", prune=lambda c, v: (f"model {v}", f"plan {v}"))
    condensation._keep = lambda model, plan, value, accuracy: condensation.condensed.update(
        {round(value, 6): (model, plan, accuracy)}
    )
    condensed = []

    def fake_condense(pruned, value, reporter, steps=None):
        condensed.append(value)
        return TrainResult(full_accuracy(value), 100, 0.0, [{"validation_accuracy": 50.0}], [1])

    condensation.condense = fake_condense
    return condensation, condensed


def test_a_chosen_value_that_misses_the_margin_in_full_falls_back_to_the_next_accepted_one(tmp_path):
    """Short trials predict; the full condensation decides. When the chosen value misses, the accepted
    slower trials are condensed in full, fastest first, and the first within the margin ships; when
    none is, the model is kept whole."""
    from types import SimpleNamespace

    from skeleton.method.search import SearchResult, Trial

    def run(full_accuracy: dict[float, float], predicted_below: bool = False):
        condensation, condensed = _step_4(tmp_path, full_accuracy.__getitem__)
        below = {"at_majority_class": True}
        if predicted_below:  # 70 short predicts 79 in full, by the one pair
            below = {"short_condensation_accuracy": 70.0, "predicted_full_condensation_accuracy": 79.0}
        trials = [Trial(0.5, 83.0, True), Trial(0.25, 79.5, False, 0.0, below), Trial(0.4, 82.0, True)]
        trials.append(Trial(0.35, 81.0, True))
        trials.append(Trial(0.3, 80.5, True))
        search = SearchResult(0.3, 80.0, trials)
        reporter = SimpleNamespace(message=lambda text: None)
        return condensation.skeleton_model(search, reporter), search, condensed

    shipped, search, condensed = run({0.3: 79.0, 0.35: 79.5, 0.4: 81.0, 0.5: 84.0})
    assert shipped == ("model 0.4", "plan 0.4") and condensed == [0.3, 0.35, 0.4]
    assert (search.value, search.fallback_from) == (0.4, 0.3)
    # every full condensation step 4 ran is in the report, the ones that missed the margin too
    assert search.condensed_in_full == {"0.30": 79.0, "0.35": 79.5, "0.40": 81.0}
    assert search.to_dict()["condensed_in_full"] == search.condensed_in_full
    shipped, search, condensed = run({0.3: 85.0})
    assert shipped == ("model 0.3", "plan 0.3") and search.fallback_from is None and condensed == [0.3]
    shipped, search, condensed = run({0.3: 70.0, 0.35: 70.0, 0.4: 70.0, 0.5: 70.0})
    assert shipped == ("whole model", None) and condensed == [0.3, 0.35, 0.4, 0.5]
    assert (search.value, search.fallback_from) == (1.0, 0.3)
    # the faster neighbour of the chosen value, rejected by a prediction only, is condensed in full
    # first, and ships when it stays within the margin; when it does not, the chosen value goes on
    shipped, search, condensed = run({0.25: 80.5, 0.3: 85.0}, predicted_below=True)
    assert shipped == ("model 0.25", "plan 0.25") and condensed == [0.25]
    assert (search.value, search.verified_from, search.fallback_from) == (0.25, 0.3, None)
    shipped, search, condensed = run({0.25: 79.0, 0.3: 85.0}, predicted_below=True)
    assert shipped == ("model 0.3", "plan 0.3") and condensed == [0.25, 0.3]
    assert (search.value, search.verified_from) == (0.3, None)
    assert search.condensed_in_full == {"0.25": 79.0, "0.30": 85.0}


def test_a_chosen_value_that_misses_in_full_sends_the_search_on_where_the_prediction_was_wrong(tmp_path):
    """The SST-2 run that over-promised, in small: one pair (70 short -> 79 in full, a share of a half) predicted
    plans far below it within the margin; the chosen one misses in full, its pair makes the other prediction
    fail too, and the binary search goes on between it and the slower accepted trial, which the fallback to
    accepted trials alone never tried."""
    from types import SimpleNamespace

    from skeleton.core.config import SearchConfig
    from skeleton.method.condensation import full_pairs
    from skeleton.method.search import SearchResult, Trial, binary_search

    condensation, condensed = _step_4(tmp_path, {0.15: 72.0, 0.4: 80.5}.__getitem__)
    condensation.full_pairs = [(79.0, 80.6)]  # a share of 0.2 of the gap to 81

    def predicted(value: float, short: float) -> Trial:
        full = 81.0 - 0.2 * (81.0 - short)
        details = {"short_condensation_accuracy": short, "predicted_full_condensation_accuracy": full}
        return Trial(value, full, full >= 80.0, 0.0, details)

    trials = [
        Trial(0.5, 80.6, True, 0.0, {"short_condensation_accuracy": 79.0, "full_condensation_accuracy": 80.6}),
        predicted(0.25, 76.0),  # 80.0: accepted
        predicted(0.15, 77.0),  # 80.2: accepted, chosen
    ]
    evaluated = []

    def evaluate(value):  # the new trials: clear the threshold short, or not
        evaluated.append(value)
        accuracy = {0.4: 80.1, 0.35: 79.5}[value]
        return accuracy, 0.0, {"short_condensation_accuracy": accuracy}

    def search_again(known):
        return binary_search(evaluate, 81.0, SearchConfig(), done=known, kind="latency fraction")

    search = SearchResult(0.15, 80.0, trials, "latency fraction")
    shipped = condensation.skeleton_model(search, SimpleNamespace(message=lambda text: None), search_again)
    # 0.15 missed (72 in full from 77 short: all of its gap left); below that pair, 0.25's short 76 is now
    # predicted no better than itself, under the threshold
    assert trials[2].accepted is False and trials[2].validation_accuracy == 72.0
    assert trials[1].accepted is False and trials[1].validation_accuracy == pytest.approx(76.0)
    assert trials[1].details["predicted_from_pairs"] == 2
    assert sorted(condensation.full_pairs) == [(77.0, 72.0), (79.0, 80.6)]
    assert sorted(full_pairs(trials)) == sorted(condensation.full_pairs)  # what a resumed run predicts from
    # the search went on between 0.25 and 0.5: 0.40 held short, 0.35 did not; 0.40 held in full and shipped
    assert evaluated == [0.4, 0.35] and [t.value for t in search.trials] == [0.5, 0.25, 0.15, 0.4, 0.35]
    assert shipped == ("model 0.4", "plan 0.4") and condensed == [0.15, 0.4]
    assert (search.value, search.fallback_from, search.searched_again) == (0.4, 0.15, 1)
    assert search.condensed_in_full == {"0.15": 72.0, "0.40": 80.5}


def test_a_chosen_value_the_neighbours_full_condensation_rejected_falls_back_when_it_misses_in_full(tmp_path):
    """The AMX run of 2026-12-06 that shipped 2.6 points under its teacher, in small: 0.40 was accepted by a
    prediction; its faster neighbour 0.35, rejected by a prediction only, was condensed in full first and fell far
    below, and what that taught predicted 0.40 below the threshold too. 0.40 then missed in full as well: the
    search falls back to the accepted 0.50, never ships 0.40 as if a target speed-up had asked for it."""
    from types import SimpleNamespace

    from skeleton.method.search import SearchResult, Trial

    condensation, condensed = _step_4(tmp_path, {0.35: 72.0, 0.4: 78.0, 0.5: 84.0}.__getitem__)

    def predicted(value: float, short: float) -> Trial:  # by the one pair, 70 short -> 79 in full
        full = condensation.predicted_full(short)
        details = {"short_condensation_accuracy": short, "predicted_full_condensation_accuracy": full}
        return Trial(value, full, full >= 80.0, 0.0, details)

    trials = [
        Trial(0.5, 83.0, True, 0.0, {"short_condensation_accuracy": 78.0, "full_condensation_accuracy": 83.0}),
        predicted(0.4, 76.0),
        predicted(0.35, 74.0),
    ]
    assert [t.accepted for t in trials] == [True, True, False]
    messages = []
    search = SearchResult(0.4, 80.0, trials, "latency fraction")
    shipped = condensation.skeleton_model(search, SimpleNamespace(message=messages.append))
    assert condensed == [0.35, 0.4, 0.5] and trials[1].accepted is False
    assert shipped == ("model 0.5", "plan 0.5")
    assert (search.value, search.fallback_from) == (0.5, 0.4)
    assert not any("the speed-up asked for" in message for message in messages)


def test_a_target_speedup_that_misses_the_margin_ships_the_target_model(tmp_path):
    """`--target-speedup` alone: the search's one trial (the target's latency fraction) missed the margin, so
    the target model is the answer; its full condensation missing the margin too ships it all the same, never
    the whole model the user asked to make faster."""
    from types import SimpleNamespace

    from skeleton.core.config import SearchConfig
    from skeleton.method.search import SearchResult, Trial

    condensation, condensed = _step_4(tmp_path, lambda value: 79.0)
    condensation.config = SimpleNamespace(search=SearchConfig(target_speedup=2.0))  # latency fraction 0.5
    messages = []
    search = SearchResult(0.5, 80.0, [Trial(0.5, 79.5, False, 0.0, {"full_condensation_accuracy": 79.5})])
    shipped = condensation.skeleton_model(search, SimpleNamespace(message=messages.append))
    assert shipped == ("model 0.5", "plan 0.5")
    assert (search.value, search.fallback_from, search.condensed_in_full) == (0.5, None, {"0.50": 79.0})
    assert condensed == [0.5]
    assert "below the margin: shipped, the speed-up asked for" in messages[-1]


def test_a_value_whose_plan_an_earlier_trial_had_is_not_condensed_again(tmp_path):
    """Whole layers make neighbouring latency fractions land on one plan: the second value is the
    earlier trial again (its accuracy, and its full condensation when that value ships)."""
    from types import SimpleNamespace

    import numpy as np

    from skeleton.method.condensation import Condensation

    condensation = object.__new__(Condensation)
    condensation._tried, condensation._same_plan, condensation.condensed = {}, {}, {}
    condensation.config = SimpleNamespace(fast_search=False)
    condensation.classifier = None
    condensation.workspace = SimpleNamespace(correct=lambda split, predictions: np.asarray(predictions) == 1)

    def plan(value):  # 0.40 and 0.45 keep the same two layers
        layers = [0, 1] if 0.35 < value < 0.5 else [0, 1, 2]
        return SimpleNamespace(
            keep_indices=[[1, 2]] * len(layers), out_keep_indices=None, head_keep_indices=None, kept_layers=layers
        )

    condensation.planner = SimpleNamespace(prune=lambda c, v: (f"model {v}", plan(v)), describe=lambda p: {})
    runs, timed = [], []
    # each trial's pruned model is timed once, and its timing joins the trial's details
    condensation.measure = lambda pruned, plan: timed.append(pruned) or {"measured_speedup": {"1x16": len(timed)}}

    def fake_trial(pruned, plan, value, details, reporter):
        runs.append(value)
        return 80.0 + value, [1, 0]

    condensation._condensed_trial = fake_trial
    first = condensation.trial(0.4, None)
    again = condensation.trial(0.45, None)
    assert runs == [0.4] and again[0] == first[0] == 80.4
    assert again[2]["same_plan_as"] == 0.4 and list(again[2]["correct"]) == [True, False]
    assert timed == ["model 0.4"] and first[2]["measured_speedup"] == again[2]["measured_speedup"] == {"1x16": 1}
    condensation.condensed[0.4] = ("model 0.4", "plan", 80.4)
    assert condensation._condensed_in_full(0.45, None) == ("model 0.4", "plan", 80.4)
    condensation.trial(0.5, None)
    assert runs == [0.4, 0.5]
