"""A tuned model saved as a plain transformers checkpoint: the unpruned model that step 1 fine-tuned
(``--tune full`` or ``lora``) is its family's ``*ForSequenceClassification`` with the same weights, so a
user keeps the accurate model too and loads it with transformers' Auto classes or a
``pipeline``. The saved model is checked against the Skeleton model directory it came from.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from skeleton.core.architectures import sequence_classifier
from skeleton.core.errors import SkeletonError
from skeleton.core.modeling import SEQUENCE
from skeleton.core.outputs import atomic_directory
from skeleton.deploy.loading import LoadedModel, load

PARITY_TOLERANCE = 1e-4  # largest logit difference accepted between the checkpoint and the model it came from


def transformers_classifier(model: LoadedModel) -> torch.nn.Module:
    """The ``*ForSequenceClassification`` equal to ``model``; refused in one line when ``model`` is not a
    plain classifier (pruned, a soft prompt, a template, or a head transformers has no class for)."""
    classifier = model.classifier
    problems = []
    if classifier.head_config.kind != SEQUENCE:
        problems.append(f"its head is '{classifier.head_config.kind}', not the family's sequence head")
    if classifier.num_virtual_tokens:
        problems.append(f"it reads a {classifier.num_virtual_tokens}-token soft prompt")
    if classifier.head_config.use_template:
        problems.append("it wraps texts in a template")
    if model.plan is not None:
        problems.append("it is pruned (per-layer widths a transformers config cannot hold)")
    if problems:
        raise SkeletonError(
            "not a plain transformers classifier: "
            + "; ".join(problems)
            + " (tune with --tune full or lora and --head sequence)"
        )
    config = copy.deepcopy(classifier.backbone.config)
    config.id2label = dict(enumerate(model.spec.label_names))
    config.label2id = {name: index for index, name in enumerate(model.spec.label_names)}
    config.num_labels = model.spec.num_labels
    head = {part: getattr(classifier.head, part).state_dict() for part in ("dense", "classifier")}
    return sequence_classifier(config, classifier.backbone, head).to(model.device)


def save_transformers(directory: str | Path, output: str | Path, overwrite: bool = False) -> Path:
    """Save the model in ``directory`` (a ``skeleton tune`` output, or a compress run's ``prompt_tuned/``)
    as a transformers checkpoint with its tokenizer in ``output``, after checking that it gives the
    model's logits."""
    model = load(directory, device="cpu")
    hf_model = transformers_classifier(model)
    texts = [("a short text", "a second one")] if model.spec.is_pair else ["a short text", "and another, longer text"]
    encoded = model.encode(texts)
    with torch.no_grad():
        expected = model.classifier(**encoded.inputs())
        inputs = {"input_ids": encoded.input_ids, "attention_mask": encoded.attention_mask}
        if encoded.token_type_ids is not None and "token_type_ids" in model.tokenizer.model_input_names:
            inputs["token_type_ids"] = encoded.token_type_ids
        got = hf_model(**inputs).logits
    difference = float((got - expected).abs().max())
    if difference > PARITY_TOLERANCE:
        raise SkeletonError(f"the transformers checkpoint differs from {directory} by {difference:.2e}")
    with atomic_directory(Path(output), overwrite=overwrite) as work:
        hf_model.save_pretrained(str(work))
        model.tokenizer.save_pretrained(str(work))
    return Path(output)
