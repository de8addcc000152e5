"""Output directories: written under a temporary name and renamed into place on success, versions
recorded, and :func:`load` that rebuilds a working slim model from a compressed directory alone.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_model, save_model
from transformers import PreTrainedTokenizerBase

from skeleton.architectures import from_config, pretrained_config, unexpected_load
from skeleton.batching import Batch, collate, encode_split
from skeleton.device import resolve_device
from skeleton.errors import SkeletonError
from skeleton.layout import CONFIG_FILE, HEAD_CONFIG_FILE, META_FILE, MODEL_FILE, PLAN_FILE
from skeleton.modeling import HeadConfig, PromptedClassifier, load_prompt_and_head, load_tokenizer
from skeleton.pruning import PruningPlan, apply_pruning
from skeleton.records import ModelMeta
from skeleton.tasks import TaskSpec, get_task


def library_versions() -> dict[str, str]:
    names = ("torch", "transformers", "peft", "datasets", "optimum", "onnxruntime", "onnx")
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    try:
        versions["skeleton"] = importlib.metadata.version("skeleton")
    except importlib.metadata.PackageNotFoundError:
        versions["skeleton"] = "source"
    return versions


def partial_path(final: Path) -> Path:
    return final.parent / f".{final.name}.partial"


@contextmanager
def atomic_directory(final: Path, overwrite: bool = False, resume: bool = False) -> Iterator[Path]:
    """Yield a hidden working directory beside ``final``; rename it to ``final`` on success.

    On failure or Ctrl-C the working directory stays (hidden, for ``--resume``), and ``final`` is
    untouched: there is never a half-written model under the name the user asked for.
    """
    final = Path(final)
    if final.exists() and not overwrite:
        raise SkeletonError(f"output directory {final} already exists; pass --overwrite to replace it")
    work = partial_path(final)
    if work.exists() and not resume:
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    yield work
    if final.exists():
        old = final.parent / f".{final.name}.old"
        if old.exists():
            shutil.rmtree(old)
        final.rename(old)
        work.rename(final)
        shutil.rmtree(old)
    else:
        work.rename(final)


def save_classifier(
    classifier: PromptedClassifier,
    tokenizer: PreTrainedTokenizerBase,
    directory: Path,
    plan: PruningPlan | None,
    meta: ModelMeta,
) -> None:
    """Save the (slim) backbone, its plan, the prompt and head, the tokenizer and ``skeleton.json``."""
    from skeleton.modeling import save_prompt_and_head

    directory.mkdir(parents=True, exist_ok=True)
    backbone = classifier.backbone
    backbone.config.save_pretrained(str(directory))
    save_model(backbone, str(directory / MODEL_FILE))  # handles tied (shared) weights
    if plan is not None:
        plan.save(directory / PLAN_FILE)
    save_prompt_and_head(classifier, directory)
    tokenizer.save_pretrained(str(directory))
    meta.save(directory / META_FILE)


@dataclass
class CompressedModel:
    """A slim model rebuilt from a directory, ready to classify texts.

    Attributes:
        classifier: the prompted classifier on the slim backbone (eval mode).
        tokenizer, spec: how texts become inputs and labels get names.
        plan: the pruning plan (``None`` for an unpruned prompt-tuned model).
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
        )
        return collate(encoded, list(range(len(texts))), self.tokenizer.pad_token_id or 0)

    def encode_arrays(self, texts: list) -> dict:
        """:meth:`encode` as numpy arrays, what a :class:`~skeleton.runtime.Runtime` runs."""
        return {k: v.cpu().numpy() for k, v in self.encode(texts).inputs().items() if v is not None}

    def logits(self, texts: list, batch_size: int = 64):
        """(texts, labels) logits as numpy; a text is a string, or a pair for pair tasks."""
        from skeleton.runtime import TorchRuntime, batched_logits

        return batched_logits(TorchRuntime(self), self.encode_arrays, texts, self.spec.num_labels, batch_size)

    def predict_proba(self, texts: list, batch_size: int = 64) -> torch.Tensor:
        """Label probabilities, (texts, labels)."""
        from skeleton.runtime import softmax

        return torch.from_numpy(softmax(self.logits(texts, batch_size))).float()

    def predict(self, texts: list, batch_size: int = 64) -> list[tuple[str, float]]:
        """(label name, probability) for each text."""
        from skeleton.runtime import label_scores

        return label_scores(self.logits(texts, batch_size), self.spec.label_names)


def load(directory: str | Path, device: str = "auto", attn_implementation: str | None = None) -> CompressedModel:
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
    spec = get_task(meta.task)
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
    return CompressedModel(classifier, tokenizer, spec, plan, meta, resolved)
