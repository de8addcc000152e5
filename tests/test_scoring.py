import pytest
import torch

from skeleton.core.architectures import ffn_layers
from skeleton.core.batching import collate, iterate_batches
from skeleton.core.scores_and_plans import NeuronScores
from skeleton.method.scoring import REGISTRY, collect_ffn_statistics, get_scorer
from tests.conftest import ARCHITECTURE_NAMES
from tests.helpers import encoded_rows, tiny_classifier


def _one_batch(split, indices):
    return [collate(split, indices, 0)]


def test_attribution_matches_a_finite_difference_by_hand(tokenizer, tokenizer_dir):
    """For one instance: attribution of neuron j = mean over tokens |a_tj * dz/da_tj|, where the
    derivative is measured by nudging that one activation and re-running the model.
    """
    classifier = tiny_classifier("bert", tokenizer, tokenizer_dir).double()
    split = encoded_rows(tokenizer, count=2)
    scores = get_scorer("attribution").score(classifier, _one_batch(split, [0]), torch.device("cpu"))
    batch = collate(split, [0], 0)
    label = batch.labels[0]
    layer_index, neuron = 1, 7
    module = ffn_layers(classifier.backbone)[layer_index].ffn_out
    tokens = classifier.num_virtual_tokens + batch.input_ids.shape[1]

    def gold_logit(token: int | None = None, delta: float = 0.0) -> float:
        def nudge(_module, args):
            activation = args[0].clone()
            if token is not None:
                activation[0, token, neuron] += delta
            return (activation,)

        handle = module.register_forward_pre_hook(nudge)
        activations = []
        capture = module.register_forward_pre_hook(lambda _m, args: activations.append(args[0].detach()))
        with torch.no_grad():
            value = classifier(**batch.inputs())[0, label].item()
        handle.remove()
        capture.remove()
        return value, activations[0]

    _, activation = gold_logit()
    epsilon = 1e-6
    by_hand = 0.0
    for token in range(tokens):
        plus, _ = gold_logit(token, epsilon)
        minus, _ = gold_logit(token, -epsilon)
        derivative = (plus - minus) / (2 * epsilon)
        by_hand += abs(activation[0, token, neuron].item() * derivative)
    by_hand /= tokens
    assert scores.ffn[layer_index][neuron].item() == pytest.approx(by_hand, rel=1e-4)


@pytest.mark.parametrize("model_type", ARCHITECTURE_NAMES)
@pytest.mark.parametrize("head", ["cls", "mlm"])
def test_batched_statistics_equal_the_mean_of_single_instances(model_type, head, tokenizer, tokenizer_dir):
    """Padding and batching must not change any instance's statistics."""
    classifier = tiny_classifier(model_type, tokenizer, tokenizer_dir, head=head)
    split = encoded_rows(tokenizer, count=4, template=head == "mlm")
    device = torch.device("cpu")
    options = dict(with_outputs=True, with_heads=True)
    together = collect_ffn_statistics(classifier, _one_batch(split, [0, 1, 2, 3]), device, **options)
    alone = [collect_ffn_statistics(classifier, _one_batch(split, [i]), device, **options) for i in range(4)]
    assert together.num_samples == 4
    keys = ("act_grad", "act", "grad", "signed_act", "out_act_grad", "signed_out")
    head_keys = ("head_act_grad", "head_mask_grad", "head_norm", "signed_context")
    torch.testing.assert_close(
        together.prompt_act_grad[0], sum(s.prompt_act_grad[0] for s in alone), rtol=1e-4, atol=1e-6
    )
    for key in keys + head_keys:
        for layer in range(2):
            expected = sum(getattr(s, key)[layer] for s in alone)
            torch.testing.assert_close(getattr(together, key)[layer], expected, rtol=1e-4, atol=1e-6)


def test_scorers_rank_what_they_say(tokenizer, tokenizer_dir):
    classifier = tiny_classifier("bert", tokenizer, tokenizer_dir)
    split = encoded_rows(tokenizer, count=6)
    device = torch.device("cpu")
    batches = lambda: iterate_batches(split, 4, 0, shuffle=False)  # noqa: E731
    stats = collect_ffn_statistics(classifier, batches(), device)
    attribution = get_scorer("attribution").score(classifier, batches(), device)
    activation = get_scorer("activation").score(classifier, batches(), device)
    gradient = get_scorer("gradient").score(classifier, batches(), device)
    for layer in range(2):
        torch.testing.assert_close(attribution.ffn[layer], stats.act_grad[layer] / 6)
        torch.testing.assert_close(activation.ffn[layer], stats.act[layer] / 6)
        torch.testing.assert_close(gradient.ffn[layer], stats.grad[layer] / 6)
    first = get_scorer("random", seed=1).score(classifier, batches(), device)
    again = get_scorer("random", seed=1).score(classifier, batches(), device)
    other = get_scorer("random", seed=2).score(classifier, batches(), device)
    assert torch.equal(first.ffn[0], again.ffn[0]) and not torch.equal(first.ffn[0], other.ffn[0])
    assert set(REGISTRY) >= {"attribution", "activation", "gradient", "random"}


def test_scores_round_trip(tmp_path, tokenizer, tokenizer_dir):
    classifier = tiny_classifier("bert", tokenizer, tokenizer_dir)
    split = encoded_rows(tokenizer, count=3)
    scores = get_scorer("attribution").score(
        classifier, _one_batch(split, [0, 1, 2]), torch.device("cpu"), ("ffn", "ffn-out", "heads")
    )
    scores.save(tmp_path / "s.safetensors")
    loaded = NeuronScores.load(tmp_path / "s.safetensors")
    assert loaded.scorer == "attribution" and loaded.num_samples == 3
    for kind in NeuronScores.LAYERED:
        for a, b in zip(getattr(scores, kind), getattr(loaded, kind), strict=True):
            assert torch.equal(a, b)
    assert torch.equal(scores.prompt, loaded.prompt)
    assert NeuronScores.from_dict(scores.to_dict()).ffn[1].tolist() == scores.ffn[1].tolist()
    assert torch.equal(NeuronScores.from_dict(scores.to_dict()).heads[0], scores.heads[0])


@pytest.mark.parametrize("model_type", ["bert", "distilbert"])
def test_head_scores_are_the_gradient_of_a_head_mask_by_hand(model_type, tokenizer, tokenizer_dir):
    """Michel et al.'s head importance is |dz/d xi_h| for a mask xi_h multiplying head h's context,
    checked against a real mask put into the model with a hook, instance by instance; the
    attribution is the sum of |dz/d m_td| over a per-token, per-dim mask m of the head's dims.
    """
    classifier = tiny_classifier(model_type, tokenizer, tokenizer_dir).double()
    split = encoded_rows(tokenizer, count=3)
    device = torch.device("cpu")
    gradient = get_scorer("gradient").score(classifier, _one_batch(split, [0, 1, 2]), device, ("ffn", "heads"))
    attribution = get_scorer("attribution").score(classifier, _one_batch(split, [0, 1, 2]), device, ("ffn", "heads"))
    layer_index = 1
    layer = ffn_layers(classifier.backbone)[layer_index]
    mask_grads, per_token = [], []
    for row in range(3):
        batch = collate(split, [row], 0)
        mask = torch.ones(4, dtype=torch.float64, requires_grad=True)
        token_masks = []

        def apply_mask(_module, args, mask=mask, token_masks=token_masks):
            context = args[0]  # (1, tokens, heads x head size)
            tokens = context.shape[1]
            # a per-token, per-dim copy of the mask, so those gradients are available too
            token_mask = mask.repeat_interleave(layer.head_size).expand(tokens, -1).clone()  # (tokens, width)
            token_masks.append(token_mask)
            return (context * token_mask.unsqueeze(0),)

        handle = layer.attention_out.register_forward_pre_hook(apply_mask)
        gold = classifier(**batch.inputs())[0, batch.labels[0]]
        handle.remove()
        mask_grad, token_grad = torch.autograd.grad(gold, [mask, token_masks[0]])
        mask_grads.append(mask_grad.abs())
        per_dim = token_grad.abs().view(token_grad.shape[0], 4, layer.head_size).sum(-1)  # (tokens, heads)
        per_token.append(per_dim.mean(0))  # every token counts (no padding in one row)
    torch.testing.assert_close(gradient.heads[layer_index], sum(mask_grads).float() / 3, rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(attribution.heads[layer_index], sum(per_token).float() / 3, rtol=1e-4, atol=1e-7)
    assert attribution.prompt.shape == (classifier.num_virtual_tokens,)


def _task_context(tmp_path, tiny_bert_dir, sst2_dir, prompt_init="text", task="sst2", head="auto", **overrides):
    from skeleton.core.config import TrainConfig
    from skeleton.core.data import DataConfig
    from skeleton.core.workspace import ModelConfig, Workspace
    from skeleton.method.scoring import ScoringContext

    workspace = Workspace(
        DataConfig(task, str(sst2_dir), train_samples=120, validation_samples=40),
        ModelConfig(model=str(tiny_bert_dir), head=head, num_virtual_tokens=4, prompt_init=prompt_init),
    )
    train = TrainConfig(steps=3, batch_size=16, evals_per_epoch=1)
    values = {"samples": 50, "skill_prompts": 1, "cache": tmp_path / "cache", **overrides}
    return ScoringContext(workspace, train, **values)


def _captured_table(classifier, split):
    """(rows, positions, neurons) FFN activations of every row, one row at a time, in split order."""
    from skeleton.method.scoring import capture_ffn

    rows = []
    for index in range(len(split)):
        batch = collate(split, [index], 0)
        with torch.no_grad(), capture_ffn(classifier.backbone, with_outputs=False) as captured:
            classifier(**batch.inputs())
        rows.append(torch.cat(captured.activations, dim=-1)[0])  # (positions, neurons)
    return rows


def test_skill_scorer_is_the_predictivity_of_the_prompt_positions_by_hand(tmp_path, tiny_bert_dir, sst2_dir):
    from skeleton.method.skill import predictivity

    context = _task_context(tmp_path, tiny_bert_dir, sst2_dir)
    workspace = context.workspace
    classifier = workspace.new_classifier(seed=3).eval()
    batches = iterate_batches(workspace.attribution_split(8, 42), 4, workspace.pad_token_id, shuffle=False)
    scores = get_scorer("skill").score(classifier, batches, torch.device("cpu"), context=context)

    prompt = classifier.num_virtual_tokens
    train = torch.stack([r[:prompt] for r in _captured_table(classifier, context.training_sample(42))])
    validation = torch.stack([r[:prompt] for r in _captured_table(classifier, workspace.validation)])
    expected = predictivity(train, validation, torch.tensor(workspace.validation.labels), 2)
    torch.testing.assert_close(torch.cat(scores.ffn), expected, atol=1e-6, rtol=0)
    assert [len(layer) for layer in scores.ffn] == [64, 64]
    assert scores.scorer == "skill" and scores.extra["prompts"] == 1
    assert len(scores.mean_activation) == 2  # bias compensation still has its mean activations


def test_skill_averages_prompts_tuned_from_other_seeds_and_reuses_them(tmp_path, tiny_bert_dir, sst2_dir):
    # random prompt initialisation: prompts from other seeds start (and so end) elsewhere
    context = _task_context(tmp_path, tiny_bert_dir, sst2_dir, "random", skill_prompts=2)
    workspace = context.workspace
    classifier = workspace.new_classifier(seed=3).eval()
    batches = lambda: iterate_batches(workspace.attribution_split(4, 42), 4, 0, shuffle=False)  # noqa: E731
    device = torch.device("cpu")
    two = get_scorer("skill").score(classifier, batches(), device, context=context)
    assert (tmp_path / "cache" / "skill-prompt-seed43-steps3" / "prompt").is_dir()
    again = get_scorer("skill").score(classifier, batches(), device, context=context)  # the cached prompt
    one = get_scorer("skill").score(
        classifier, batches(), device, context=_task_context(tmp_path, tiny_bert_dir, sst2_dir)
    )
    assert two.extra["prompts"] == 2 and len(two.extra["correlation_with_first_prompt"]) == 1
    torch.testing.assert_close(torch.cat(two.ffn), torch.cat(again.ffn))
    assert not torch.equal(torch.cat(two.ffn), torch.cat(one.ffn))


@pytest.mark.parametrize("head", ["cls", "mlm"])
def test_lca_features_are_read_where_the_head_reads(tmp_path, tiny_bert_dir, sst2_dir, head, tokenizer, tokenizer_dir):
    from skeleton.method.scoring import LCAScorer

    split = encoded_rows(tokenizer, count=5, template=head == "mlm")
    classifier = tiny_classifier("bert", tokenizer, tokenizer_dir, head=head)
    features = LCAScorer.features(classifier, split, torch.device("cpu"), 0)
    prompt = classifier.num_virtual_tokens
    for row, table in enumerate(_captured_table(classifier, split)):
        text = table[prompt:]  # (tokens, neurons)
        if head == "cls":
            expected = text.mean(0)
        else:
            expected = text[split.input_ids[row].index(tokenizer.mask_token_id)]
        torch.testing.assert_close(torch.from_numpy(features[row]), expected, atol=1e-5, rtol=0)


def test_lca_scorer_ranks_every_neuron_once(tmp_path, tiny_bert_dir, sst2_dir):
    context = _task_context(tmp_path, tiny_bert_dir, sst2_dir)
    workspace = context.workspace
    classifier = workspace.new_classifier(seed=3).eval()
    batches = iterate_batches(workspace.attribution_split(4, 42), 4, 0, shuffle=False)
    scores = get_scorer("lca").score(classifier, batches, torch.device("cpu"), context=context)
    values = torch.cat(scores.ffn)
    # the weight-mass ranking's positions as scores: 128 (first) down to 1 (last), each once
    assert sorted(values.tolist()) == list(range(1, 129))
    assert scores.extra["l1"] in (1e-5, 1e-4, 1e-3)
    # the probe's validation accuracy counts whole validation rows
    right = scores.extra["probe_validation_accuracy"] * len(workspace.validation) / 100
    assert right == pytest.approx(round(right))


def test_task_data_scorers_say_what_they_need(tokenizer, tokenizer_dir):
    from skeleton.core.errors import SkeletonError

    classifier = tiny_classifier("bert", tokenizer, tokenizer_dir)
    split = encoded_rows(tokenizer, count=2)
    for name in ("skill", "lca"):
        with pytest.raises(SkeletonError, match="needs the task's training and validation splits"):
            get_scorer(name).score(classifier, _one_batch(split, [0, 1]), torch.device("cpu"))


def _pair_split(tokenizer, count: int = 4):
    from datasets import Dataset

    from skeleton.core.batching import encode_split
    from skeleton.core.tasks import get_task
    from tests.conftest import synthetic_pairs

    rows = synthetic_pairs(count, 7)
    columns = {"text1": [r[0] for r in rows], "text2": [r[1] for r in rows], "label": [r[2] for r in rows]}
    return encode_split(Dataset.from_dict(columns), tokenizer, get_task("mrpc"), False, 32, separate_pairs=True)


def _one_sentence_reader(classifier):
    """The same backbone and prompt as a bi-encoder, reading one sentence at a time (a cls head)."""
    from skeleton.core.modeling import HeadConfig, MeanPoolHead, PromptedClassifier

    return PromptedClassifier(classifier.peft_model, HeadConfig("cls", 2), MeanPoolHead(32, 2), None).eval()


def _one_sentence_split(split, side: int):
    """One side of a bi-encoder's pairs as a split of single sequences."""
    from skeleton.core.batching import EncodedSplit

    return EncodedSplit(split.pair_ids if side else split.input_ids, None, split.labels)


@pytest.mark.parametrize("model_type", ARCHITECTURE_NAMES)
def test_bi_encoder_statistics_are_taken_over_both_sentences(model_type, tokenizer, tokenizer_dir):
    """A pair's FFN statistics are its two sentences' (each a sequence of its own, averaged over its own
    tokens), and padding or batching pairs together changes none of them, gradients included."""
    from skeleton.core.modeling import BI_ENCODER

    classifier = tiny_classifier(model_type, tokenizer, tokenizer_dir, head=BI_ENCODER, task="mrpc")
    split = _pair_split(tokenizer)
    device = torch.device("cpu")
    pairs = collect_ffn_statistics(classifier, _one_batch(split, [0, 1, 2, 3]), device)
    assert pairs.num_samples == 8  # sequences: two per pair, so means stay per sequence
    single = _one_sentence_reader(classifier)
    sides = [
        collect_ffn_statistics(single, _one_batch(_one_sentence_split(split, s), [0, 1, 2, 3]), device, False)
        for s in (0, 1)
    ]
    for key in ("act", "signed_act"):
        for layer in range(2):
            expected = sides[0].mean(key)[layer] + sides[1].mean(key)[layer]
            torch.testing.assert_close(pairs.mean(key)[layer] * 2, expected, rtol=1e-4, atol=1e-6)
    alone = [collect_ffn_statistics(classifier, _one_batch(split, [i]), device) for i in range(4)]
    for key in ("act_grad", "grad", "act"):
        for layer in range(2):
            expected = sum(getattr(s, key)[layer] for s in alone)
            torch.testing.assert_close(getattr(pairs, key)[layer], expected, rtol=1e-4, atol=1e-6)
    assert all(float(layer.sum()) > 0 for layer in pairs.act_grad)


def test_lca_reads_a_bi_encoder_pair_as_the_distance_of_its_sentences(tokenizer, tokenizer_dir):
    from skeleton.core.modeling import BI_ENCODER
    from skeleton.method.scoring import LCAScorer

    classifier = tiny_classifier("bert", tokenizer, tokenizer_dir, head=BI_ENCODER, task="mrpc")
    split = _pair_split(tokenizer, count=3)
    features = LCAScorer.features(classifier, split, torch.device("cpu"), 0)
    prompt = classifier.num_virtual_tokens
    reader = _one_sentence_reader(classifier)
    first, second = (_captured_table(reader, _one_sentence_split(split, s)) for s in (0, 1))
    for row in range(3):
        expected = (first[row][prompt:].mean(0) - second[row][prompt:].mean(0)).abs()  # (neurons,)
        torch.testing.assert_close(torch.from_numpy(features[row]), expected, atol=1e-5, rtol=0)


def test_skill_reads_a_bi_encoder_pair_as_the_distance_of_its_sentences(tmp_path, tiny_bert_dir, mrpc_dir):
    from skeleton.core.modeling import BI_ENCODER
    from skeleton.method.skill import predictivity

    context = _task_context(tmp_path, tiny_bert_dir, mrpc_dir, task="mrpc", head=BI_ENCODER)
    workspace = context.workspace
    classifier = workspace.new_classifier(seed=3).eval()
    batches = iterate_batches(workspace.attribution_split(8, 42), 4, workspace.pad_token_id, shuffle=False)
    scores = get_scorer("skill").score(classifier, batches, torch.device("cpu"), context=context)

    prompt, reader = classifier.num_virtual_tokens, _one_sentence_reader(classifier)

    def distances(split):  # (rows, prompt positions, neurons) |first - second| at the prompt positions
        first, second = (_captured_table(reader, _one_sentence_split(split, s)) for s in (0, 1))
        return torch.stack([(a[:prompt] - b[:prompt]).abs() for a, b in zip(first, second, strict=True)])

    train, validation = distances(context.training_sample(42)), distances(workspace.validation)
    expected = predictivity(train, validation, torch.tensor(workspace.validation.labels), 2)
    torch.testing.assert_close(torch.cat(scores.ffn), expected, atol=1e-5, rtol=0)
