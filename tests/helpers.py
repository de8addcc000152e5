"""Small builders shared by the tests."""

from __future__ import annotations

import torch

from skeleton.batching import EncodedSplit
from skeleton.modeling import build_classifier
from skeleton.tasks import get_task
from tests.conftest import synthetic_rows, tiny_model


def tiny_classifier(
    model_type: str, tokenizer, tokenizer_dir, head: str = "cls", seed: int = 0, num_virtual_tokens: int = 4
):
    backbone = tiny_model(model_type, mlm=head == "mlm", seed=seed)
    classifier = build_classifier(
        backbone,
        tokenizer,
        get_task("sst2"),
        head,
        num_virtual_tokens,
        "random",
        str(tokenizer_dir),
        seed=seed,
    )
    return classifier.eval()


def encoded_rows(tokenizer, count: int = 8, seed: int = 5, template: bool = False) -> EncodedSplit:
    from datasets import Dataset

    from skeleton.batching import encode_split

    rows = synthetic_rows(count, seed)
    dataset = Dataset.from_dict({"text": [r[0] for r in rows], "label": [r[1] for r in rows]})
    return encode_split(dataset, tokenizer, get_task("sst2"), template, 32)


def random_inputs(batch: int = 3, tokens: int = 7, vocab: int = 40, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (batch, tokens), generator=generator)
    mask = torch.ones(batch, tokens, dtype=torch.long)
    mask[0, -2:] = 0  # one padded row
    ids[0, -2:] = 0
    ids[:, 2] = 4  # a [MASK] token for the verbalizer head
    return {"input_ids": ids, "attention_mask": mask}
