import pytest
import torch

from skeleton.core.architectures import (
    ARCHITECTURES,
    MLM_HEADS,
    ffn_layers,
    get_architecture,
    max_input_tokens,
    mlm_head_modules,
)
from skeleton.core.errors import SkeletonError
from tests.conftest import ARCHITECTURE_NAMES, TINY_CONFIGS, tiny_model


def test_every_architecture_has_a_tiny_fixture():
    assert set(ARCHITECTURES) == set(TINY_CONFIGS), "add a tiny config to tests/conftest.py for each entry"
    assert set(MLM_HEADS) == set(ARCHITECTURES)


@pytest.mark.parametrize("model_type", ARCHITECTURE_NAMES)
def test_ffn_layers_find_both_linears(model_type):
    model = tiny_model(model_type)
    layers = ffn_layers(model)
    assert len(layers) == 2
    for layer in layers:
        assert (layer.ffn_in.in_features, layer.ffn_in.out_features) == (32, 64)
        assert (layer.ffn_out.in_features, layer.ffn_out.out_features) == (64, 32)


@pytest.mark.parametrize("model_type", ARCHITECTURE_NAMES)
def test_mlm_head_maps_hidden_to_vocabulary(model_type):
    model = tiny_model(model_type, mlm=True)
    hidden = torch.randn(3, 32)
    for module in mlm_head_modules(model):
        hidden = module(hidden)
    assert hidden.shape == (3, model.config.vocab_size)
    # the same as the model's own MLM logits at that position
    inputs = torch.tensor([[2, 5, 6, 3]])
    with torch.no_grad():
        expected = model(input_ids=inputs).logits[0, 1]
        state = model.base_model(input_ids=inputs)[0][0, 1]
        for module in mlm_head_modules(model):
            state = module(state)
    torch.testing.assert_close(state, expected)


def test_unsupported_architecture_lists_supported_ones():
    with pytest.raises(SkeletonError, match="supported families: bert, distilbert"):
        get_architecture("gpt2")


@pytest.mark.parametrize("model_type", ARCHITECTURE_NAMES)
def test_family_facts_match_transformers(model_type):
    import transformers

    model = tiny_model(model_type).eval()
    spec = get_architecture(model_type)
    assert getattr(transformers, spec.classification_class).config_class is type(model.config)
    # the longest input the position table holds runs; one token more does not
    limit = max_input_tokens(model.config, prompt_tokens=0)
    with torch.no_grad():
        model(input_ids=torch.full((1, limit), 5))
        with pytest.raises((IndexError, RuntimeError)):
            model(input_ids=torch.full((1, limit + 1), 5))
    assert max_input_tokens(model.config, prompt_tokens=20) == limit - 20
