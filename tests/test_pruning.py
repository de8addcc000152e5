import pytest
import torch

from skeleton.architectures import ffn_layers
from skeleton.pruning import PaddedLinear, PruningPlan, _layer_counts, apply_pruning, full_plan, make_plan
from skeleton.scoring import NeuronScores
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
