"""A Skeleton model directory read back: :func:`load` rebuilds a working Skeleton model from the directory
alone, and :class:`TorchRuntime` runs it as one of the runtimes (in fp32 or under autocast).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_model
from transformers import PreTrainedTokenizerBase

from skeleton.core.architectures import from_config, pretrained_config, unexpected_load
from skeleton.core.batching import Batch, collate, encode_split
from skeleton.core.config import TORCH_PRECISIONS
from skeleton.core.device import resolve_device
from skeleton.core.errors import SkeletonError
from skeleton.core.file_names import CONFIG_FILE, HEAD_CONFIG_FILE, META_FILE, MODEL_FILE, MODEL_INPUTS, PLAN_FILE
from skeleton.core.logits import batched_logits, label_scores, softmax
from skeleton.core.modeling import HeadConfig, PromptedClassifier, load_prompt_and_head, load_tokenizer
from skeleton.core.reports import ModelMeta
from skeleton.core.scores_and_plans import PruningPlan
from skeleton.core.tasks import TaskSpec, saved_task
from skeleton.deploy.runtimes import Runtime
from skeleton.method.pruning import apply_pruning


@dataclass
class LoadedModel:
    """A model directory (a Skeleton model, or the teacher in its ``prompt_tuned/``) rebuilt, ready to
    classify texts.

    Attributes:
        classifier: the prompted classifier on the slim backbone (eval mode).
        tokenizer, spec: how texts become inputs and labels get names.
        plan: the pruning plan (``None`` for a prompt-tuned model).
        meta: ``skeleton.json`` (task, model and head settings).
    """

    classifier: PromptedClassifier
    tokenizer: PreTrainedTokenizerBase
    spec: TaskSpec
    plan: PruningPlan | None
    meta: ModelMeta
    device: torch.device

    @property
    def max_length(self) -> int:
        return int(self.meta.max_length)

    def encode(self, texts: list) -> Batch:
        """A padded batch of ``texts`` encoded exactly as in training (template filled as text)."""
        import datasets

        rows = {f: [] for f in self.spec.text_fields}
        for text in texts:
            parts = (text,) if isinstance(text, str) else tuple(text)
            if len(parts) != len(self.spec.text_fields):
                raise SkeletonError(
                    f"task {self.spec.name} takes {len(self.spec.text_fields)} text(s) per input, got {len(parts)}"
                )
            for f, part in zip(self.spec.text_fields, parts, strict=True):
                rows[f].append(part)
        rows["label"] = [0] * len(texts)
        encoded = encode_split(
            datasets.Dataset.from_dict(rows),
            self.tokenizer,
            self.spec,
            self.classifier.head_config.use_template,
            self.max_length,
            separate_pairs=self.classifier.head_config.separate_pairs,
        )
        return collate(encoded, list(range(len(texts))), self.tokenizer.pad_token_id or 0)

    def encode_arrays(self, texts: list) -> dict:
        """:meth:`encode` as numpy arrays, what a :class:`~skeleton.deploy.runtimes.Runtime` runs."""
        return {k: v.cpu().numpy() for k, v in self.encode(texts).inputs().items() if v is not None}

    def logits(self, texts: list, batch_size: int = 64):
        """(texts, labels) logits as numpy; a text is a string, or a pair for pair tasks."""
        return batched_logits(TorchRuntime(self), self.encode_arrays, texts, self.spec.num_labels, batch_size)

    def predict_proba(self, texts: list, batch_size: int = 64) -> torch.Tensor:
        """Label probabilities, (texts, labels)."""
        return torch.from_numpy(softmax(self.logits(texts, batch_size))).float()

    def predict(self, texts: list, batch_size: int = 64) -> list[tuple[str, float]]:
        """(label name, probability) for each text."""
        return label_scores(self.logits(texts, batch_size), self.spec.label_names)


def load(directory: str | Path, device: str = "auto", attn_implementation: str | None = None) -> LoadedModel:
    """Rebuild a working model from a directory written by ``skeleton compress`` or ``skeleton tune``.

    The slim backbone is rebuilt from ``config.json`` and ``pruning_plan.json`` (per-layer FFN
    widths stock ``from_pretrained`` cannot express), then its weights are loaded strictly.

    Args:
        directory: a directory written by ``skeleton compress`` or ``skeleton tune``.
        device: ``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda``...
        attn_implementation: e.g. ``eager`` for an ONNX export that onnxruntime can fuse.
    """
    directory = Path(directory)
    for needed in (directory / CONFIG_FILE, directory / META_FILE, directory / HEAD_CONFIG_FILE):
        if not needed.is_file():
            raise SkeletonError(f"{directory} is not a Skeleton model directory: {needed.name} is missing")
    meta = ModelMeta.load(directory / META_FILE)
    spec = saved_task(meta.task, meta.task_spec)
    head = HeadConfig.from_dict(json.loads((directory / HEAD_CONFIG_FILE).read_text())).kind
    config = pretrained_config(str(directory))
    extra = {"attn_implementation": attn_implementation} if attn_implementation else {}
    backbone = from_config(config, head, **extra)
    plan = None
    if (directory / PLAN_FILE).is_file():
        plan = PruningPlan.load(directory / PLAN_FILE)
        apply_pruning(backbone, plan)  # shapes only; the weights come next
    if (directory / MODEL_FILE).is_file():
        missing, unexpected = load_model(backbone, str(directory / MODEL_FILE), strict=False)
        if unexpected_load(config, missing, unexpected):
            raise SkeletonError(f"{directory / MODEL_FILE} does not match its config and pruning plan")
    else:
        raise SkeletonError(f"{directory} is not a Skeleton model directory: {MODEL_FILE} is missing")
    tokenizer = load_tokenizer(str(directory))
    classifier = load_prompt_and_head(backbone, tokenizer, spec, directory)
    resolved = resolve_device(device)
    classifier.to(resolved).eval()
    return LoadedModel(classifier, tokenizer, spec, plan, meta, resolved)


class TorchRuntime(Runtime):
    """The PyTorch model rebuilt by :func:`skeleton.load` (prompt prepended at run time), in fp32 or
    under autocast: ``bf16`` (CPUs with native bf16) or ``fp16`` (CUDA)."""

    name = "torch"
    PRECISIONS = TORCH_PRECISIONS

    def __init__(self, directory, device: str = "auto", precision: str = "fp32"):
        """``directory``: a model directory, or a model :func:`skeleton.load` already rebuilt."""
        if precision not in self.PRECISIONS:
            raise SkeletonError(f"unknown precision {precision!r}; choose one of {', '.join(self.PRECISIONS)}")
        self.model = directory if isinstance(directory, LoadedModel) else load(directory, device=device)
        if precision == "fp16" and self.model.device.type != "cuda":
            raise SkeletonError("fp16 autocast runs on CUDA; on a CPU use bf16 (or fp32)")
        self.precision = precision

    def run(self, encoded):
        model = self.model
        inputs = {
            k: torch.as_tensor(v, dtype=torch.long, device=model.device)
            for k, v in encoded.items()
            if k in MODEL_INPUTS
        }
        dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[self.precision]
        with torch.inference_mode(), torch.autocast(model.device.type, dtype=dtype, enabled=dtype is not None):
            return model.classifier(**inputs).float().cpu().numpy()


CompressedModel = LoadedModel  # the name before it held teachers too; kept for existing scripts
