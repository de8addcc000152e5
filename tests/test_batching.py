import datasets
import torch

from skeleton.core.batching import EncodedSplit, collate, encode_split, iterate_batches
from skeleton.core.tasks import get_task


def _split(lengths):
    return EncodedSplit([[7] * n for n in lengths], None, [i % 2 for i in range(len(lengths))])


def test_collate_pads_and_masks():
    batch = collate(_split([3, 1, 2]), [0, 1, 2], pad_token_id=0)
    assert batch.input_ids.tolist() == [[7, 7, 7], [7, 0, 0], [7, 7, 0]]
    assert batch.attention_mask.tolist() == [[1, 1, 1], [1, 0, 0], [1, 1, 0]]
    assert batch.labels.tolist() == [0, 1, 0]


def test_every_row_once_and_less_padding_when_grouped():
    lengths = [1 + (i * 37) % 60 for i in range(400)]
    split = _split(lengths)

    def padding(group):
        batches = list(iterate_batches(split, 16, 0, shuffle=True, seed=3, group_by_length=group))
        rows = sorted(i for b in batches for i in b.indices)
        assert rows == list(range(400))
        return sum(int((b.attention_mask == 0).sum()) for b in batches)

    assert padding(True) < padding(False) / 4


def test_shuffling_is_seeded():
    split = _split([5] * 64)
    first = [b.indices for b in iterate_batches(split, 8, 0, shuffle=True, seed=1)]
    again = [b.indices for b in iterate_batches(split, 8, 0, shuffle=True, seed=1)]
    other = [b.indices for b in iterate_batches(split, 8, 0, shuffle=True, seed=2)]
    assert first == again and first != other


def test_template_truncation_keeps_the_mask_token(tokenizer):
    spec = get_task("sst2")
    long_text = " ".join(["good movie"] * 100)
    dataset = datasets.Dataset.from_dict({"text": [long_text, "bad"], "label": [1, 0]})
    encoded = encode_split(dataset, tokenizer, spec, use_template=True, max_length=24)
    assert all(len(ids) <= 24 for ids in encoded.input_ids)
    assert all(tokenizer.mask_token_id in ids for ids in encoded.input_ids)
    # the short text is wrapped whole: [CLS] text : bad . the sentiment of the text is [MASK] . [SEP]
    assert tokenizer.decode(encoded.input_ids[1]) == "[CLS] text : bad. the sentiment of the text is [MASK]. [SEP]"


def test_pairs_get_token_types(tokenizer):
    spec = get_task("mrpc")
    dataset = datasets.Dataset.from_dict({"text1": ["good film"], "text2": ["bad plot"], "label": [0]})
    plain = encode_split(dataset, tokenizer, spec, use_template=False, max_length=32)
    assert plain.token_type_ids[0] == [0, 0, 0, 0, 1, 1, 1]
    assert torch.tensor(plain.input_ids[0]).shape == (7,)


def test_a_bi_encoder_encodes_each_sentence_alone_and_pads_both_to_one_length(tokenizer):
    spec = get_task("mrpc")
    texts1, texts2 = ["good film", "the awful movie was bad"], ["a dull and boring plot", "superb"]
    dataset = datasets.Dataset.from_dict({"text1": texts1, "text2": texts2, "label": [0, 1]})
    split = encode_split(dataset, tokenizer, spec, use_template=False, max_length=32, separate_pairs=True)
    assert split.input_ids == tokenizer(texts1)["input_ids"] and split.pair_ids == tokenizer(texts2)["input_ids"]
    assert split.token_type_ids is None and [split.length(i) for i in range(2)] == [7, 7]
    batch = collate(split.select([1, 0]), [0, 1], pad_token_id=0)
    assert batch.input_ids.shape == batch.pair_input_ids.shape == (2, 7)
    assert batch.attention_mask.sum(1).tolist() == [7, 4] and batch.pair_attention_mask.sum(1).tolist() == [3, 7]
    assert batch.sequence_mask.tolist() == batch.attention_mask.tolist() + batch.pair_attention_mask.tolist()
    assert set(batch.inputs()) == {"input_ids", "attention_mask", "pair_input_ids", "pair_attention_mask"}
    # each sentence is cut to max_length on its own
    cut = encode_split(dataset, tokenizer, spec, use_template=False, max_length=4, separate_pairs=True)
    assert [len(ids) for ids in cut.input_ids + cut.pair_ids] == [4, 4, 4, 3]
