import pytest
import torch

from skeleton.core.errors import SkeletonError
from skeleton.core.modeling import BI_ENCODER, shorten_prompt
from tests.conftest import ARCHITECTURE_NAMES
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


@pytest.mark.parametrize("model_type", ARCHITECTURE_NAMES)
def test_the_bi_encoder_reads_two_single_sentence_passes(model_type, tokenizer, tokenizer_dir):
    """One batched pass over both sentences of padded pairs gives what two single-sentence passes, each
    sentence alone and unpadded, give: u and v pooled apart, then [u, v, |u - v|, u * v]."""
    classifier = tiny_classifier(model_type, tokenizer, tokenizer_dir, head=BI_ENCODER, task="mrpc")
    pairs = [("good film", "a dull and boring plot"), ("the awful movie was bad", "superb")]
    firsts, seconds = (tokenizer([p[side] for p in pairs], padding="max_length", max_length=9) for side in (0, 1))
    with torch.no_grad():
        logits = classifier(
            torch.tensor(firsts["input_ids"]),
            torch.tensor(firsts["attention_mask"]),
            pair_input_ids=torch.tensor(seconds["input_ids"]),
            pair_attention_mask=torch.tensor(seconds["attention_mask"]),
        )
        # token types of the first sentences (a runtime may pass them) change nothing: each sentence is one segment
        typed = classifier(
            torch.tensor(firsts["input_ids"]),
            torch.tensor(firsts["attention_mask"]),
            torch.ones_like(torch.tensor(firsts["input_ids"])),
            pair_input_ids=torch.tensor(seconds["input_ids"]),
            pair_attention_mask=torch.tensor(seconds["attention_mask"]),
        )
        torch.testing.assert_close(typed, logits, rtol=0, atol=0)
        for row, (text1, text2) in enumerate(pairs):
            pooled = []
            for text in (text1, text2):
                ids = torch.tensor([tokenizer(text)["input_ids"]])  # (1, its own length): no padding
                hidden, _ = classifier.hidden_states(ids, torch.ones_like(ids))
                pooled.append(torch.nn.functional.normalize(hidden[0, 4:].mean(0), dim=-1))  # 4 prompt tokens
            u, v = pooled
            expected = classifier.head.classifier(torch.cat([u, v, (u - v).abs(), u * v]))
            torch.testing.assert_close(logits[row], expected, rtol=1e-5, atol=1e-5)


def test_the_bi_encoder_takes_pairs_and_only_pair_tasks(tokenizer, tokenizer_dir, tiny_bert_dir):
    from skeleton.core.modeling import load_config, resolve_head
    from skeleton.core.tasks import get_task

    config = load_config(str(tiny_bert_dir))
    assert resolve_head(BI_ENCODER, config, get_task("mrpc")) == BI_ENCODER
    with pytest.raises(SkeletonError, match="task sst2 has one text per input"):
        resolve_head(BI_ENCODER, config, get_task("sst2"))
    classifier = tiny_classifier("bert", tokenizer, tokenizer_dir, head=BI_ENCODER, task="mrpc")
    with pytest.raises(ValueError, match="pair_input_ids"):
        classifier(**random_inputs())  # a bi-encoder without its second sentences
    cls = tiny_classifier("bert", tokenizer, tokenizer_dir, task="mrpc")
    inputs = random_inputs()
    with pytest.raises(ValueError, match="pair_input_ids"):
        cls(**inputs, pair_input_ids=inputs["input_ids"], pair_attention_mask=inputs["attention_mask"])
