import pytest
import torch

from skeleton.core.architectures import ffn_layers
from skeleton.core.scores_and_plans import NeuronScores, PruningPlan
from skeleton.method.pruning import (
    PaddedLinear,
    _layer_counts,
    apply_pruning,
    full_plan,
    make_cost_plan,
    make_plan,
)
from tests.conftest import ARCHITECTURE_NAMES, tiny_model
from tests.helpers import random_inputs


def _hidden(model, inputs):
    with torch.no_grad():
        return model(**inputs)[0]


@pytest.mark.parametrize("model_type", ARCHITECTURE_NAMES)
def test_keeping_all_neurons_is_the_identity(model_type):
    model = tiny_model(model_type)
    inputs = random_inputs()
    before = _hidden(model, inputs)
    apply_pruning(model, full_plan(model))
    torch.testing.assert_close(_hidden(model, inputs), before, rtol=0, atol=0)


@pytest.mark.parametrize("model_type", ARCHITECTURE_NAMES)
def test_removing_neurons_with_zero_output_columns_changes_nothing(model_type):
    model = tiny_model(model_type)
    dead = {0: [1, 5, 9, 63], 1: list(range(0, 64, 3))}
    with torch.no_grad():
        for index, layer in enumerate(ffn_layers(model)):
            layer.ffn_out.weight[:, dead[index]] = 0.0
    inputs = random_inputs()
    before = _hidden(model, inputs)
    plan = full_plan(model)
    plan.keep_indices = [[i for i in range(64) if i not in dead[n]] for n in range(2)]
    apply_pruning(model, plan)
    assert [layer.ffn_in.out_features for layer in ffn_layers(model)] == [60, 42]
    assert [layer.ffn_out.in_features for layer in ffn_layers(model)] == [60, 42]
    assert model.config.skeleton_ffn_sizes == [60, 42]
    torch.testing.assert_close(_hidden(model, inputs), before, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("model_type", ARCHITECTURE_NAMES)
def test_zero_padding_equals_masking_the_output_dims(model_type):
    reference = tiny_model(model_type)
    pruned = tiny_model(model_type)
    out_keep = [[0, 3, 4, 10, 20, 31], list(range(0, 32, 2))]
    handles = []
    for index, layer in enumerate(ffn_layers(reference)):
        mask = torch.zeros(32)
        mask[out_keep[index]] = 1.0
        handles.append(layer.ffn_out.register_forward_hook(lambda _m, _a, out, mask=mask: out * mask))
    inputs = random_inputs()
    expected = _hidden(reference, inputs)
    plan = full_plan(pruned)
    plan.out_keep_indices = out_keep
    apply_pruning(pruned, plan)
    assert all(isinstance(layer.ffn_out, PaddedLinear) for layer in ffn_layers(pruned))
    torch.testing.assert_close(_hidden(pruned, inputs), expected, rtol=1e-5, atol=1e-5)


def test_bias_compensation_adds_the_mean_contribution_of_removed_neurons():
    model = tiny_model("bert")
    layer = ffn_layers(model)[0]
    weight, bias = layer.ffn_out.weight.detach().clone(), layer.ffn_out.bias.detach().clone()
    means = [torch.arange(64, dtype=torch.float32) / 64, torch.zeros(64)]
    scores = NeuronScores("attribution", ffn=[torch.arange(64.0), torch.arange(64.0)], mean_activation=means)
    plan = make_plan(scores, 0.5, hidden_size=32, model_type="bert", bias_compensation=True)
    assert plan.keep_indices[0] == list(range(32, 64))  # the higher scores
    apply_pruning(model, plan, scores)
    expected = bias + weight[:, :32] @ means[0][:32]
    torch.testing.assert_close(ffn_layers(model)[0].ffn_out.bias, expected)


def test_global_ranking_counts_by_hand():
    # layer 0 holds the four best units, layer 1 the rest: keeping half keeps layer 0 whole
    scores = [torch.tensor([9.0, 8.0, 7.0, 6.0]), torch.tensor([1.0, 5.0, 2.0, 0.5])]
    assert _layer_counts(scores, 0.5, 1) == [4, 1]  # a layer is never emptied: at least one unit stays
    assert _layer_counts(scores, 0.75, 1) == [4, 2]
    # rounding to multiples of 2 never leaves a layer empty
    assert _layer_counts(scores, 0.5, 2) == [4, 2]


def test_round_to_keeps_widths_multiples():
    generator = torch.Generator().manual_seed(0)
    scores = NeuronScores(
        "x",
        ffn=[torch.rand(64, generator=generator) * (i + 1) for i in range(2)],
        mean_activation=[torch.zeros(64)] * 2,
    )
    plan = make_plan(scores, 0.4, hidden_size=32, model_type="bert", round_to=8)
    assert all(size % 8 == 0 and size >= 8 for size in plan.kept_sizes)
    assert abs(plan.kept_fraction - 0.4) <= 8 / 64
    assert PruningPlan.from_dict(plan.to_dict()) == plan


def test_pruning_twice_is_refused():
    model = tiny_model("bert")
    plan = full_plan(model)
    plan.out_keep_indices = [list(range(32))] * 2
    apply_pruning(model, plan)
    with pytest.raises(ValueError, match="already pruned"):
        apply_pruning(model, plan)


def _zero_heads(model, removed: dict[int, list[int]]) -> None:
    """Mask heads as a head mask does: zero the rows of their value projection (BERT's ``value``,
    DistilBERT's ``v_lin``), so their context, and what they add to the layer, is exactly 0."""
    with torch.no_grad():
        for index, layer in enumerate(ffn_layers(model)):
            size = layer.head_size
            rows = torch.cat([torch.arange(h * size, (h + 1) * size) for h in removed[index]])
            (value,) = [m for n, m in layer.attention.named_modules() if n.split(".")[-1] in ("value", "v_lin")]
            value.weight[rows] = 0.0
            value.bias[rows] = 0.0


@pytest.mark.parametrize("model_type", ARCHITECTURE_NAMES)
def test_keeping_all_heads_is_the_identity(model_type):
    model = tiny_model(model_type)
    inputs = random_inputs()
    before = _hidden(model, inputs)
    plan = full_plan(model)
    assert plan.kept_heads == [4, 4]
    apply_pruning(model, plan)
    torch.testing.assert_close(_hidden(model, inputs), before, rtol=0, atol=0)


@pytest.mark.parametrize("model_type", ARCHITECTURE_NAMES)
def test_a_removed_head_equals_masking_it(model_type):
    removed = {0: [1, 3], 1: [0]}
    reference = tiny_model(model_type)
    _zero_heads(reference, removed)
    pruned = tiny_model(model_type)
    plan = full_plan(pruned)
    plan.head_keep_indices = [[h for h in range(4) if h not in removed[i]] for i in range(2)]
    apply_pruning(pruned, plan)
    assert [layer.num_heads for layer in ffn_layers(pruned)] == [2, 3]
    assert [layer.attention_out.in_features for layer in ffn_layers(pruned)] == [16, 24]  # heads x head size 8
    assert pruned.config.skeleton_heads == [2, 3]
    inputs = random_inputs()
    torch.testing.assert_close(_hidden(pruned, inputs), _hidden(reference, inputs), rtol=1e-5, atol=1e-5)


def test_head_bias_compensation_folds_the_mean_context_of_removed_heads():
    model = tiny_model("bert")
    out = ffn_layers(model)[0].attention_out
    weight, bias = out.weight.detach().clone(), out.bias.detach().clone()
    context = [torch.linspace(-1, 1, 32), torch.zeros(32)]
    scores = NeuronScores(
        "attribution",
        ffn=[torch.ones(64), torch.ones(64)],
        mean_activation=[torch.zeros(64), torch.zeros(64)],
        heads=[torch.tensor([4.0, 3.0, 2.0, 1.0]), torch.ones(4)],
        mean_head_context=context,
    )
    plan = full_plan(model)
    plan.bias_compensation = True
    plan.head_keep_indices = [[0, 1], [0, 1, 2, 3]]
    apply_pruning(model, plan, scores)
    expected = bias + weight[:, 16:32] @ context[0][16:32]  # heads 2 and 3 are dims 16..31
    torch.testing.assert_close(ffn_layers(model)[0].attention_out.bias, expected)


def test_a_layer_keeps_at_least_one_head():
    model = tiny_model("bert")
    plan = full_plan(model)
    plan.head_keep_indices = [[], [0]]
    with pytest.raises(ValueError, match="no attention head"):
        apply_pruning(model, plan)


class _LinearCosts:
    """A cost model worked out by hand: a head costs 0.02, a neuron 0.001, each layer 0.05 more
    and the rest of the model 0.2 (fractions are of the unpruned total, 0.588)."""

    num_heads = [4, 4]
    head, neuron, outside, overhead = 0.02, 0.001, 0.2, 0.05  # overhead: per layer that stays

    def total(self, heads, widths):
        alive = sum(1 for h in heads if h > 0)
        return self.outside + self.overhead * alive + self.head * sum(heads) + self.neuron * sum(widths)

    def fraction(self, heads, widths):
        return self.total(heads, widths) / self.total(self.num_heads, [64, 64])

    def unit_costs(self):
        return self.head, self.neuron

    def layer_shares(self):
        # a whole layer: its 4 heads and 64 neurons plus 0.05 of overhead, over the whole model
        return [(4 * self.head + 64 * self.neuron + 0.05) / self.total(self.num_heads, [64, 64])] * 2


def test_cost_plan_ranks_heads_and_neurons_by_score_per_cost():
    costs = _LinearCosts()
    full = costs.total([4, 4], [64, 64])  # 0.2 + 0.1 + 0.16 + 0.128 = 0.588
    # neurons score 0.01 each (worth 10 per unit cost); heads 0 and 1 of layer 0 score 0.1 (worth 5)
    # and every other head 1.0 (worth 50): the two cheap-to-lose heads go before any neuron
    scores = NeuronScores(
        "attribution",
        ffn=[torch.full((64,), 0.01), torch.full((64,), 0.01)],
        mean_activation=[torch.zeros(64)] * 2,
        heads=[torch.tensor([0.1, 0.1, 1.0, 1.0]), torch.ones(4)],
    )
    target = (full - 2 * 0.02) / full  # exactly the two weak heads
    plan = make_cost_plan(scores, target, costs, hidden_size=32, model_type="bert")
    assert plan.head_keep_indices == [[2, 3], [0, 1, 2, 3]]
    assert plan.kept_sizes == [64, 64]
    assert plan.latency_fraction == pytest.approx(target)
    # a little further: neurons (worth 10) go next, not the strong heads (worth 50); 8 neurons = 0.008
    plan = make_cost_plan(scores, (full - 0.04 - 0.008) / full, costs, hidden_size=32, model_type="bert")
    assert plan.kept_heads == [2, 4]
    assert sum(plan.kept_sizes) == 128 - 8
    # an unreachable target removes everything allowed: one head and round_to neurons per layer
    plan = make_cost_plan(scores, 0.05, costs, hidden_size=32, model_type="bert", round_to=8)
    assert plan.kept_heads == [1, 1] and plan.kept_sizes == [8, 8]
    assert plan.latency_fraction == pytest.approx(costs.fraction([1, 1], [8, 8]))


def test_cost_plan_without_heads_keeps_every_head():
    scores = NeuronScores("attribution", ffn=[torch.rand(64), torch.rand(64)], mean_activation=[torch.zeros(64)] * 2)
    plan = make_cost_plan(scores, 0.8, _LinearCosts(), hidden_size=32, model_type="bert", prune_heads=False)
    assert plan.head_keep_indices is None
    assert plan.latency_fraction <= 0.8


@pytest.mark.parametrize("model_type", ARCHITECTURE_NAMES)
def test_keeping_every_layer_is_the_identity_and_removing_one_skips_it(model_type):
    from skeleton.core.architectures import get_architecture

    model = tiny_model(model_type)
    inputs = random_inputs()
    before = _hidden(model, inputs)
    plan = full_plan(model)
    plan.kept_layers = [0, 1]
    apply_pruning(model, plan)
    torch.testing.assert_close(_hidden(model, inputs), before, rtol=0, atol=0)

    # removing layer 0 gives the one-layer model built independently from layer 1's weights
    pruned = tiny_model(model_type)
    plan = full_plan(pruned)
    plan.kept_layers = [1]
    plan.keep_indices[0], plan.head_keep_indices[0] = [], []
    apply_pruning(pruned, plan)
    assert len(ffn_layers(pruned)) == 1 and pruned.config.skeleton_layers == [1]
    config = tiny_model(model_type).config
    config.num_hidden_layers = 1
    reference = type(pruned)(config).eval()
    prefix = get_architecture(model_type).layers
    state = {k.replace(f"{prefix}.1.", f"{prefix}.0."): v for k, v in tiny_model(model_type).state_dict().items()}
    reference.load_state_dict({k: v for k, v in state.items() if f"{prefix}.0." in k or prefix not in k})
    torch.testing.assert_close(_hidden(pruned, inputs), _hidden(reference, inputs), rtol=1e-5, atol=1e-5)


def test_cost_plan_removes_a_whole_layer_whose_units_are_all_weak():
    costs = _LinearCosts()
    strong, weak = torch.full((64,), 0.05), torch.full((64,), 1e-4)
    scores = NeuronScores(
        "attribution",
        ffn=[strong, weak],
        mean_activation=[torch.zeros(64)] * 2,
        heads=[torch.ones(4), torch.full((4,), 1e-3)],
    )
    full = costs.total([4, 4], [64, 64])
    target = (full - 0.08 - 0.064 - 0.05) / full  # exactly one whole layer, overhead included
    plan = make_cost_plan(scores, target, costs, hidden_size=32, model_type="bert", prune_layers=True)
    assert plan.kept_layers == [0]
    assert plan.kept_sizes == [64, 0] and plan.kept_heads == [4, 0]
    assert plan.heads_per_layer([4, 4]) == [4, 0]
    # without layers the same target thins both layers instead and cannot drop the overhead
    thinned = make_cost_plan(scores, target, costs, hidden_size=32, model_type="bert")
    assert thinned.kept_layers is None and thinned.kept_heads[1] >= 1


@pytest.mark.parametrize("model_type", ARCHITECTURE_NAMES)
def test_keep_all_pruning_is_the_identity_for_the_bi_encoder(model_type, tokenizer, tokenizer_dir):
    """Both sentences of a pair run through the one backbone, so keeping every neuron, head and layer
    leaves the pair's logits exactly as they were, and a plan's widths hold for both sides."""
    from skeleton.core.modeling import BI_ENCODER
    from tests.helpers import tiny_classifier

    classifier = tiny_classifier(model_type, tokenizer, tokenizer_dir, head=BI_ENCODER, task="mrpc")
    first, second = random_inputs(seed=1), random_inputs(seed=2)
    inputs = {**first, "pair_input_ids": second["input_ids"], "pair_attention_mask": second["attention_mask"]}
    with torch.no_grad():
        before = classifier(**inputs)
    plan = full_plan(classifier.backbone)
    plan.kept_layers = [0, 1]
    apply_pruning(classifier.backbone, plan)
    with torch.no_grad():
        torch.testing.assert_close(classifier(**inputs), before, rtol=0, atol=0)
