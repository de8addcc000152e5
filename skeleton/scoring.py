"""Neuron scorers: how much each FFN neuron matters to the task (the paper's quantification step).

A scorer is a small class with one verb, ``score``; ``SCORERS`` maps ``--scorer`` names to them.
All of them read the same per-neuron statistics, gathered with hooks in one forward and one
backward pass per batch (no per-neuron loops), so adding a scorer is one class and one entry.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from skeleton.architectures import ffn_layers
from skeleton.batching import Batch
from skeleton.modeling import PromptedClassifier

TARGETS = ("ffn", "ffn-out")


@dataclass
class NeuronScores:
    """Per-layer importance of FFN neurons.

    Attributes:
        scorer: the scorer's registry name.
        ffn: per layer, (intermediate,) scores of the FFN neurons (rows of the first FFN linear).
        ffn_out: per layer, (hidden,) scores of the second FFN linear's output dims, when scored.
        mean_activation: per layer, (intermediate,) signed mean activation over tokens and samples,
            used by bias compensation.
        mean_ffn_output: per layer, (hidden,) signed mean output of the second FFN linear.
        num_samples: how many instances the statistics average over.
    """

    scorer: str
    ffn: list[torch.Tensor]
    mean_activation: list[torch.Tensor]
    ffn_out: list[torch.Tensor] | None = None
    mean_ffn_output: list[torch.Tensor] | None = None
    num_samples: int = 0
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "scorer": self.scorer,
            "num_samples": self.num_samples,
            "ffn": [t.tolist() for t in self.ffn],
            "mean_activation": [t.tolist() for t in self.mean_activation],
            "ffn_out": None if self.ffn_out is None else [t.tolist() for t in self.ffn_out],
            "mean_ffn_output": None if self.mean_ffn_output is None else [t.tolist() for t in self.mean_ffn_output],
        }

    @classmethod
    def from_dict(cls, data: dict) -> NeuronScores:
        def tensors(key):
            value = data.get(key)
            return None if value is None else [torch.tensor(v, dtype=torch.float32) for v in value]

        return cls(
            scorer=data["scorer"],
            ffn=tensors("ffn"),
            mean_activation=tensors("mean_activation"),
            ffn_out=tensors("ffn_out"),
            mean_ffn_output=tensors("mean_ffn_output"),
            num_samples=int(data.get("num_samples", 0)),
        )

    def save(self, path: Path) -> None:
        """Save as safetensors (one tensor per layer and kind), scorer name in the metadata."""
        tensors = {}
        for kind in ("ffn", "mean_activation", "ffn_out", "mean_ffn_output"):
            for index, tensor in enumerate(getattr(self, kind) or []):
                tensors[f"{kind}.{index}"] = tensor.contiguous()
        save_file(tensors, str(path), metadata={"scorer": self.scorer, "num_samples": str(self.num_samples)})

    @classmethod
    def load(cls, path: Path) -> NeuronScores:
        from safetensors import safe_open

        with safe_open(str(path), "pt") as handle:
            metadata = handle.metadata() or {}
        tensors = load_file(str(path))

        def layers(kind):
            count = sum(1 for key in tensors if key.rsplit(".", 1)[0] == kind)
            return [tensors[f"{kind}.{i}"] for i in range(count)] or None

        return cls(
            scorer=metadata.get("scorer", "unknown"),
            ffn=layers("ffn"),
            mean_activation=layers("mean_activation"),
            ffn_out=layers("ffn_out"),
            mean_ffn_output=layers("mean_ffn_output"),
            num_samples=int(metadata.get("num_samples", 0)),
        )


@dataclass
class FFNStatistics:
    """Sums over instances of per-instance token means, per layer; divide by ``num_samples``.

    ``act_grad`` is |a * dz/da|, ``act`` |a|, ``grad`` |dz/da|, ``signed_act`` a, where a is an FFN
    neuron's activation (the second FFN linear's input) and z the gold-label logit.
    """

    act_grad: list[torch.Tensor]
    act: list[torch.Tensor]
    grad: list[torch.Tensor]
    signed_act: list[torch.Tensor]
    out_act_grad: list[torch.Tensor] | None
    signed_out: list[torch.Tensor] | None
    num_samples: int

    def mean(self, name: str) -> list[torch.Tensor] | None:
        values = getattr(self, name)
        return None if values is None else [v / max(1, self.num_samples) for v in values]


@contextmanager
def capture_ffn(backbone: nn.Module, with_outputs: bool) -> Iterator[tuple[list, list]]:
    """Record every layer's FFN activations (second FFN linear input, (batch, tokens, intermediate))
    and, with ``with_outputs``, its outputs ((batch, tokens, hidden)) during forward passes.
    """
    activations: list[torch.Tensor] = []
    outputs: list[torch.Tensor] = []
    handles = []
    for layer in ffn_layers(backbone):
        module = layer.ffn_out
        handles.append(module.register_forward_pre_hook(lambda _m, args: activations.append(args[0])))
        if with_outputs:
            handles.append(module.register_forward_hook(lambda _m, _args, out: outputs.append(out)))
    try:
        yield activations, outputs
    finally:
        for handle in handles:
            handle.remove()


def collect_ffn_statistics(
    classifier: PromptedClassifier,
    batches: Iterable[Batch],
    device: torch.device,
    with_gradients: bool = True,
    with_outputs: bool = False,
) -> FFNStatistics:
    """One forward (and backward, for gradients) pass per batch over ``batches``.

    Every statistic is averaged over the non-padding tokens of an instance, the soft prompt's tokens
    included, then summed over instances.
    """
    classifier.eval()
    classifier.to(device)
    sums: dict[str, list[torch.Tensor] | None] = {}
    count = 0
    for batch in batches:
        batch = batch.to(device)
        with torch.enable_grad(), capture_ffn(classifier.backbone, with_outputs) as (activations, outputs):
            logits = classifier(**batch.inputs())  # (batch, labels)
            tokens = activations[0].shape[1]
            num_prompt = tokens - batch.input_ids.shape[1]
            mask = torch.cat([batch.attention_mask.new_ones(len(batch.indices), num_prompt), batch.attention_mask], 1)
            weights = (mask.float() / mask.sum(1, keepdim=True).float()).unsqueeze(-1)  # (batch, tokens, 1)
            grads: tuple[torch.Tensor, ...] = ()
            out_grads: tuple[torch.Tensor, ...] = ()
            if with_gradients:
                gold = logits.gather(1, batch.labels.unsqueeze(1)).sum()
                # instances are independent, so the gradient of the summed gold logits holds each
                # instance's own gradient in its own rows
                all_grads = torch.autograd.grad(gold, list(activations) + list(outputs))
                grads, out_grads = all_grads[: len(activations)], all_grads[len(activations) :]
        with torch.no_grad():
            stats = {
                "act": [(a.abs() * weights).sum((0, 1)) for a in activations],
                "signed_act": [(a * weights).sum((0, 1)) for a in activations],
            }
            if with_gradients:
                stats["act_grad"] = [
                    ((a * g).abs() * weights).sum((0, 1)) for a, g in zip(activations, grads, strict=True)
                ]
                stats["grad"] = [(g.abs() * weights).sum((0, 1)) for g in grads]
                if with_outputs:
                    stats["out_act_grad"] = [
                        ((o * g).abs() * weights).sum((0, 1)) for o, g in zip(outputs, out_grads, strict=True)
                    ]
            if with_outputs:
                stats["signed_out"] = [(o * weights).sum((0, 1)) for o in outputs]
            for key, values in stats.items():
                values = [v.detach().float().cpu() for v in values]
                sums[key] = values if key not in sums else [s + v for s, v in zip(sums[key], values, strict=True)]
        count += len(batch.indices)
    if count == 0:
        raise ValueError("no instances to score")
    return FFNStatistics(
        act_grad=sums.get("act_grad"),
        act=sums["act"],
        grad=sums.get("grad"),
        signed_act=sums["signed_act"],
        out_act_grad=sums.get("out_act_grad"),
        signed_out=sums.get("signed_out"),
        num_samples=count,
    )


class Scorer(abc.ABC):
    """Scores every FFN neuron of a prompted classifier on a few labelled instances."""

    name: str = ""
    needs_gradients: bool = True

    def __init__(self, seed: int = 42):
        self.seed = seed

    def score(
        self,
        classifier: PromptedClassifier,
        batches: Iterable[Batch],
        device: torch.device,
        targets: tuple[str, ...] = ("ffn",),
    ) -> NeuronScores:
        """Returns per-layer neuron scores; higher means more important to the task."""
        with_outputs = "ffn-out" in targets
        stats = collect_ffn_statistics(classifier, batches, device, self.needs_gradients, with_outputs)
        ffn, ffn_out = self.from_statistics(stats)
        return NeuronScores(
            scorer=self.name,
            ffn=ffn,
            mean_activation=stats.mean("signed_act"),
            ffn_out=ffn_out if with_outputs else None,
            mean_ffn_output=stats.mean("signed_out"),
            num_samples=stats.num_samples,
        )

    @abc.abstractmethod
    def from_statistics(self, stats: FFNStatistics) -> tuple[list[torch.Tensor], list[torch.Tensor] | None]:
        """(per-layer FFN neuron scores, per-layer FFN output-dim scores or None)."""


class AttributionScorer(Scorer):
    """The paper's attribution: mean over tokens and instances of |activation x d(gold logit)/d(activation)|."""

    name = "attribution"

    def from_statistics(self, stats):
        return stats.mean("act_grad"), stats.mean("out_act_grad")


class ActivationScorer(Scorer):
    """Baseline: mean |activation| (paper section 5.3); output dims scored by |output|."""

    name = "activation"
    needs_gradients = False

    def from_statistics(self, stats):
        out = None if stats.signed_out is None else [v.abs() for v in stats.mean("signed_out")]
        return stats.mean("act"), out


class GradientScorer(Scorer):
    """Baseline: mean |d(gold logit)/d(activation)| (paper section 5.3)."""

    name = "gradient"

    def from_statistics(self, stats):
        return stats.mean("grad"), stats.mean("out_act_grad")


class RandomScorer(Scorer):
    """Baseline: uniform random scores, seeded. Still runs a forward pass for the mean activations
    that bias compensation needs.
    """

    name = "random"
    needs_gradients = False

    def from_statistics(self, stats):
        generator = torch.Generator().manual_seed(self.seed)
        ffn = [torch.rand(v.shape, generator=generator) for v in stats.act]
        out = None if stats.signed_out is None else [torch.rand(v.shape, generator=generator) for v in stats.signed_out]
        return ffn, out


SCORERS: dict[str, type[Scorer]] = {
    scorer.name: scorer for scorer in (AttributionScorer, ActivationScorer, GradientScorer, RandomScorer)
}


def get_scorer(name: str, seed: int = 42) -> Scorer:
    from skeleton.errors import SkeletonError

    if name not in SCORERS:
        raise SkeletonError(f"unknown scorer {name!r}; choose one of {', '.join(SCORERS)}")
    return SCORERS[name](seed=seed)
