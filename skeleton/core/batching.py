"""Tokenization and length-grouped batching shared by training, scoring and evaluation."""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator
from dataclasses import dataclass

import datasets
import torch
from transformers import PreTrainedTokenizerBase

from skeleton.core.data import column
from skeleton.core.errors import SkeletonError
from skeleton.core.tasks import TaskSpec


@dataclass
class EncodedSplit:
    """Token ids of one split, unpadded, plus labels, and a teacher's logits per row when distilling.

    A split encoded for a bi-encoder (``encode_split(..., separate_pairs=True)``) holds each pair's
    first sentence in ``input_ids`` and its second, encoded on its own, in ``pair_ids``.
    """

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    labels: list[int]
    teacher_logits: torch.Tensor | None = None  # (rows, labels)
    pair_ids: list[list[int]] | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def length(self, row: int) -> int:
        """Tokens the row pads to: its sequence, or the longer sentence of a separately encoded pair."""
        if self.pair_ids is None:
            return len(self.input_ids[row])
        return max(len(self.input_ids[row]), len(self.pair_ids[row]))

    def select(self, indices: list[int]) -> EncodedSplit:
        return EncodedSplit(
            [self.input_ids[i] for i in indices],
            None if self.token_type_ids is None else [self.token_type_ids[i] for i in indices],
            [self.labels[i] for i in indices],
            None if self.teacher_logits is None else self.teacher_logits[indices],
            None if self.pair_ids is None else [self.pair_ids[i] for i in indices],
        )

    def concatenated(self, other: EncodedSplit) -> EncodedSplit:
        """This split's rows, then ``other``'s (both with teacher logits, or neither)."""
        if (self.teacher_logits is None) != (other.teacher_logits is None) or (self.pair_ids is None) != (
            other.pair_ids is None
        ):
            raise ValueError("concatenated splits must both hold teacher logits and pairs, or neither")

        def joined(first, second):
            return None if first is None else first + second

        return EncodedSplit(
            self.input_ids + other.input_ids,
            joined(self.token_type_ids, other.token_type_ids),
            self.labels + other.labels,
            None if self.teacher_logits is None else torch.cat([self.teacher_logits, other.teacher_logits]),
            joined(self.pair_ids, other.pair_ids),
        )

    def with_teacher(self, logits: torch.Tensor) -> EncodedSplit:
        """This split with a teacher's logits for every row (rows, labels), for distillation."""
        if logits.shape[0] != len(self):
            raise ValueError(f"teacher logits for {logits.shape[0]} rows, the split has {len(self)}")
        return EncodedSplit(self.input_ids, self.token_type_ids, self.labels, logits.float(), self.pair_ids)


def fill_template(spec: TaskSpec, row: dict, mask_token: str) -> str:
    text = spec.template
    for field in spec.text_fields:
        text = text.replace("{" + field + "}", row[field])
    return text.replace("<mask>", mask_token)


def template_tokenizer(tokenizer, spec: TaskSpec, max_tokens: int, use_template: bool = True):
    """A copy of ``tokenizer`` whose post-processor wraps texts in the task template, so that
    plain ``tokenizer(text)`` (or ``tokenizer(text1, text2)``) yields the ids the model was trained on.

    Training tokenized the filled template as one string. With WordPiece the pieces tokenize alike
    on their own; with byte-level BPE a word's token carries the space before it, so a text placed
    after a space is tokenized with a prefix space. The result is checked against training's ids.
    """
    from tokenizers.processors import TemplateProcessing

    tokenizer = copy.deepcopy(tokenizer)
    tokenizer.model_max_length = max_tokens
    if not use_template:
        return tokenizer
    if not tokenizer.is_fast:
        raise SkeletonError("exporting a templated model needs a fast tokenizer (tokenizer.json)")
    original = copy.deepcopy(tokenizer)
    sequence, prefix_space = _template_sequence(tokenizer, spec)
    if prefix_space:
        _add_prefix_space(tokenizer)
    names: dict[int, str] = {}
    named = [s if isinstance(s, str) else names.setdefault(s, f"<skeleton_template_{s}>") for s in sequence]
    special = [(token_name, token_id) for token_id, token_name in names.items()]
    tokenizer.backend_tokenizer.post_processor = TemplateProcessing(
        single=[s for s in named if s != "$B:0"], pair=named if spec.is_pair else None, special_tokens=special
    )
    _check_template(original, tokenizer, spec)
    return tokenizer


def _template_sequence(tokenizer, spec: TaskSpec) -> tuple[list[int | str], bool]:
    """The template as token ids around ``$A`` (and ``$B:0``), and whether the texts follow a space
    that the tokenizer folds into a word's token (byte-level BPE)."""
    template = spec.template.replace("<mask>", tokenizer.mask_token or "")
    wrapped = tokenizer.build_inputs_with_special_tokens([-1])
    cut = wrapped.index(-1)
    spaced = (
        tokenizer(" a", add_special_tokens=False)["input_ids"] != tokenizer("a", add_special_tokens=False)["input_ids"]
    )
    sequence: list[int | str] = list(wrapped[:cut])
    rest, follows_space = template, set()
    for index, text_field in enumerate(spec.text_fields):
        before, rest = rest.split("{" + text_field + "}", 1)
        follows_space.add(spaced and before[-1:].isspace())
        piece = before.rstrip() if spaced else before
        sequence += tokenizer(piece, add_special_tokens=False)["input_ids"] if piece.strip() else []
        sequence.append("$A" if index == 0 else "$B:0")
    sequence += tokenizer(rest, add_special_tokens=False)["input_ids"] if rest.strip() else []
    sequence += wrapped[cut + 1 :]
    if len(follows_space) > 1:
        raise SkeletonError(f"the {spec.name} template puts a space before one text and not the other")
    return sequence, follows_space == {True}


def _add_prefix_space(tokenizer) -> None:
    """Tokenize every text as if a space came before it, and keep it so when saved and reloaded."""
    pre_tokenizer = tokenizer.backend_tokenizer.pre_tokenizer
    if not hasattr(pre_tokenizer, "add_prefix_space"):
        raise SkeletonError(f"cannot bake the template into {type(tokenizer).__name__}: train with --no-template")
    pre_tokenizer.add_prefix_space = True
    tokenizer.backend_tokenizer.pre_tokenizer = pre_tokenizer
    tokenizer.add_prefix_space = True
    tokenizer.init_kwargs["add_prefix_space"] = True


def _check_template(original, exported, spec: TaskSpec) -> None:
    """The exported tokenizer must give training's ids (skeleton.core.batching) on sample texts."""
    texts = ["a plain sentence, with a comma", "Another one."]
    row = dict(zip(spec.text_fields, texts, strict=False))
    trained = original(fill_template(spec, row, original.mask_token or ""))["input_ids"]
    if exported(*texts[: len(spec.text_fields)])["input_ids"] != trained:
        raise SkeletonError(
            f"the {spec.name} template cannot be baked into {type(original).__name__} so that it gives "
            "training's tokens: train with --no-template to export this model"
        )


def encode_split(
    split: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    spec: TaskSpec,
    use_template: bool,
    max_length: int,
    separate_pairs: bool = False,
) -> EncodedSplit:
    """Tokenize one split; texts beyond ``max_length`` tokens are truncated.

    With ``separate_pairs`` (the bi-encoder head) each text of a pair is encoded on its own, without
    a template, into ``input_ids`` and ``pair_ids``.
    """
    columns = {field: column(split, field) for field in spec.text_fields}
    labels = column(split, "label")
    if separate_pairs and not spec.is_pair:
        raise SkeletonError(f"a bi-encoder classifies pairs of texts; task {spec.name} has one text per input")
    if not labels:
        return EncodedSplit([], None, [], pair_ids=[] if separate_pairs else None)
    if separate_pairs:
        first, second = (
            tokenizer(columns[f], truncation=True, max_length=max_length)["input_ids"] for f in spec.text_fields
        )
        return EncodedSplit(first, None, labels, pair_ids=second)
    # the template goes around the texts as the exported tokenizer puts it, so a text longer than
    # max_length is cut the same way in training, validation, export, predict and serve
    tokenizer = template_tokenizer(tokenizer, spec, max_length, use_template)
    encoded = tokenizer(*(columns[f] for f in spec.text_fields), truncation=True, max_length=max_length)
    return EncodedSplit(encoded["input_ids"], encoded.get("token_type_ids"), labels)


@dataclass
class Batch:
    """A padded batch. A bi-encoder's batch carries each pair's second sentence in ``pair_input_ids``
    and ``pair_attention_mask``, padded to the same length as the first."""

    input_ids: torch.Tensor  # (batch, tokens)
    attention_mask: torch.Tensor  # (batch, tokens)
    token_type_ids: torch.Tensor | None  # (batch, tokens)
    labels: torch.Tensor  # (batch,)
    indices: list[int]
    teacher_logits: torch.Tensor | None = None  # (batch, labels)
    pair_input_ids: torch.Tensor | None = None  # (batch, tokens)
    pair_attention_mask: torch.Tensor | None = None  # (batch, tokens)

    def to(self, device: torch.device) -> Batch:
        def move(tensor: torch.Tensor | None) -> torch.Tensor | None:
            return None if tensor is None else tensor.to(device)

        return Batch(
            self.input_ids.to(device),
            self.attention_mask.to(device),
            move(self.token_type_ids),
            self.labels.to(device),
            self.indices,
            move(self.teacher_logits),
            move(self.pair_input_ids),
            move(self.pair_attention_mask),
        )

    def inputs(self) -> dict[str, torch.Tensor]:
        """The classifier's keyword arguments (the graph's inputs, by the same names)."""
        kwargs = {"input_ids": self.input_ids, "attention_mask": self.attention_mask}
        for name in ("token_type_ids", "pair_input_ids", "pair_attention_mask"):
            if getattr(self, name) is not None:
                kwargs[name] = getattr(self, name)
        return kwargs

    @property
    def sequence_mask(self) -> torch.Tensor:
        """(sequences, tokens) the mask of every sequence the backbone runs: a bi-encoder's first
        sentences, then its second sentences (``PromptedClassifier.stack_pairs``)."""
        if self.pair_attention_mask is None:
            return self.attention_mask
        return torch.cat([self.attention_mask, self.pair_attention_mask], 0)


def _padded(rows: list[list[int]], length: int, fill: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, mask), each (rows, length), right-padded with ``fill``."""
    ids = torch.full((len(rows), length), fill, dtype=torch.long)
    mask = torch.zeros((len(rows), length), dtype=torch.long)
    for row, values in enumerate(rows):
        ids[row, : len(values)] = torch.tensor(values, dtype=torch.long)
        mask[row, : len(values)] = 1
    return ids, mask


def collate(split: EncodedSplit, indices: list[int], pad_token_id: int) -> Batch:
    length = max(split.length(i) for i in indices)
    ids, mask = _padded([split.input_ids[i] for i in indices], length, pad_token_id)
    types = None
    if split.token_type_ids is not None:
        types, _ = _padded([split.token_type_ids[i] for i in indices], length, 0)
    pair_ids = pair_mask = None
    if split.pair_ids is not None:
        pair_ids, pair_mask = _padded([split.pair_ids[i] for i in indices], length, pad_token_id)
    labels = torch.tensor([split.labels[i] for i in indices], dtype=torch.long)
    teacher = None if split.teacher_logits is None else split.teacher_logits[list(indices)]
    return Batch(ids, mask, types, labels, list(indices), teacher, pair_ids, pair_mask)


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
                for i in sorted(order[start : start + window], key=split.length)
            ]
        else:
            order.sort(key=split.length)
    chunks = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    if shuffle:
        rng.shuffle(chunks)
    for chunk in chunks:
        yield collate(split, chunk, pad_token_id)


def num_batches(split: EncodedSplit, batch_size: int) -> int:
    return (len(split) + batch_size - 1) // batch_size
