import pytest
import torch

from skeleton.core.errors import SkeletonError
from skeleton.core.modeling import shorten_prompt
from tests.helpers import random_inputs, tiny_classifier


def test_a_shortened_prompt_is_the_chosen_positions_of_the_old_one(tokenizer, tokenizer_dir):
    classifier = tiny_classifier("bert", tokenizer, tokenizer_dir, num_virtual_tokens=6)
    shortened = shorten_prompt(classifier, [1, 4])
    assert shortened.num_virtual_tokens == 2
    inputs = random_inputs()
    with torch.no_grad():
        expected = classifier(**inputs, prompt=classifier.prompt_embeddings()[[1, 4]])
        torch.testing.assert_close(shortened(**inputs), expected, rtol=0, atol=0)
    prompt, head = shortened.trainable_parameters()
    assert [p.shape for p in prompt] == [(2, 32)] and head  # the new prompt is what condensation tunes
    assert shortened.backbone is classifier.backbone


def test_shortening_refuses_positions_outside_the_prompt(tokenizer, tokenizer_dir):
    classifier = tiny_classifier("bert", tokenizer, tokenizer_dir, num_virtual_tokens=4)
    for positions in ([], [0, 0], [7]):
        with pytest.raises(SkeletonError):
            shorten_prompt(classifier, positions)
