"""Tokenization and length-grouped batching shared by training, scoring and evaluation."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

import datasets
import torch
from transformers import PreTrainedTokenizerBase

from skeleton.core.tasks import TaskSpec


@dataclass
class EncodedSplit:
    """Token ids of one split, unpadded, plus labels, and a teacher's logits per row when distilling."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    labels: list[int]
    teacher_logits: torch.Tensor | None = None  # (rows, labels)

    def __len__(self) -> int:
        return len(self.labels)

    def select(self, indices: list[int]) -> EncodedSplit:
        return EncodedSplit(
            [self.input_ids[i] for i in indices],
            None if self.token_type_ids is None else [self.token_type_ids[i] for i in indices],
            [self.labels[i] for i in indices],
            None if self.teacher_logits is None else self.teacher_logits[indices],
        )

    def with_teacher(self, logits: torch.Tensor) -> EncodedSplit:
        """This split with a teacher's logits for every row (rows, labels), for distillation."""
        if logits.shape[0] != len(self):
            raise ValueError(f"teacher logits for {logits.shape[0]} rows, the split has {len(self)}")
        return EncodedSplit(self.input_ids, self.token_type_ids, self.labels, logits.float())


def fill_template(spec: TaskSpec, row: dict, mask_token: str) -> str:
    text = spec.template
    for field in spec.text_fields:
        text = text.replace("{" + field + "}", row[field])
    return text.replace("<mask>", mask_token)


def _encode_template(tokenizer, spec: TaskSpec, row: dict, max_length: int) -> dict:
    """Encode the filled template, shortening the texts (never the mask) when it is too long."""
    row = dict(row)
    for _ in range(8):
        encoded = tokenizer(fill_template(spec, row, tokenizer.mask_token), truncation=False)
        overflow = len(encoded["input_ids"]) - max_length
        if overflow <= 0:
            return encoded
        longest = max(spec.text_fields, key=lambda f: len(row[f]))
        pieces = tokenizer.tokenize(row[longest])
        row[longest] = tokenizer.convert_tokens_to_string(pieces[: max(1, len(pieces) - overflow - 2)])
    return tokenizer(fill_template(spec, row, tokenizer.mask_token), truncation=True, max_length=max_length)


def encode_split(
    split: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    spec: TaskSpec,
    use_template: bool,
    max_length: int,
) -> EncodedSplit:
    """Tokenize one split; texts beyond ``max_length`` tokens are truncated."""
    columns = {field: list(split[field]) for field in spec.text_fields}
    labels = list(split["label"])
    if not labels:
        return EncodedSplit([], None, [])
    if use_template:
        rows = [{f: columns[f][i] for f in spec.text_fields} for i in range(len(labels))]
        encoded = [_encode_template(tokenizer, spec, row, max_length) for row in rows]
        input_ids = [e["input_ids"] for e in encoded]
        token_types = [e["token_type_ids"] for e in encoded] if "token_type_ids" in encoded[0] else None
    else:
        texts = [columns[f] for f in spec.text_fields]
        encoded = tokenizer(*texts, truncation=True, max_length=max_length)
        input_ids = encoded["input_ids"]
        token_types = encoded.get("token_type_ids")
    return EncodedSplit(input_ids, token_types, labels)


@dataclass
class Batch:
    input_ids: torch.Tensor  # (batch, tokens)
    attention_mask: torch.Tensor  # (batch, tokens)
    token_type_ids: torch.Tensor | None  # (batch, tokens)
    labels: torch.Tensor  # (batch,)
    indices: list[int]
    teacher_logits: torch.Tensor | None = None  # (batch, labels)

    def to(self, device: torch.device) -> Batch:
        return Batch(
            self.input_ids.to(device),
            self.attention_mask.to(device),
            None if self.token_type_ids is None else self.token_type_ids.to(device),
            self.labels.to(device),
            self.indices,
            None if self.teacher_logits is None else self.teacher_logits.to(device),
        )

    def inputs(self) -> dict[str, torch.Tensor]:
        kwargs = {"input_ids": self.input_ids, "attention_mask": self.attention_mask}
        if self.token_type_ids is not None:
            kwargs["token_type_ids"] = self.token_type_ids
        return kwargs


def collate(split: EncodedSplit, indices: list[int], pad_token_id: int) -> Batch:
    length = max(len(split.input_ids[i]) for i in indices)
    ids = torch.full((len(indices), length), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(indices), length), dtype=torch.long)
    types = None if split.token_type_ids is None else torch.zeros((len(indices), length), dtype=torch.long)
    for row, i in enumerate(indices):
        n = len(split.input_ids[i])
        ids[row, :n] = torch.tensor(split.input_ids[i])
        mask[row, :n] = 1
        if types is not None:
            types[row, :n] = torch.tensor(split.token_type_ids[i])
    labels = torch.tensor([split.labels[i] for i in indices], dtype=torch.long)
    teacher = None if split.teacher_logits is None else split.teacher_logits[list(indices)]
    return Batch(ids, mask, types, labels, list(indices), teacher)


def iterate_batches(
    split: EncodedSplit,
    batch_size: int,
    pad_token_id: int,
    shuffle: bool,
    seed: int = 0,
    group_by_length: bool = True,
) -> Iterator[Batch]:
    """Yield padded batches.

    With ``group_by_length`` rows of similar length share a batch (within shuffled windows of 50
    batches when training, fully sorted when not), which cuts padding, the main waste on a CPU.
    """
    order = list(range(len(split)))
    rng = random.Random(seed)
    if shuffle:
        rng.shuffle(order)
    if group_by_length:
        if shuffle:
            window = batch_size * 50
            order = [
                i
                for start in range(0, len(order), window)
                for i in sorted(order[start : start + window], key=lambda i: len(split.input_ids[i]))
            ]
        else:
            order.sort(key=lambda i: len(split.input_ids[i]))
    chunks = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    if shuffle:
        rng.shuffle(chunks)
    for chunk in chunks:
        yield collate(split, chunk, pad_token_id)


def num_batches(split: EncodedSplit, batch_size: int) -> int:
    return (len(split) + batch_size - 1) // batch_size
