"""Everything a stage needs loaded once: the task's encoded splits, the tokenizer, the backbone path."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from skeleton.batching import EncodedSplit, encode_split
from skeleton.data import DataConfig, TaskData, load_task_data
from skeleton.errors import SkeletonError
from skeleton.evaluation import evaluate
from skeleton.modeling import (
    build_classifier,
    load_backbone,
    load_config,
    load_tokenizer,
    resolve_head,
    resolve_model_path,
)
from skeleton.tasks import TaskSpec


@dataclass
class ModelConfig:
    """Which backbone, head and prompt.

    Attributes:
        model: a hub id, a local path, or ``default`` (the packaged all-MiniLM-L6-v2).
        head: ``cls`` (mean-pooled linear head, trained with the prompt), ``mlm`` (the paper's
            verbalizer at the mask token) or ``auto`` (mlm when the checkpoint has an MLM head).
        num_virtual_tokens: soft prompt length.
        prompt_init: ``text`` (from the task's instruction words) or ``random``.
        max_length: longest text in tokens (template included); longer texts are truncated.
        use_template: wrap texts in the task's instruction template (always for ``mlm``, which reads
            the template's mask token; for ``cls`` it measured 2 points better on SST-2).
    """

    model: str = "default"
    head: str = "auto"
    num_virtual_tokens: int = 20
    prompt_init: str = "text"
    max_length: int = 128
    use_template: bool = True

    def __post_init__(self) -> None:
        if self.num_virtual_tokens < 1:
            raise ValueError(f"num_virtual_tokens must be at least 1, got {self.num_virtual_tokens}")
        if self.prompt_init not in ("text", "random"):
            raise ValueError(f"prompt_init must be text or random, got {self.prompt_init!r}")
        if self.max_length < 8:
            raise ValueError(f"max_length must be at least 8, got {self.max_length}")

    def to_dict(self) -> dict:
        return asdict(self)


class Workspace:
    """The loaded task and model description shared by tune, compress and evaluation.

    Attributes:
        data: the raw splits; ``train``/``validation``/``test`` are their encoded forms.
        model_path: what ``from_pretrained`` loads; ``head`` is resolved (never ``auto``).
    """

    def __init__(self, data_config: DataConfig, model_config: ModelConfig):
        self.data_config = data_config
        self.model_config = model_config
        self.model_path = resolve_model_path(model_config.model)
        self.config = load_config(self.model_path)
        self.head = resolve_head(model_config.head, self.config)
        limit = getattr(self.config, "max_position_embeddings", 512) - model_config.num_virtual_tokens
        if getattr(self.config, "model_type", "") in ("roberta", "xlm-roberta"):
            limit -= 2  # these position tables reserve two rows for the padding offset
        if model_config.max_length > limit:
            raise SkeletonError(
                f"max_length {model_config.max_length} plus {model_config.num_virtual_tokens} prompt tokens "
                f"exceeds the model's {self.config.max_position_embeddings} positions; use at most {limit}"
            )
        self.tokenizer: PreTrainedTokenizerBase = load_tokenizer(self.model_path)
        self.data: TaskData = load_task_data(data_config)
        use_template = self.use_template

        def encode(split):
            return encode_split(split, self.tokenizer, self.spec, use_template, model_config.max_length)

        self.train: EncodedSplit = encode(self.data.train)
        self.validation: EncodedSplit = encode(self.data.validation)
        self.test: EncodedSplit = encode(self.data.test)

    @property
    def spec(self) -> TaskSpec:
        return self.data.spec

    @property
    def use_template(self) -> bool:
        if self.head == "mlm":
            return True
        return bool(self.model_config.use_template)

    @property
    def pad_token_id(self) -> int:
        return self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0

    @property
    def with_f1(self) -> bool:
        return "f1" in self.spec.metrics

    def load_backbone(self) -> nn.Module:
        return load_backbone(self.model_path, self.head)

    def new_classifier(self, backbone: nn.Module | None = None, seed: int = 42):
        """A fresh prompt and head on ``backbone`` (the pretrained one when ``None``)."""
        return build_classifier(
            backbone if backbone is not None else self.load_backbone(),
            self.tokenizer,
            self.spec,
            self.head,
            self.model_config.num_virtual_tokens,
            self.model_config.prompt_init,
            self.model_path,
            use_template=self.use_template,
            seed=seed,
        )

    def evaluate_splits(self, classifier, device: torch.device, batch_size: int = 128) -> dict[str, dict[str, float]]:
        """Validation and test metrics of ``classifier`` (accuracy; F1 too where the task reports it)."""
        return {
            name: evaluate(classifier, split, device, batch_size, self.pad_token_id, self.with_f1)
            for name, split in (("validation", self.validation), ("test", self.test))
        }

    def attribution_split(self, samples: int, seed: int) -> EncodedSplit:
        """``samples`` training instances drawn with ``seed`` (the paper uses 20)."""
        generator = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(self.train), generator=generator)[:samples].tolist()
        return self.train.select(order)
