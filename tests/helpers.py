"""Small builders shared by the tests."""

from __future__ import annotations

import torch

from skeleton.core.batching import EncodedSplit
from skeleton.core.modeling import build_classifier
from skeleton.core.tasks import get_task
from tests.conftest import synthetic_rows, tiny_model


def tiny_classifier(
    model_type: str,
    tokenizer,
    tokenizer_dir,
    head: str = "cls",
    seed: int = 0,
    num_virtual_tokens: int = 4,
    task: str = "sst2",
):
    backbone = tiny_model(model_type, mlm=head == "mlm", seed=seed)
    classifier = build_classifier(
        backbone,
        tokenizer,
        get_task(task),
        head,
        num_virtual_tokens,
        "random",
        str(tokenizer_dir),
        seed=seed,
    )
    return classifier.eval()


def encoded_rows(tokenizer, count: int = 8, seed: int = 5, template: bool = False) -> EncodedSplit:
    from datasets import Dataset

    from skeleton.core.batching import encode_split

    rows = synthetic_rows(count, seed)
    dataset = Dataset.from_dict({"text": [r[0] for r in rows], "label": [r[1] for r in rows]})
    return encode_split(dataset, tokenizer, get_task("sst2"), template, 32)


def tiny_compress_config(output, tiny_bert_dir, sst2_dir, **overrides):
    """A quick compress run of the tiny BERT on the synthetic SST-2 rows, no export; ``overrides`` win."""
    from skeleton.core.config import CompressConfig, DataConfig, ModelConfig, SearchConfig, TrainConfig

    values = dict(
        data=DataConfig("sst2", str(sst2_dir)),
        model=ModelConfig(model=str(tiny_bert_dir), num_virtual_tokens=4),
        tune=TrainConfig(epochs=3, batch_size=16, lr=5e-2, head_lr=5e-2, evals_per_epoch=1),
        condense=TrainConfig(epochs=1, batch_size=16, lr=5e-2, head_lr=5e-2, evals_per_epoch=1),
        search=SearchConfig(margin=5.0),
        targets=("ffn",),  # the paper's search over the kept ratio: no latency table to measure
        round_to=4,
        output=str(output),
        device="cpu",
        export=False,
    )
    values.update(overrides)
    return CompressConfig(**values)


def tiny_cli_options(tiny_bert_dir, sst2_dir) -> list[str]:
    """The command-line options of tune, compress and compare for the tiny BERT on the synthetic rows."""
    return [
        *("--model", str(tiny_bert_dir), "--data-dir", str(sst2_dir), "--prompt-tokens", "4"),
        # the paper's step 1: a tiny random model learns the keyword task from a prompt and mean-pooled head
        # within a few steps (the tuned-backbone kinds are tested in test_teacher.py)
        *("--tune", "prompt"),
        *("--device", "cpu", "--quiet"),
        # the synthetic rows are not a phrase bank: the paper's random hold-out keeps this tiny task learnable
        *("--validation-rows", "all"),
    ]


def random_inputs(batch: int = 3, tokens: int = 7, vocab: int = 40, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (batch, tokens), generator=generator)
    mask = torch.ones(batch, tokens, dtype=torch.long)
    mask[0, -2:] = 0  # one padded row
    ids[0, -2:] = 0
    ids[:, 2] = 4  # a [MASK] token for the verbalizer head
    return {"input_ids": ids, "attention_mask": mask}
