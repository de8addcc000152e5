"""Step 1 that tunes the backbone (--tune lora|full), a classifier the user already has (--teacher), and the
tuned model saved as a plain transformers checkpoint."""

import json
from dataclasses import replace

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline
from typer.testing import CliRunner

from cli.main import app
from skeleton.compression import compress
from skeleton.core.config import (
    DEFAULT_PROMPT_TOKENS,
    DataConfig,
    ModelConfig,
    SearchConfig,
    TrainConfig,
    resolve_model,
    task_train_config,
)
from skeleton.core.errors import SkeletonError
from skeleton.core.tasks import get_task
from skeleton.core.workspace import Workspace
from skeleton.deploy.predictor import Predictor
from skeleton.deploy.transformers_checkpoint import save_transformers
from skeleton.method.adaptation import close_backbone, open_backbone
from tests.conftest import ARCHITECTURE_NAMES, tiny_config
from tests.helpers import random_inputs, tiny_classifier, tiny_compress_config

LABELS = {0: "negative", 1: "positive"}
QUICK_EXPORT_VARIANTS = ("fp32", "optimized")


def save_sequence_classifier(directory, model_type, tokenizer_dir, id2label=None, seed=0):
    """A tiny random ``*ForSequenceClassification`` of ``model_type`` with labels, saved with a tokenizer."""
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    config = tiny_config(model_type, vocab_size=len(tokenizer))
    config.id2label = id2label or LABELS
    config.label2id = {name: index for index, name in config.id2label.items()}
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_config(config).eval()
    model.save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    return directory


def _workspace(checkpoint, sst2_dir, **model):
    model_config = resolve_model(ModelConfig(**model), "full", str(checkpoint))
    return Workspace(DataConfig("sst2", str(sst2_dir), validation_rows="all"), model_config)


@pytest.mark.parametrize("model_type", ARCHITECTURE_NAMES)
def test_a_teacher_checkpoint_reads_with_its_own_head(tmp_path, tokenizer_dir, sst2_dir, model_type):
    """The checkpoint's encoder and head, read by the Skeleton classifier (no prompt, no template), give the
    checkpoint's own logits, and it saves back to an equal transformers checkpoint."""
    checkpoint = save_sequence_classifier(tmp_path / "ckpt", model_type, tokenizer_dir)
    workspace = _workspace(checkpoint, sst2_dir)
    classifier = workspace.teacher_classifier()
    assert classifier.num_virtual_tokens == 0 and classifier.head_config.kind == "sequence"
    reference = AutoModelForSequenceClassification.from_pretrained(str(checkpoint)).eval()
    inputs = random_inputs(vocab=30)
    with torch.no_grad():
        expected = reference(**inputs).logits
        got = classifier(**inputs)
    assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max()


def test_a_checkpoint_whose_head_or_labels_do_not_fit_is_refused(tmp_path, tokenizer_dir, tiny_bert_dir, sst2_dir):
    with pytest.raises(SkeletonError, match="is not a sequence classifier whose head can be read"):
        _workspace(tiny_bert_dir, sst2_dir).teacher_classifier()  # a bare encoder: no classification head
    three = save_sequence_classifier(tmp_path / "three", "bert", tokenizer_dir, {0: "a", 1: "b", 2: "c"})
    with pytest.raises(SkeletonError, match=r"the teacher's labels \(a, b, c\) are not the task's"):
        _workspace(three, sst2_dir).teacher_classifier()
    other = save_sequence_classifier(tmp_path / "other", "bert", tokenizer_dir, {0: "spam", 1: "ham"})
    with pytest.raises(SkeletonError, match=r"labels \(spam, ham\) are not the task's \(negative, positive\)"):
        _workspace(other, sst2_dir).teacher_classifier()
    generic = save_sequence_classifier(tmp_path / "generic", "bert", tokenizer_dir, {0: "LABEL_0", 1: "LABEL_1"})
    assert _workspace(generic, sst2_dir).teacher_classifier().head_config.num_labels == 2  # read by position


def test_the_cli_refuses_a_bad_teacher_in_one_line(tmp_path, tokenizer_dir, sst2_dir):
    checkpoint = save_sequence_classifier(tmp_path / "ckpt", "bert", tokenizer_dir, {0: "spam", 1: "ham"})
    options = ["--data-dir", str(sst2_dir), "--device", "cpu", "--quiet", "--validation-rows", "all"]
    result = CliRunner().invoke(
        app, ["compress", "--teacher", str(checkpoint), "--output", str(tmp_path / "o"), *options]
    )
    assert result.exit_code == 2, result.output
    assert result.output.strip().count("\n") == 0 and "are not the task's" in result.output
    assert not (tmp_path / "o").exists()
    result = CliRunner().invoke(app, ["compress", "--teacher", str(checkpoint), "--prompt-tokens", "4", *options])
    assert result.exit_code == 2 and "no soft prompt" in result.output


def test_tune_prompt_is_the_papers_setting_unchanged():
    """--tune prompt trains exactly what step 1 trained before the tuned-backbone kinds: the task's recipe over
    TrainConfig's defaults, a 20-token prompt, the template, the task's head."""
    for task in ("sst2", "mrpc"):
        assert task_train_config(task, "tune", "prompt") == replace(TrainConfig(), **get_task(task).tune)
    model = resolve_model(ModelConfig(), "prompt")
    assert (model.num_virtual_tokens, model.use_template, model.head) == (DEFAULT_PROMPT_TOKENS, True, "auto")
    tuned = resolve_model(ModelConfig(), "full")
    assert (tuned.num_virtual_tokens, tuned.use_template, tuned.head) == (0, False, "cls")
    assert resolve_model(ModelConfig(head="sequence"), "lora").head == "sequence"
    assert resolve_model(ModelConfig(), "full", "some/checkpoint").head == "sequence"  # a teacher's own head
    # a tuned backbone keeps the task's batch, not the prompt's learning rates or probe start; its own
    # recipe applies (MRPC's full fine-tuning at 1e-4 for 690 steps, SST-2's at 1e-4 for its epoch; a task
    # without one fine-tunes at TUNE_RECIPES' 5e-5)
    mrpc = task_train_config("mrpc", "tune", "full")
    assert (mrpc.steps, mrpc.batch_size, mrpc.head_init, mrpc.backbone_lr) == (690, 16, "random", 1e-4)
    assert task_train_config("mrpc", "tune", "lora").steps == 345  # LoRA keeps the prompt's budget
    assert task_train_config("mrpc", "tune", "lora").backbone_lr == 1e-3
    sst2 = task_train_config("sst2", "tune", "full")
    assert (sst2.backbone_lr, sst2.steps) == (1e-4, None)
    assert task_train_config("ag_news", "tune", "full").backbone_lr == 5e-5


def test_tune_prompt_reproduces_the_paper_modes_prompt_and_plan(tmp_path, tiny_bert_dir, sst2_dir):
    recipe = TrainConfig(epochs=3, batch_size=16, lr=5e-2, head_lr=5e-2, evals_per_epoch=1)
    paper = compress(tiny_compress_config(tmp_path / "paper", tiny_bert_dir, sst2_dir, tune=recipe))
    named = compress(
        tiny_compress_config(tmp_path / "named", tiny_bert_dir, sst2_dir, tune=replace(recipe, trains="prompt"))
    )
    for name in ("prompt/adapter_model.safetensors", "pruning_plan.json", "head.safetensors"):
        assert (tmp_path / "paper" / name).read_bytes() == (tmp_path / "named" / name).read_bytes(), name
    assert paper.report.prompt_tuned == named.report.prompt_tuned


@pytest.mark.parametrize("model_type", ARCHITECTURE_NAMES)
def test_lora_merged_equals_lora_unmerged(tokenizer, tokenizer_dir, model_type):
    classifier = tiny_classifier(model_type, tokenizer, tokenizer_dir, head="sequence", num_virtual_tokens=0)
    trainable = open_backbone(classifier, "lora", rank=4)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # B starts at zero (the model unchanged): give the adapters something to merge
        for parameter in trainable:
            parameter.copy_(0.1 * torch.randn(parameter.shape, generator=generator))
    inputs = random_inputs(vocab=30)
    with torch.no_grad():
        before = classifier(**inputs)
        assert close_backbone(classifier) > 0
        after = classifier(**inputs)
    assert not any("lora" in name for name, _ in classifier.named_parameters())
    assert torch.allclose(before, after, atol=1e-5)


def _fine_tune(tmp_path, tiny_bert_dir, sst2_dir, trains="full", **overrides):
    tune = replace(task_train_config("sst2", "tune", trains), epochs=4, batch_size=16, evals_per_epoch=1)
    tune = replace(tune, backbone_lr=1e-2, head_lr=1e-2)
    values = dict(
        data=DataConfig("sst2", str(sst2_dir), validation_rows="all"),
        model=ModelConfig(model=str(tiny_bert_dir), head="cls"),
        tune=tune,
    )
    return compress(tiny_compress_config(tmp_path / f"out-{trains}", tiny_bert_dir, sst2_dir, **(values | overrides)))


@pytest.mark.parametrize("trains", ["lora", "full"])
def test_a_tuned_backbone_is_kept_and_compressed(tmp_path, tiny_bert_dir, sst2_dir, trains):
    """Step 1 trains the backbone: the tuned model (a whole model directory, no soft prompt) is what is scored,
    pruned and taught from; it reloads with its tuned weights."""
    import skeleton

    result = _fine_tune(tmp_path, tiny_bert_dir, sst2_dir, trains)
    report, output = result.report, tmp_path / f"out-{trains}"
    assert report.prompt_tokens == {"prompt_tuned": 0, "skeleton": 0}
    assert report.prompt_tuned["validation"]["accuracy"] > report.majority_class["validation"]["accuracy"] + 10
    teacher = skeleton.load(output / "prompt_tuned", device="cpu")
    pretrained = AutoModelForSequenceClassification.from_pretrained(str(tiny_bert_dir))
    tuned = dict(teacher.classifier.backbone.named_parameters())
    changed = [n for n, p in pretrained.base_model.named_parameters() if n in tuned and not torch.equal(p, tuned[n])]
    assert any("encoder.layer" in name for name in changed)
    # what the workspace reloads for bench and --resume is the same tuned model
    model = ModelConfig(model=str(tiny_bert_dir), head="cls", num_virtual_tokens=0, use_template=False)
    reloaded = Workspace(DataConfig("sst2", str(sst2_dir), validation_rows="all"), model).load_classifier(
        output / "prompt_tuned"
    )
    encoded = teacher.encode(["a great movie", "the plot was awful"])
    with torch.no_grad():
        assert torch.allclose(reloaded.eval()(**encoded.inputs()), teacher.classifier(**encoded.inputs()), atol=1e-6)


def test_a_tuned_model_saves_as_a_transformers_checkpoint(tmp_path, tiny_bert_dir, sst2_dir):
    """The fine-tuned teacher (the family's sequence head, no prompt) is saved as a *ForSequenceClassification
    that a pipeline loads and that gives the teacher's probabilities; a prompt-tuned model is refused."""
    import skeleton

    model = ModelConfig(model=str(tiny_bert_dir), head="sequence")
    _fine_tune(tmp_path, tiny_bert_dir, sst2_dir, model=model, allow_weak_prior=True)
    output = tmp_path / "out-full"
    result = CliRunner().invoke(app, ["save-transformers", str(output), "--output", str(tmp_path / "hf")])
    assert result.exit_code == 0, result.output
    texts = ["a great movie", "the plot was awful", "boring"]
    expected = skeleton.load(output / "prompt_tuned", device="cpu").predict(texts)
    classify = pipeline("text-classification", model=str(tmp_path / "hf"), device="cpu")
    got = [(answer["label"], answer["score"]) for answer in classify(texts)]
    assert [label for label, _ in got] == [label for label, _ in expected]
    assert [score for _, score in got] == pytest.approx([score for _, score in expected], abs=1e-5)
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"] and config["id2label"] == {
        "0": "negative",
        "1": "positive",
    }
    # a prompt-tuned model reads a soft prompt no transformers class has: one line, nothing written
    prompt_tuned = compress(tiny_compress_config(tmp_path / "paper", tiny_bert_dir, sst2_dir))
    with pytest.raises(SkeletonError, match="not a plain transformers classifier: its head is 'cls'.*soft prompt"):
        save_transformers(prompt_tuned.output, tmp_path / "refused")
    assert not (tmp_path / "refused").exists()


@pytest.mark.parametrize("model_type", ARCHITECTURE_NAMES)
def test_a_teacher_checkpoint_compresses_exports_and_predicts(tmp_path, tokenizer_dir, sst2_dir, model_type):
    """A user's classifier of every family: no tuning, its head on the slim backbone, scored against its own
    answers, exported and predicting with its label names."""
    from skeleton.core.config import ExportConfig
    from skeleton.deploy.export import export_directory

    checkpoint = save_sequence_classifier(tmp_path / "ckpt", model_type, tokenizer_dir)
    config = tiny_compress_config(
        tmp_path / "out",
        checkpoint,
        sst2_dir,
        data=DataConfig("sst2", str(sst2_dir), validation_rows="all"),
        model=ModelConfig(),
        teacher=str(checkpoint),
        search=SearchConfig(margin=100.0, max_trials=1),
        allow_weak_prior=True,  # a random checkpoint has learned nothing; the pipeline is what is tested
    )
    report = compress(config).report
    assert report.prompt_tuning is None and report.prompt_tokens == {"prompt_tuned": 0, "skeleton": 0}
    assert report.kept_fraction < 1.0
    export_directory(
        tmp_path / "out", ExportConfig(variants=QUICK_EXPORT_VARIANTS, latency_shapes=((1, 8),), latency_repeats=2)
    )
    answers = Predictor(tmp_path / "out").predict(["a great movie", "the plot was awful"])
    assert len(answers) == 2 and {label for label, _ in answers} <= {"negative", "positive"}
