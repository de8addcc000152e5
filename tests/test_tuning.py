import pytest
import torch

from skeleton.core.batching import iterate_batches
from skeleton.core.data import DataConfig
from skeleton.core.errors import SkeletonError
from skeleton.core.modeling import load_prompt_and_head, save_prompt_and_head
from skeleton.core.workspace import ModelConfig, Workspace
from skeleton.method.tuning import TrainConfig, TuneConfig, evaluate, train_prompt, tune
from tests.conftest import ARCHITECTURE_NAMES, save_tiny_model
from tests.helpers import random_inputs, tiny_classifier


@pytest.mark.parametrize("model_type", ARCHITECTURE_NAMES)
@pytest.mark.parametrize("head", ["cls", "mlm"])
def test_only_the_prompt_and_head_train(model_type, head, tokenizer, tokenizer_dir):
    classifier = tiny_classifier(model_type, tokenizer, tokenizer_dir, head=head)
    prompt, head_params = classifier.trainable_parameters()
    trainable = {id(p) for p in classifier.parameters() if p.requires_grad}
    assert trainable == {id(p) for p in prompt + head_params}
    assert sum(p.numel() for p in prompt) == 4 * classifier.backbone.get_input_embeddings().embedding_dim
    logits = classifier(**random_inputs())
    assert logits.shape == (3, 2)


def test_prompt_is_prepended_to_the_word_embeddings(tokenizer, tokenizer_dir):
    """The classifier equals the bare model run on [prompt; word embeddings] with an extended mask."""
    classifier = tiny_classifier("bert", tokenizer, tokenizer_dir)
    inputs = random_inputs()
    backbone = classifier.backbone
    prompt = classifier.prompt_embeddings()
    embeds = torch.cat([prompt.expand(3, -1, -1), backbone.get_input_embeddings()(inputs["input_ids"])], 1)
    mask = torch.cat([torch.ones(3, 4, dtype=torch.long), inputs["attention_mask"]], 1)
    with torch.no_grad():
        hidden = backbone(inputs_embeds=embeds, attention_mask=mask)[0][:, 4:]
        weights = inputs["attention_mask"].unsqueeze(-1).float()
        pooled = (hidden * weights).sum(1) / weights.sum(1)
        expected = classifier.head.classifier(pooled)
        torch.testing.assert_close(classifier(**inputs), expected)


def test_training_learns_a_keyword_task_and_restores_the_best_state(tmp_path, tiny_bert_dir, sst2_dir):
    # without the template: a 32-dim random model separates the bare keyword sentences reliably
    model_config = ModelConfig(model=str(tiny_bert_dir), num_virtual_tokens=4, use_template=False)
    workspace = Workspace(DataConfig("sst2", str(sst2_dir), validation_rows="all"), model_config)
    classifier = workspace.new_classifier()
    config = TrainConfig(epochs=8, batch_size=16, lr=5e-2, head_lr=5e-2, evals_per_epoch=1, patience=8)
    result = train_prompt(classifier, workspace.train, workspace.validation, config, torch.device("cpu"))
    device = torch.device("cpu")
    assert result.history[0]["validation_accuracy"] < 75
    assert result.best_validation_accuracy >= 90
    # the best state is the one restored
    assert evaluate(classifier, workspace.validation, device)["accuracy"] == pytest.approx(
        result.best_validation_accuracy
    )
    # compress reuses these predictions of the restored state instead of a second validation pass
    fresh = workspace.split_predictions(classifier, device, config.eval_batch_size, ("validation",))
    assert result.validation_predictions == fresh["validation"]
    # a saved prompt and head reload to the same predictions
    save_prompt_and_head(classifier, tmp_path)
    reloaded = load_prompt_and_head(workspace.load_backbone(), workspace.tokenizer, workspace.spec, tmp_path)
    assert evaluate(reloaded, workspace.test, device) == evaluate(classifier, workspace.test, device)


def test_tune_writes_prompt_report_and_refuses_to_overwrite(tmp_path, tiny_bert_dir, sst2_dir):
    config = TuneConfig(
        data=DataConfig("sst2", str(sst2_dir), train_samples=64),
        model=ModelConfig(model=str(tiny_bert_dir), num_virtual_tokens=4),
        train=TrainConfig(epochs=1, batch_size=16),
        output=str(tmp_path / "out"),
        device="cpu",
    )
    result = tune(config)
    for name in (
        "prompt/adapter_config.json",
        "prompt/adapter_model.safetensors",
        "head.safetensors",
        "report.json",
    ):
        assert (tmp_path / "out" / name).is_file()
    assert set(result.test) == {"accuracy"}
    with pytest.raises(SkeletonError, match="already exists"):
        tune(config)


def test_mlm_head_needs_mlm_weights(tmp_path, tokenizer_dir, sst2_dir):
    bare = save_tiny_model(tmp_path / "bare", "bert", tokenizer_dir)
    with pytest.raises(SkeletonError, match="no masked-LM head"):
        Workspace(DataConfig("sst2", str(sst2_dir)), ModelConfig(model=str(bare), head="mlm")).new_classifier()
    mlm = save_tiny_model(tmp_path / "mlm", "roberta", tokenizer_dir, mlm=True)
    workspace = Workspace(DataConfig("sst2", str(sst2_dir)), ModelConfig(model=str(mlm)))
    assert workspace.head == "mlm" and workspace.use_template
    classifier = workspace.new_classifier()
    # the verbalizer reads the MLM model's own vocabulary logits at the mask, for the label words
    batch = next(iterate_batches(workspace.test, 8, workspace.pad_token_id, shuffle=False))
    with torch.no_grad():
        logits = classifier(**batch.inputs())
        backbone = classifier.backbone
        embeds = torch.cat(
            [
                classifier.prompt_embeddings().unsqueeze(0).expand(len(batch.indices), -1, -1),
                backbone.get_input_embeddings()(batch.input_ids),
            ],
            1,
        )
        prompt_mask = batch.attention_mask.new_ones(len(batch.indices), classifier.num_virtual_tokens)
        vocabulary = backbone(inputs_embeds=embeds, attention_mask=torch.cat([prompt_mask, batch.attention_mask], 1))
    mask_at = (batch.input_ids == workspace.tokenizer.mask_token_id).int().argmax(1) + classifier.num_virtual_tokens
    expected = vocabulary.logits[torch.arange(len(batch.indices)), mask_at][:, classifier.verbalizer_ids]
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-4)


def test_bad_model_inputs(tmp_path, sst2_dir):
    with pytest.raises(SkeletonError, match="model path not found"):
        Workspace(DataConfig("sst2", str(sst2_dir)), ModelConfig(model=str(tmp_path / "nope")))
    with pytest.raises(SkeletonError, match="exceeds the model's"):
        Workspace(DataConfig("sst2", str(sst2_dir)), ModelConfig(max_length=600))
    gpt = tmp_path / "gpt"
    gpt.mkdir()
    (gpt / "config.json").write_text('{"model_type": "gpt2"}')
    with pytest.raises(SkeletonError, match="unsupported architecture 'gpt2'"):
        Workspace(DataConfig("sst2", str(sst2_dir)), ModelConfig(model=str(gpt)))


def test_a_step_budget_replaces_epochs(tiny_bert_dir, sst2_dir):
    """A small data set gets the updates it is given in steps: 7 steps over 3 batches an epoch."""
    model_config = ModelConfig(model=str(tiny_bert_dir), num_virtual_tokens=4)
    workspace = Workspace(DataConfig("sst2", str(sst2_dir), train_samples=40), model_config)
    config = TrainConfig(steps=7, epochs=0.1, batch_size=16, evals_per_epoch=1, patience=99)
    result = train_prompt(
        workspace.new_classifier(), workspace.train, workspace.validation, config, torch.device("cpu")
    )
    assert result.steps == 7
    # an evaluation at every epoch end (every 3 steps) and at the last step
    assert [entry["step"] for entry in result.history] == [0, 3, 6, 7]


@pytest.mark.parametrize("trains", ["prompt", "full"])
def test_the_fused_optimizer_trains_as_the_default_one_does(tiny_bert_dir, sst2_dir, monkeypatch, trains):
    """AdamW runs fused on a CPU (one kernel per step) and updates the weights as the per-tensor default
    would: the same training with and without it ends at the same weights, up to float rounding."""
    from skeleton.method import tuning

    model_config = ModelConfig(model=str(tiny_bert_dir), num_virtual_tokens=4)
    workspace = Workspace(DataConfig("sst2", str(sst2_dir), train_samples=40), model_config)
    config = TrainConfig(steps=6, batch_size=16, evals_per_epoch=1, patience=99, trains=trains)
    built = []
    optimizer = tuning._optimizer
    monkeypatch.setattr(tuning, "_optimizer", lambda *args: built.append(optimizer(*args)) or built[-1])

    def trained():
        classifier = workspace.new_classifier(seed=0)
        cpu = torch.device("cpu")
        train_prompt(classifier, workspace.train, workspace.validation, config, cpu, validate_start=False)
        return {name: parameter.detach().clone() for name, parameter in classifier.named_parameters()}

    fused = trained()
    monkeypatch.setattr(tuning, "FUSED_ADAMW_DEVICES", ())
    looped = trained()
    assert [o.defaults["fused"] for o in built] == [True, None]
    assert fused.keys() == looped.keys()
    for name, weight in fused.items():
        torch.testing.assert_close(weight, looped[name], rtol=1e-5, atol=1e-6, msg=name)
    changed = [n for n, w in fused.items() if not torch.equal(w, workspace.new_classifier(seed=0).state_dict()[n])]
    assert changed  # it trained


def test_a_training_that_only_ranks_its_end_skips_validating_the_start(tiny_bert_dir, sst2_dir, monkeypatch):
    """Without ``validate_start`` the untrained state is neither validated nor a candidate for the best
    state: the one validation pass is the last step's, whose accuracy is the result."""
    from skeleton.method import tuning

    passes = []
    validate = tuning._validate
    monkeypatch.setattr(tuning, "_validate", lambda *args: passes.append(1) or validate(*args))
    model_config = ModelConfig(model=str(tiny_bert_dir), num_virtual_tokens=4)
    workspace = Workspace(DataConfig("sst2", str(sst2_dir), train_samples=40), model_config)
    config = TrainConfig(steps=2, epochs=0.1, batch_size=16, evals_per_epoch=1, patience=99)
    result = train_prompt(
        workspace.new_classifier(),
        workspace.train,
        workspace.validation,
        config,
        torch.device("cpu"),
        validate_start=False,
    )
    assert len(passes) == 1 and [entry["step"] for entry in result.history] == [0, 2]
    assert result.history[0]["validation_accuracy"] is None
    assert result.best_validation_accuracy == result.history[-1]["validation_accuracy"]
    assert len(result.validation_predictions) == len(workspace.validation)


def test_logistic_fit_matches_the_closed_form_separation():
    """The probe solver finds a planted direction: label = sign of feature 0, the rest noise."""
    from skeleton.method.tuning import fit_logistic

    generator = torch.Generator().manual_seed(0)
    features = torch.randn(400, 8, generator=generator)
    labels = (features[:, 0] > 0).long()
    linear = fit_logistic(features, labels, 2, c=10.0)
    direction = linear.weight[1] - linear.weight[0]
    assert direction[0] > 5 * direction[1:].abs().max()
    assert (linear(features).argmax(-1) == labels).float().mean() > 0.97
    # a strong penalty (small C) shrinks the weights towards zero
    assert linear.weight.norm() > fit_logistic(features, labels, 2, c=0.001).weight.norm() * 5


def test_a_probe_head_starts_training_at_the_probe(tiny_bert_dir, sst2_dir):
    """With head_init probe, the state before the first step is the probe, chosen on validation."""
    model_config = ModelConfig(model=str(tiny_bert_dir), num_virtual_tokens=4, use_template=False)
    workspace = Workspace(DataConfig("sst2", str(sst2_dir), validation_rows="all"), model_config)
    config = TrainConfig(steps=1, batch_size=16, head_init="probe", lr=1e-9, head_lr=1e-9)
    classifier = workspace.new_classifier()
    random_start = evaluate(classifier, workspace.validation, torch.device("cpu"))["accuracy"]
    result = train_prompt(classifier, workspace.train, workspace.validation, config, torch.device("cpu"))
    probe, start = result.history[0], result.history[1]
    assert probe["probe_c"] in (0.01, 0.1, 1.0, 10.0)
    assert start["validation_accuracy"] == pytest.approx(probe["probe_validation_accuracy"], abs=1e-4)
    # the keyword task is linearly separable in the pooled features: the probe beats a random head
    assert start["validation_accuracy"] >= 80 > random_start


def test_train_config_checks_fields():
    with pytest.raises(ValueError, match="head_init"):
        TrainConfig(head_init="zeros")
    with pytest.raises(ValueError, match="steps"):
        TrainConfig(steps=0)
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=0)


@pytest.mark.slow
def test_default_model_tunes_on_200_real_sentences(tmp_path):
    from tests.conftest import SHARED_DATA

    if not (SHARED_DATA / "sst2").is_dir():
        pytest.skip("../shared/data is not beside this checkout")
    config = TuneConfig(
        data=DataConfig("sst2", str(SHARED_DATA / "sst2"), train_samples=200, validation_samples=200, test_samples=200),
        train=TrainConfig(epochs=5),
        output=str(tmp_path / "out"),
        device="cpu",
    )
    result = tune(config)
    # 200 sentences are enough for the mean-pooled head to beat chance clearly
    assert result.test["accuracy"] > 60  # 67.5 measured; chance is 50 +- 3.5


def test_a_task_recipe_fills_only_what_is_left_open():
    from dataclasses import replace

    from skeleton.core.config import CompressConfig, default_condense_config, task_train_config
    from skeleton.core.tasks import get_task

    mrpc = get_task("mrpc")
    paper = CompressConfig(data=DataConfig("mrpc"), tune=task_train_config("mrpc", "tune", "prompt")).resolved()
    assert paper.tune == replace(TrainConfig(), **mrpc.tune) != TrainConfig()
    full = replace(default_condense_config(), **mrpc.condense, **mrpc.condense_backbone["full"])
    assert paper.condense == full and full.backbone_lr == 1e-4  # MRPC's own rate for full condensation
    assert default_condense_config().backbone_lr == task_train_config("sst2", "condense").backbone_lr == 2e-4
    assert task_train_config("mrpc", "condense", "lora").backbone_lr == default_condense_config("lora").backbone_lr
    config = CompressConfig(data=DataConfig("mrpc")).resolved()
    # the default fine-tunes: the recipe's batch, the tuned kind's rates and budget, no probe start
    assert (config.tune.trains, config.tune.steps, config.tune.batch_size) == ("full", 690, 16)
    assert config.tune.head_init == "random" and config.tune.backbone_lr == 1e-4
    # condensing a tuned teacher trains its head at the backbone's rate
    assert config.condense == replace(full, head_lr=full.backbone_lr)
    assert config.fast_search is False  # the default condenses the backbone: short trials, not fast search
    prompt_only = CompressConfig(data=DataConfig("mrpc"), condense=default_condense_config("prompt")).resolved()
    assert prompt_only.fast_search is mrpc.fast_search
    assert TuneConfig(data=DataConfig("mrpc")).resolved().train == config.tune
    explicit = CompressConfig(data=DataConfig("mrpc"), tune=TrainConfig(), fast_search=False).resolved()
    assert explicit.tune == TrainConfig() and explicit.fast_search is False
    assert CompressConfig().resolved().tune == task_train_config("sst2", "tune", "full")  # no recipe for sst2
    assert task_train_config("sst2", "tune", "prompt") == TrainConfig()
