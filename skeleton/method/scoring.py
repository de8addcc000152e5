"""Neuron scorers: how much each FFN neuron matters to the task (the paper's quantification step).

A scorer is a small class with one verb, ``score``; ``REGISTRY`` maps ``--scorer`` names to them.
All of them read the same per-neuron statistics, gathered with hooks in one forward and one
backward pass per batch (no per-neuron loops), so adding a scorer is one class and one entry.

With the ``heads`` target the same pass also scores every attention head (by the heads' context
vectors, the input of the attention output projection) and every soft-prompt position (by the
embedding layer's output at that position). Attribution of a head is the sum over its context
dims of |context x gradient| per token: a context dim feeds the attention output projection as an
FFN neuron feeds the second FFN linear, so a head is scored as its dims would be as neurons, in the
same currency, and neurons and heads rank together (by score per unit of latency). The gradient
scorer ranks heads by the gradient of a head mask instead (Michel et al. 2019), which lets the
dims of a head cancel.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from skeleton.core.architectures import embedding_layer, ffn_layers
from skeleton.core.batching import Batch, EncodedSplit, iterate_batches, num_batches
from skeleton.core.config import CompressConfig, TrainConfig
from skeleton.core.errors import SkeletonError
from skeleton.core.evaluation import predict_logits
from skeleton.core.modeling import MeanPoolHead, PromptedClassifier, save_prompt_and_head
from skeleton.core.progress import SILENT, Reporter
from skeleton.core.scores_and_plans import NeuronScores
from skeleton.core.workspace import Workspace
from skeleton.method.lca import GRID, lca_scores
from skeleton.method.skill import Predictivity, across_prompts
from skeleton.method.tuning import train_on


@dataclass
class FFNStatistics:
    """Sums over instances of per-instance token means, per layer; divide by ``num_samples``.

    ``act_grad`` is |a * dz/da|, ``act`` |a|, ``grad`` |dz/da|, ``signed_act`` a, where a is an FFN
    neuron's activation (the second FFN linear's input) and z the gold-label logit. With heads:
    ``head_act_grad`` is sum_d |c_d * dz/dc_d| over a head's context dims c, per token (each dim
    scored as an FFN neuron is: both feed a projection back into the residual stream);
    ``head_mask_grad`` |sum over tokens and dims of c * dz/dc| per instance (the gradient of a head
    mask, Michel et al. 2019); ``head_norm`` the per-token norm of the head's context;
    ``signed_context`` c; ``prompt_act_grad`` (virtual tokens,) |sum_d e_d * dz/de_d| of the
    embedding layer's output e at each soft-prompt position.
    """

    act_grad: list[torch.Tensor]
    act: list[torch.Tensor]
    grad: list[torch.Tensor]
    signed_act: list[torch.Tensor]
    out_act_grad: list[torch.Tensor] | None
    signed_out: list[torch.Tensor] | None
    num_samples: int
    head_act_grad: list[torch.Tensor] | None = None
    head_mask_grad: list[torch.Tensor] | None = None
    head_norm: list[torch.Tensor] | None = None
    signed_context: list[torch.Tensor] | None = None
    prompt_act_grad: list[torch.Tensor] | None = None

    def mean(self, name: str) -> list[torch.Tensor] | None:
        values = getattr(self, name)
        return None if values is None else [v / max(1, self.num_samples) for v in values]


@dataclass
class _Captured:
    """Tensors recorded by the hooks during one forward pass, per layer."""

    activations: list[torch.Tensor] = field(default_factory=list)  # (batch, tokens, intermediate)
    outputs: list[torch.Tensor] = field(default_factory=list)  # (batch, tokens, hidden)
    contexts: list[torch.Tensor] = field(default_factory=list)  # (batch, tokens, heads x head size)
    embeddings: list[torch.Tensor] = field(default_factory=list)  # one (batch, tokens, hidden)


@contextmanager
def capture_ffn(backbone: nn.Module, with_outputs: bool, with_heads: bool = False) -> Iterator[_Captured]:
    """Record every layer's FFN activations (second FFN linear input) and, with ``with_outputs``,
    its outputs; with ``with_heads`` also the attention heads' context (the attention output
    projection's input) and the embedding layer's output, during forward passes.
    """
    captured = _Captured()
    handles = []

    def keep_input(into: list):
        return lambda _m, args: into.append(args[0])

    def keep_output(into: list):
        return lambda _m, _args, out: into.append(out if torch.is_tensor(out) else out[0])

    for layer in ffn_layers(backbone):
        handles.append(layer.ffn_out.register_forward_pre_hook(keep_input(captured.activations)))
        if with_outputs:
            handles.append(layer.ffn_out.register_forward_hook(keep_output(captured.outputs)))
        if with_heads:
            handles.append(layer.attention_out.register_forward_pre_hook(keep_input(captured.contexts)))

    def keep_embeddings(_m, _args, out):
        tensor = out if torch.is_tensor(out) else out[0]
        if torch.is_grad_enabled() and not tensor.requires_grad:
            # no trainable soft prompt before the layers (a plain classifier): the embeddings become a leaf,
            # so gradients reach every layer's activations
            tensor = tensor.detach().requires_grad_()
            out = tensor if torch.is_tensor(out) else (tensor, *out[1:])
        if with_heads:
            captured.embeddings.append(tensor)
        return out

    handles.append(embedding_layer(backbone).register_forward_hook(keep_embeddings))
    try:
        yield captured
    finally:
        for handle in handles:
            handle.remove()


def _head_statistics(contexts, grads, weights, head_size: int, num_prompt: int, embeddings, embedding_grads) -> dict:
    """Per-layer head sums and the prompt positions' sums of one batch (see :class:`FFNStatistics`)."""
    stats: dict[str, list[torch.Tensor]] = {"head_act_grad": [], "head_mask_grad": [], "head_norm": []}
    for context, grad in zip(contexts, grads, strict=True):
        batch, tokens, width = context.shape
        product = (context * grad).view(batch, tokens, width // head_size, head_size)  # (batch, tokens, heads, size)
        norms = context.view(batch, tokens, width // head_size, head_size).norm(dim=-1)  # (batch, tokens, heads)
        stats["head_act_grad"].append((product.abs().sum(-1) * weights).sum((0, 1)))
        stats["head_mask_grad"].append(product.sum((1, 3)).abs().sum(0))
        stats["head_norm"].append((norms * weights).sum((0, 1)))
    stats["signed_context"] = [(c * weights).sum((0, 1)) for c in contexts]
    prompt = (embeddings[0] * embedding_grads[0]).sum(-1)[:, :num_prompt]  # (batch, virtual tokens)
    stats["prompt_act_grad"] = [prompt.abs().sum(0)]
    return stats


def _gold_gradients(logits: torch.Tensor, labels: torch.Tensor, captured) -> dict[str, tuple[torch.Tensor, ...]]:
    """Gradients of the gold logits with respect to every captured tensor, by kind. Instances are
    independent, so the gradient of their summed gold logits holds each one's own in its own rows."""
    gold = logits.gather(1, labels.unsqueeze(1)).sum()
    kinds = {
        "activations": captured.activations,
        "outputs": captured.outputs,
        "contexts": captured.contexts,
        "embeddings": captured.embeddings,
    }
    flat = torch.autograd.grad(gold, [t for tensors in kinds.values() for t in tensors])
    grads, start = {}, 0
    for kind, tensors in kinds.items():
        grads[kind], start = flat[start : start + len(tensors)], start + len(tensors)
    return grads


def _batch_statistics(captured, grads: dict | None, weights: torch.Tensor, with_outputs: bool) -> dict[str, list]:
    """Per-layer sums over one batch of the token-averaged FFN statistics (``weights``: per token)."""
    activations, outputs = captured.activations, captured.outputs
    stats = {
        "act": [(a.abs() * weights).sum((0, 1)) for a in activations],
        "signed_act": [(a * weights).sum((0, 1)) for a in activations],
    }
    if grads is not None:
        pairs = zip(activations, grads["activations"], strict=True)
        stats["act_grad"] = [((a * g).abs() * weights).sum((0, 1)) for a, g in pairs]
        stats["grad"] = [(g.abs() * weights).sum((0, 1)) for g in grads["activations"]]
        if with_outputs:
            pairs = zip(outputs, grads["outputs"], strict=True)
            stats["out_act_grad"] = [((o * g).abs() * weights).sum((0, 1)) for o, g in pairs]
    if with_outputs:
        stats["signed_out"] = [(o * weights).sum((0, 1)) for o in outputs]
    return stats


def collect_ffn_statistics(
    classifier: PromptedClassifier,
    batches: Iterable[Batch],
    device: torch.device,
    with_gradients: bool = True,
    with_outputs: bool = False,
    with_heads: bool = False,
) -> FFNStatistics:
    """One forward (and backward, for gradients) pass per batch over ``batches``.

    Every statistic is averaged over the non-padding tokens of a sequence, the soft prompt's tokens
    included, then summed over sequences (``num_samples`` counts them: a bi-encoder's pair is two,
    so that means stay means per sequence). ``with_heads`` needs gradients.
    """
    if with_heads and not with_gradients:
        raise ValueError("head statistics need gradients")
    classifier.eval()
    classifier.to(device)
    head_size = ffn_layers(classifier.backbone)[0].head_size
    sums: dict[str, list[torch.Tensor] | None] = {}
    count = 0
    for batch in batches:
        batch = batch.to(device)
        with torch.enable_grad(), capture_ffn(classifier.backbone, with_outputs, with_heads) as captured:
            logits = classifier(**batch.inputs())  # (batch, labels)
            num_prompt = captured.activations[0].shape[1] - batch.input_ids.shape[1]
            text_mask = batch.sequence_mask  # (sequences, tokens): a bi-encoder runs both sentences of a pair
            mask = torch.cat([text_mask.new_ones(len(text_mask), num_prompt), text_mask], 1)
            weights = (mask.float() / mask.sum(1, keepdim=True).float()).unsqueeze(-1)  # (sequences, tokens, 1)
            grads = _gold_gradients(logits, batch.labels, captured) if with_gradients else None
        with torch.no_grad():
            stats = _batch_statistics(captured, grads, weights, with_outputs)
            if with_heads:
                stats.update(
                    _head_statistics(
                        captured.contexts,
                        grads["contexts"],
                        weights,
                        head_size,
                        num_prompt,
                        captured.embeddings,
                        grads["embeddings"],
                    )
                )
            for key, values in stats.items():
                values = [v.detach().float().cpu() for v in values]
                sums[key] = values if key not in sums else [s + v for s, v in zip(sums[key], values, strict=True)]
        count += len(text_mask)
    if count == 0:
        raise ValueError("no instances to score")
    return FFNStatistics(
        num_samples=count, **{k: sums.get(k) for k in FFNStatistics.__dataclass_fields__ if k != "num_samples"}
    )


@dataclass
class ScoringContext:
    """What the scorers that learn from the task's splits (skill, lca) read beyond a few batches.

    Attributes:
        workspace: the task's encoded splits (training for baselines and probes, validation to judge).
        train: how the skill scorer tunes its extra prompts (seeds ``seed + 1``, ``seed + 2``...).
        samples: training instances drawn for the skill baselines and the LCA probe.
        skill_prompts: prompts the skill predictivity is averaged over, the run's own first.
        cache: where extra prompts are saved and reused (``None``: not kept).
        reporter: progress bars and messages.
    """

    workspace: Workspace
    train: TrainConfig
    samples: int = 2000
    skill_prompts: int = 3
    cache: Path | None = None
    reporter: Reporter = SILENT

    def training_sample(self, seed: int) -> EncodedSplit:
        return self.workspace.attribution_split(min(self.samples, len(self.workspace.train)), seed)


def forward_activations(
    classifier: PromptedClassifier,
    split: EncodedSplit,
    device: torch.device,
    pad_token_id: int,
    batch_size: int = 64,
    bar=None,
) -> Iterator[tuple[torch.Tensor, Batch, int]]:
    """Per batch of ``split`` (no gradients): every layer's FFN activations joined along the neuron
    axis, (sequences, prompt + tokens, total neurons), the batch, and the number of prompt positions
    (a bi-encoder's sequences are its pairs' first sentences, then their second: :func:`per_instance`)."""
    classifier.eval()
    classifier.to(device)
    for batch in iterate_batches(split, batch_size, pad_token_id, shuffle=False):
        batch = batch.to(device)
        with torch.no_grad(), capture_ffn(classifier.backbone, with_outputs=False) as captured:
            classifier(**batch.inputs())
        activations = torch.cat(captured.activations, dim=-1).float()  # (batch, prompt + tokens, neurons)
        yield activations, batch, activations.shape[1] - batch.input_ids.shape[1]
        if bar is not None:
            bar.advance()


def per_instance(values: torch.Tensor, batch: Batch) -> torch.Tensor:
    """(sequences, ...) -> (instances, ...): a bi-encoder's two sentences joined as |first - second|,
    the comparison its head reads; one sequence an instance is returned as it is."""
    if batch.pair_input_ids is None:
        return values
    first, second = values.chunk(2, dim=0)  # each (instances, ...)
    return (first - second).abs()


def ffn_widths(classifier: PromptedClassifier) -> list[int]:
    """Each layer's number of FFN neurons (pruned layers included)."""
    return [layer.ffn_out.in_features for layer in ffn_layers(classifier.backbone)]


def split_by_layer(values: torch.Tensor, classifier: PromptedClassifier) -> list[torch.Tensor]:
    """(total neurons,) -> per layer (intermediate,), by each layer's FFN width."""
    return [v.float().cpu() for v in torch.split(values, ffn_widths(classifier))]


class Scorer(abc.ABC):
    """Scores every FFN neuron of a prompted classifier on a few labelled instances.

    Scorers that learn from the task's splits as well read them from a :class:`ScoringContext`.
    """

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
        context: ScoringContext | None = None,
    ) -> NeuronScores:
        """Returns per-layer neuron scores; higher means more important to the task."""
        with_outputs = "ffn-out" in targets
        with_heads = "heads" in targets
        gradients = self.needs_gradients or with_heads  # prompt positions are always scored by attribution
        stats = collect_ffn_statistics(classifier, batches, device, gradients, with_outputs, with_heads)
        ffn, ffn_out = self.from_statistics(stats)
        prompt = stats.mean("prompt_act_grad")
        return NeuronScores(
            scorer=self.name,
            ffn=ffn,
            mean_activation=stats.mean("signed_act"),
            ffn_out=ffn_out if with_outputs else None,
            mean_ffn_output=stats.mean("signed_out"),
            num_samples=stats.num_samples,
            heads=self.head_scores(stats) if with_heads else None,
            mean_head_context=stats.mean("signed_context"),
            prompt=None if prompt is None else prompt[0],
        )

    @abc.abstractmethod
    def from_statistics(self, stats: FFNStatistics) -> tuple[list[torch.Tensor], list[torch.Tensor] | None]:
        """(per-layer FFN neuron scores, per-layer FFN output-dim scores or None)."""

    def head_scores(self, stats: FFNStatistics) -> list[torch.Tensor]:
        """Per-layer (heads,) scores; by default the per-token attribution of each head."""
        return stats.mean("head_act_grad")


class AttributionScorer(Scorer):
    """The paper's attribution: mean over tokens and instances of |activation x d(gold logit)/d(activation)|."""

    name = "attribution"

    def from_statistics(self, stats):
        return stats.mean("act_grad"), stats.mean("out_act_grad")


class ActivationScorer(Scorer):
    """Baseline: mean |activation| (paper section 5.3); output dims scored by |output|, heads by the
    norm of their context."""

    name = "activation"
    needs_gradients = False

    def from_statistics(self, stats):
        out = None if stats.signed_out is None else [v.abs() for v in stats.mean("signed_out")]
        return stats.mean("act"), out

    def head_scores(self, stats):
        return stats.mean("head_norm")


class GradientScorer(Scorer):
    """Baseline: mean |d(gold logit)/d(activation)| (paper section 5.3); heads by the gradient of a
    head mask (Michel et al. 2019: |sum over tokens of context x gradient| per instance)."""

    name = "gradient"

    def from_statistics(self, stats):
        return stats.mean("grad"), stats.mean("out_act_grad")

    def head_scores(self, stats):
        return stats.mean("head_mask_grad")


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

    def head_scores(self, stats):
        generator = torch.Generator().manual_seed(self.seed + 1)
        return [torch.rand(v.shape, generator=generator) for v in stats.head_act_grad]


class TaskDataScorer(Scorer):
    """A scorer that ranks FFN neurons from their activations over the task's splits.

    The few-batch pass still runs, for the mean activations bias compensation folds into the FFN
    bias (and, when heads are a target, the heads' and prompt positions' attribution scores).
    """

    needs_gradients = False

    def score(self, classifier, batches, device, targets=("ffn",), context=None) -> NeuronScores:
        if context is None:
            raise SkeletonError(f"the {self.name} scorer needs the task's training and validation splits")
        if "ffn-out" in targets:
            raise SkeletonError(f"the {self.name} scorer ranks FFN neurons only; it cannot score ffn-out")
        scores = super().score(classifier, batches, device, targets)
        started = time.perf_counter()
        neurons, details = self.neuron_scores(classifier, device, context)
        scores.ffn = split_by_layer(neurons, classifier)
        scores.extra = {**details, "seconds": time.perf_counter() - started}
        return scores

    def from_statistics(self, stats):
        return stats.mean("act"), None  # replaced by neuron_scores

    @abc.abstractmethod
    def neuron_scores(self, classifier, device, context: ScoringContext) -> tuple[torch.Tensor, dict]:
        """((total neurons,) scores, details for the report)."""


class SkillScorer(TaskDataScorer):
    """Skill-neuron predictivity (:mod:`skeleton.method.skill`): at each soft-prompt position, how well
    "activation above its training mean" predicts the label on validation, max(acc, 1 - acc), the
    maximum over positions, averaged over ``skill_prompts`` prompts (the run's own and prompts tuned
    from other seeds)."""

    name = "skill"

    def neuron_scores(self, classifier, device, context):
        workspace = context.workspace
        per_prompt = [self._predictivity(classifier, device, context, 1)]
        for index in range(1, context.skill_prompts):
            other = self._extra_prompt(classifier, device, context, index)
            per_prompt.append(self._predictivity(other, device, context, index + 1))
            del other
        scores = across_prompts(per_prompt)
        agreement = [float(np.corrcoef(per_prompt[0].numpy(), p.numpy())[0, 1]) for p in per_prompt[1:]]
        return scores, {
            "prompts": len(per_prompt),
            "training_instances": min(context.samples, len(workspace.train)),
            "validation_instances": len(workspace.validation),
            "max_predictivity": float(scores.max()),
            "correlation_with_first_prompt": agreement,
        }

    def _predictivity(self, classifier, device, context: ScoringContext, number: int) -> torch.Tensor:
        workspace = context.workspace
        train, validation = context.training_sample(self.seed), workspace.validation
        accumulator = Predictivity(workspace.spec.num_labels)
        total = num_batches(train, 64) + num_batches(validation, 64)
        with context.reporter.bar(f"skill predictivity, prompt {number}/{context.skill_prompts}", total) as bar:
            for activations, batch, prompt in forward_activations(
                classifier, train, device, workspace.pad_token_id, bar=bar
            ):
                # (batch, prompt positions, neurons)
                accumulator.add_baseline(per_instance(activations[:, :prompt], batch).cpu())
            for activations, batch, prompt in forward_activations(
                classifier, validation, device, workspace.pad_token_id, bar=bar
            ):
                accumulator.add_validation(per_instance(activations[:, :prompt], batch).cpu(), batch.labels.cpu())
        return accumulator.scores()

    def _extra_prompt(self, classifier, device, context: ScoringContext, index: int) -> PromptedClassifier:
        """The prompt tuned from seed ``seed + index`` on the same backbone (reused from the cache)."""
        workspace = context.workspace
        train = replace(context.train, seed=context.train.seed + index)
        folder = None
        if context.cache is not None:
            key = f"steps{train.steps}" if train.steps is not None else f"epochs{train.epochs:g}"
            folder = context.cache / f"skill-prompt-seed{train.seed}-{key}"
            if (folder / "prompt").is_dir():
                context.reporter.message(f"skill: reusing the prompt tuned from seed {train.seed} in {folder}")
                return workspace.load_classifier(folder).to(device)
        other = workspace.new_classifier(seed=train.seed).to(device)
        description = f"skill: tuning prompt {index + 1}/{context.skill_prompts} (seed {train.seed})"
        train_on(workspace, other, train, device, context.reporter, description)
        if folder is not None:
            save_prompt_and_head(other, folder)
        return other


class LCAScorer(TaskDataScorer):
    """Linguistic Correlation Analysis (:mod:`skeleton.method.lca`): an elastic-net probe on the neurons'
    activations at the position the head reads (the mask token for an MLM head; the mean over the
    text tokens for the mean-pooling head, which reads no single position), lambdas from the paper's
    grid on validation, neurons ranked by weight mass."""

    name = "lca"

    def neuron_scores(self, classifier, device, context):
        workspace = context.workspace
        train, validation = context.training_sample(self.seed), workspace.validation
        total = num_batches(train, 64) + num_batches(validation, 64)
        with context.reporter.bar("lca: activations at the classification position", total) as bar:
            features = [
                self.features(classifier, split, device, workspace.pad_token_id, bar) for split in (train, validation)
            ]
        pairs = (features[0], np.asarray(train.labels)), (features[1], np.asarray(validation.labels))
        with context.reporter.bar("lca: elastic-net probes over the lambda grid", len(GRID) ** 2 + 1) as bar:
            scores, best = lca_scores(*pairs, seed=self.seed, advance=bar.advance)
        details = {"l1": best.l1, "l2": best.l2, "probe_validation_accuracy": 100 * best.accuracy}
        details["training_instances"] = len(train)
        return torch.from_numpy(scores).float(), details

    @staticmethod
    def features(classifier, split: EncodedSplit, device, pad_token_id: int, bar=None) -> np.ndarray:
        """(rows, total neurons) activations at the classification position, in the split's order."""
        rows = np.zeros((len(split), sum(ffn_widths(classifier))), np.float32)
        for activations, batch, prompt in forward_activations(classifier, split, device, pad_token_id, bar=bar):
            text = activations[:, prompt:]  # (sequences, tokens, neurons)
            if classifier.head is not None:  # the mean-pooling heads: mean over text tokens
                pooled = per_instance(MeanPoolHead.pool(text, batch.sequence_mask), batch)
            else:  # the MLM head reads the mask token
                pooled = text[torch.arange(len(text)), classifier.mask_positions(batch.input_ids)]
            rows[batch.indices] = pooled.cpu().numpy()
        return rows


REGISTRY: dict[str, type[Scorer]] = {
    scorer.name: scorer
    for scorer in (AttributionScorer, ActivationScorer, GradientScorer, RandomScorer, SkillScorer, LCAScorer)
}


def get_scorer(name: str, seed: int = 42) -> Scorer:
    if name not in REGISTRY:
        raise SkeletonError(f"unknown scorer {name!r}; choose one of {', '.join(REGISTRY)}")
    return REGISTRY[name](seed=seed)


def score_neurons(
    name: str,
    classifier: PromptedClassifier,
    workspace: Workspace,
    config: CompressConfig,
    device,
    context: ScoringContext,
    targets: tuple[str, ...] = ("ffn",),
    seed: int | None = None,
) -> NeuronScores:
    """Step 2's pass with scorer ``name``: the run's ``attribution_samples`` training instances, drawn
    with its seed (which also seeds the scorer unless ``seed`` is given)."""
    samples = workspace.attribution_split(config.attribution_samples, config.tune.seed)
    if config.teacher:  # a given classifier is scored against its own answers, which it was trained to give
        answers = predict_logits(classifier, samples, device, 64, workspace.pad_token_id).argmax(-1).tolist()
        samples = replace(samples, labels=answers)
    batches = iterate_batches(samples, 8, workspace.pad_token_id, shuffle=False)
    scorer = get_scorer(name, config.tune.seed if seed is None else seed)
    return scorer.score(classifier, batches, device, targets, context)


def scoring_context(workspace: Workspace, config: CompressConfig, cache: Path | None, reporter) -> ScoringContext:
    """What the skill and LCA scorers read: the splits, and how extra skill prompts are tuned (as step 1)."""
    return ScoringContext(workspace, config.tune, config.scorer_samples, config.skill_prompts, cache, reporter)
