import pytest
import torch

from skeleton.architectures import ffn_layers
from skeleton.batching import collate, iterate_batches
from skeleton.scoring import SCORERS, NeuronScores, collect_ffn_statistics, get_scorer
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
    together = collect_ffn_statistics(classifier, _one_batch(split, [0, 1, 2, 3]), device, with_outputs=True)
    alone = [collect_ffn_statistics(classifier, _one_batch(split, [i]), device, with_outputs=True) for i in range(4)]
    assert together.num_samples == 4
    for key in ("act_grad", "act", "grad", "signed_act", "out_act_grad", "signed_out"):
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
        # attribution is bounded by activation x gradient magnitudes token by token, so never zero
        # where both are positive, and never negative
        assert (attribution.ffn[layer] >= 0).all()
    first = get_scorer("random", seed=1).score(classifier, batches(), device)
    again = get_scorer("random", seed=1).score(classifier, batches(), device)
    other = get_scorer("random", seed=2).score(classifier, batches(), device)
    assert torch.equal(first.ffn[0], again.ffn[0]) and not torch.equal(first.ffn[0], other.ffn[0])
    assert set(SCORERS) >= {"attribution", "activation", "gradient", "random"}


def test_scores_round_trip(tmp_path, tokenizer, tokenizer_dir):
    classifier = tiny_classifier("bert", tokenizer, tokenizer_dir)
    split = encoded_rows(tokenizer, count=3)
    scores = get_scorer("attribution").score(
        classifier, _one_batch(split, [0, 1, 2]), torch.device("cpu"), ("ffn", "ffn-out")
    )
    scores.save(tmp_path / "s.safetensors")
    loaded = NeuronScores.load(tmp_path / "s.safetensors")
    assert loaded.scorer == "attribution" and loaded.num_samples == 3
    for a, b in zip(scores.ffn + scores.ffn_out, loaded.ffn + loaded.ffn_out, strict=True):
        assert torch.equal(a, b)
    assert NeuronScores.from_dict(scores.to_dict()).ffn[1].tolist() == scores.ffn[1].tolist()
