"""Structured pruning: the paper's task neuron localization (sections 4.2, 4.3 and 4.5), and
attention heads beyond it.

Removed neurons and heads are cut out of the weight matrices for real (smaller ``nn.Linear``
layers), so the Skeleton model does less arithmetic. ``PruningPlan`` records what each layer keeps and
is saved beside the weights, so a Skeleton model with per-layer FFN widths and head counts can always
be rebuilt.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

import numpy as np
import torch
from torch import nn

from skeleton.core.architectures import ffn_layers, keep_layers
from skeleton.core.scores_and_plans import NeuronScores, PruningPlan


class PaddedLinear(nn.Module):
    """A second FFN linear whose output dims were pruned: it computes only the kept dims and writes
    them into a hidden-size vector of ``fill`` values (zeros in the paper; the removed dims' mean
    output with bias compensation) before the residual add.
    """

    def __init__(self, in_features: int, out_indices: torch.Tensor, hidden_size: int, bias: bool = True):
        super().__init__()
        self.linear = nn.Linear(in_features, len(out_indices), bias=bias)
        self.register_buffer("out_indices", out_indices.clone().long())
        self.register_buffer("fill", torch.zeros(hidden_size))
        self.hidden_size = hidden_size

    @property
    def in_features(self) -> int:
        return self.linear.in_features

    @property
    def weight(self) -> torch.Tensor:
        return self.linear.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kept = self.linear(x)  # (batch, tokens, kept outputs)
        full = self.fill.to(kept.dtype).expand(*kept.shape[:-1], self.hidden_size)  # (batch, tokens, hidden)
        return full.index_copy(-1, self.out_indices, kept)


def _layer_counts(scores: list[torch.Tensor], kept_ratio: float, round_to: int) -> list[int]:
    """How many units each layer keeps under one global ranking, rounded to multiples of ``round_to``."""
    flat = torch.cat(scores)
    total_keep = int(round(kept_ratio * flat.numel()))
    if total_keep >= flat.numel():
        return [len(s) for s in scores]
    # one global ranking: the first `total_keep` units of the sorted concatenation survive
    order = torch.argsort(flat, descending=True, stable=True)
    survivors = torch.zeros(flat.numel(), dtype=torch.bool)
    survivors[order[:total_keep]] = True
    counts = [int(part.sum()) for part in survivors.split([len(s) for s in scores])]
    return _round_widths(counts, [len(s) for s in scores], max(1, round_to))


def _round_widths(counts: list[int], full: list[int], step: int) -> list[int]:
    """Each layer's count rounded to a multiple of ``step``, at least ``step``, at most its full width."""
    return [min(f, max(step, int(round(c / step)) * step)) for c, f in zip(counts, full, strict=True)]


def _top_indices(scores: torch.Tensor, count: int) -> list[int]:
    top = torch.argsort(scores, descending=True, stable=True)[:count]
    return sorted(int(i) for i in top)


def make_plan(
    scores: NeuronScores,
    kept_ratio: float,
    hidden_size: int,
    model_type: str,
    round_to: int = 1,
    prune_outputs: bool = False,
    bias_compensation: bool = False,
) -> PruningPlan:
    """Rank every FFN neuron of every layer together and keep the top ``kept_ratio`` of them.

    With ``prune_outputs`` the second FFN linear's output dims are ranked (separately, as they are
    a different kind of unit) and the same fraction of them kept.
    """
    if not 0.0 < kept_ratio <= 1.0:
        raise ValueError(f"kept_ratio must lie in (0, 1], got {kept_ratio}")
    counts = _layer_counts(scores.ffn, kept_ratio, round_to)
    keep = [_top_indices(s, c) for s, c in zip(scores.ffn, counts, strict=True)]
    out_keep = None
    if prune_outputs:
        if scores.ffn_out is None:
            raise ValueError("prune_outputs needs scores of the FFN output dims (targets ffn-out)")
        out_counts = _layer_counts(scores.ffn_out, kept_ratio, round_to)
        out_keep = [_top_indices(s, c) for s, c in zip(scores.ffn_out, out_counts, strict=True)]
    return PruningPlan(
        model_type=model_type,
        intermediate_sizes=[len(s) for s in scores.ffn],
        keep_indices=keep,
        hidden_size=hidden_size,
        out_keep_indices=out_keep,
        kept_ratio=kept_ratio,
        round_to=round_to,
        scorer=scores.scorer,
        bias_compensation=bias_compensation,
    )


class Costs(Protocol):
    """What :func:`make_cost_plan` needs of a cost model (:class:`skeleton.measure.latency.CostModel`)."""

    num_heads: list[int]  # per layer, before pruning

    def fraction(self, heads: list[int], widths: list[int]) -> float: ...

    def layer_shares(self) -> list[float]: ...

    def unit_costs(self) -> tuple[float, float]: ...

    def speedups(self, heads: list[int], widths: list[int]) -> dict[str, float]: ...


def make_cost_plan(
    scores: NeuronScores,
    target_latency_fraction: float,
    costs: Costs,
    hidden_size: int,
    model_type: str,
    round_to: int = 1,
    prune_heads: bool = True,
    bias_compensation: bool = False,
    head_weight: float = 1.0,
    prune_layers: bool = False,
) -> PruningPlan:
    """Remove the units worth least per unit of latency until the Skeleton model's predicted latency is
    at most ``target_latency_fraction`` of the prompt-tuned model's.

    Every FFN neuron, (with ``prune_heads``) every attention head and (with ``prune_layers``) every
    whole layer is ranked together by score / cost, its cost being its measured share of the
    prompt-tuned model's latency (from the latency table), so a head that costs as much as 90 neurons
    must be worth as much as 90 of them to stay. A whole layer is scored by the sum of its units'
    scores and costs its whole share, the per-layer overhead (LayerNorms, residuals, softmax) too:
    it goes when its units are weak throughout. Units are removed from the bottom of the ranking;
    a layer that stays keeps at least one head and ``round_to`` neurons, widths are rounded to
    multiples of ``round_to``, and at least one layer stays. The smallest number of removals that
    reaches the target is found by bisection (the predicted latency falls as units go); if
    removing everything allowed cannot reach it, the plan removes everything allowed and its
    ``latency_fraction`` says what it reaches.

    ``head_weight`` is the exchange rate between head and neuron scores: first-order attribution
    underrates what removing a whole head costs, so the compress run calibrates it on validation.
    """
    if not 0.0 < target_latency_fraction <= 1.0:
        raise ValueError(f"target_latency_fraction must lie in (0, 1], got {target_latency_fraction}")
    if prune_heads and scores.heads is None:
        raise ValueError("pruning heads needs head scores (targets heads)")
    ranking = _CostRanking(scores, costs, prune_heads, head_weight, prune_layers, max(1, round_to))
    removed = _fewest_removals(ranking.fraction, len(ranking.order), target_latency_fraction)
    widths, heads, alive = ranking.kept(removed)
    keep = [_top_indices(s, c) for s, c in zip(scores.ffn, widths, strict=True)]
    head_keep = [_top_indices(s, c) for s, c in zip(scores.heads, heads, strict=True)] if prune_heads else None
    return PruningPlan(
        model_type=model_type,
        intermediate_sizes=ranking.widths_full,
        keep_indices=keep,
        hidden_size=hidden_size,
        round_to=round_to,
        scorer=scores.scorer,
        bias_compensation=bias_compensation,
        num_heads=ranking.heads_full if prune_heads else None,
        head_keep_indices=head_keep,
        latency_fraction=ranking.fraction(removed),
        kept_layers=None if all(alive) else [i for i, a in enumerate(alive) if a],
    )


def _fewest_removals(fraction, count: int, target: float) -> int:
    """The fewest removals from the bottom of the ranking whose predicted latency ``fraction(n)`` is at
    most ``target`` (bisection: the latency falls as units go); all ``count`` when none reaches it."""
    low, high = 0, count
    if fraction(high) > target:
        return high  # the target cannot be reached: remove everything allowed
    while low < high:
        middle = (low + high) // 2
        if fraction(middle) <= target:
            high = middle
        else:
            low = middle + 1
    return low


class _CostRanking:
    """Neurons, heads and whole layers ranked together by score per unit of measured latency."""

    def __init__(self, scores: NeuronScores, costs: Costs, prune_heads: bool, head_weight, prune_layers, round_to):
        head_cost, neuron_cost = costs.unit_costs()
        self.costs, self.prune_heads, self.prune_layers, self.round_to = costs, prune_heads, prune_layers, round_to
        self.layers = layers = len(scores.ffn)
        self.widths_full = [len(s) for s in scores.ffn]
        self.heads_full = [len(s) for s in scores.heads] if prune_heads else list(costs.num_heads)
        groups = [s / neuron_cost for s in scores.ffn]  # kinds 0..L-1: neurons of layer l
        if prune_heads:
            groups += [head_weight * s / head_cost for s in scores.heads]  # kinds L..2L-1: heads
        self.layer_values = []
        if prune_layers:
            heads = [0.0] * layers if scores.heads is None else [head_weight * float(h.sum()) for h in scores.heads]
            shares = costs.layer_shares()
            self.layer_values = [(float(scores.ffn[i].sum()) + heads[i]) / shares[i] for i in range(layers)]
            groups += [torch.tensor([v]) for v in self.layer_values]  # one unit per layer, kinds after the others
        self.kinds = np.concatenate([np.full(len(v), i) for i, v in enumerate(groups)])
        self.order = np.argsort(torch.cat(groups).numpy(), kind="stable")  # least worth first
        self.totals = np.asarray([len(v) for v in groups])

    def kept(self, removed: int) -> tuple[list[int], list[int], list[bool]]:
        """Per layer: FFN width, head count and whether it stays, after ``removed`` removals."""
        layers = self.layers
        counts = self.totals - np.bincount(self.kinds[self.order[:removed]], minlength=len(self.totals))
        widths = _round_widths(counts[:layers].tolist(), self.widths_full, self.round_to)
        heads = np.maximum(counts[layers : 2 * layers], 1).tolist() if self.prune_heads else list(self.heads_full)
        alive = (counts[-layers:] > 0).tolist() if self.prune_layers else [True] * layers
        if not any(alive):
            alive[int(np.argmax(self.layer_values))] = True  # the model keeps at least one layer
        widths = [w if a else 0 for w, a in zip(widths, alive, strict=True)]
        heads = [h if a else 0 for h, a in zip(heads, alive, strict=True)]
        return widths, heads, alive

    def fraction(self, removed: int) -> float:
        widths, heads, _ = self.kept(removed)
        return self.costs.fraction(heads, widths)


def full_plan(model: nn.Module) -> PruningPlan:
    """The plan that keeps everything (pruning with it is the identity)."""
    layers = ffn_layers(model)
    widths = [layer.ffn_in.out_features for layer in layers]
    heads = [layer.num_heads for layer in layers]
    return PruningPlan(
        model_type=model.config.model_type,
        intermediate_sizes=widths,
        keep_indices=[list(range(w)) for w in widths],
        hidden_size=model.config.hidden_size,
        num_heads=heads,
        head_keep_indices=[list(range(h)) for h in heads],
    )


@torch.no_grad()
def apply_pruning(model: nn.Module, plan: PruningPlan, scores: NeuronScores | None = None) -> nn.Module:
    """Cut the plan's removed FFN neurons (and output dims) out of ``model``, in place.

    First FFN linear: keeps the rows (and bias entries) of kept neurons. Second FFN linear: keeps
    their columns; with output pruning also only the kept rows, zero-padded back to the hidden size.
    With ``plan.bias_compensation`` and ``scores``, each removed neuron's mean contribution (its mean
    activation times its second-FFN column) is folded into the second linear's bias, and removed
    output dims are filled with their mean output instead of zeros: free at inference.

    Returns:
        ``model``, whose config now records the per-layer widths (``skeleton_ffn_sizes``).
    """
    layers = ffn_layers(model)
    if len(layers) != len(plan.keep_indices):
        raise ValueError(f"plan has {len(plan.keep_indices)} layers, model has {len(layers)}")
    whole = plan
    if plan.kept_layers is not None:
        plan, scores = _drop_layers(model, plan, scores)
        layers = ffn_layers(model)
    compensate = plan.bias_compensation and scores is not None
    if plan.head_keep_indices is not None:
        _prune_heads(layers, plan, scores if compensate else None)
    for index, layer in enumerate(layers):
        if isinstance(layer.ffn_out, PaddedLinear):
            raise ValueError("model is already pruned; prune the original backbone")
        out_keep = None if plan.out_keep_indices is None else plan.out_keep_indices[index]
        mean_activation = scores.mean_activation[index] if compensate else None
        mean_output = scores.mean_ffn_output[index] if compensate and scores.mean_ffn_output is not None else None
        _prune_ffn(layer, plan.keep_indices[index], out_keep, mean_activation, mean_output)
    model.config.skeleton_ffn_sizes = plan.kept_sizes
    model.config.skeleton_heads = plan.kept_heads
    # the family config keeps the unpruned layer count (as it keeps the FFN width); the plan rebuilds
    model.config.skeleton_layers = whole.kept_layers
    model.config.skeleton_ffn_out_sizes = (
        None if plan.out_keep_indices is None else [len(k) for k in plan.out_keep_indices]
    )
    return model


@torch.no_grad()
def _prune_ffn(layer, keep_indices: list[int], out_keep_indices, mean_activation, mean_output) -> None:
    """Cut one layer's FFN down to the kept neurons (and, with ``out_keep_indices``, output dims,
    zero-padded back). With ``mean_activation``, removed neurons' mean contribution goes into the
    second linear's bias; with ``mean_output``, removed output dims are filled with their mean."""
    first, second = layer.ffn_in, layer.ffn_out
    keep = torch.tensor(keep_indices, dtype=torch.long, device=first.weight.device)
    new_first = nn.Linear(first.in_features, len(keep), bias=first.bias is not None)
    new_first.to(first.weight.device, first.weight.dtype)
    new_first.weight.copy_(first.weight[keep])  # (kept, hidden)
    if first.bias is not None:
        new_first.bias.copy_(first.bias[keep])
    bias = second.bias.clone() if second.bias is not None else None
    if mean_activation is not None and bias is not None:
        removed = torch.ones(second.in_features, dtype=torch.bool, device=keep.device)
        removed[keep] = False
        mean = mean_activation.to(second.weight)
        bias += second.weight[:, removed] @ mean[removed]  # (hidden,)
    weight = second.weight[:, keep]  # (hidden, kept)
    if out_keep_indices is None:
        new_second = nn.Linear(len(keep), second.out_features, bias=bias is not None)
        new_second.to(second.weight.device, second.weight.dtype)
        new_second.weight.copy_(weight)
        if bias is not None:
            new_second.bias.copy_(bias)
    else:
        out_keep = torch.tensor(out_keep_indices, dtype=torch.long, device=keep.device)
        new_second = PaddedLinear(len(keep), out_keep, second.out_features, bias=bias is not None)
        new_second.to(second.weight.device, second.weight.dtype)
        new_second.linear.weight.copy_(weight[out_keep])  # (kept outputs, kept)
        if bias is not None:
            new_second.linear.bias.copy_(bias[out_keep])
        if mean_output is not None:
            out_removed = torch.ones(second.out_features, dtype=torch.bool, device=keep.device)
            out_removed[out_keep] = False
            new_second.fill[out_removed] = mean_output.to(new_second.fill)[out_removed]
    frozen = not first.weight.requires_grad  # a frozen backbone stays frozen
    for parameter in (*new_first.parameters(), *new_second.parameters()):
        parameter.requires_grad_(not frozen)
    layer.ffn_in = new_first
    layer.ffn_out = new_second


def _drop_layers(model: nn.Module, plan: PruningPlan, scores: NeuronScores | None):
    """Remove the layers the plan does not keep; returns the plan and scores of the kept layers."""
    kept = plan.kept_layers
    if not kept or sorted(set(kept)) != kept or kept[-1] >= len(plan.keep_indices):
        raise ValueError(f"kept_layers must be sorted distinct layer indices, at least one, got {kept}")
    keep_layers(model, kept)

    def pick(values):
        return None if values is None else [values[i] for i in kept]

    view = replace(
        plan,
        intermediate_sizes=pick(plan.intermediate_sizes),
        keep_indices=pick(plan.keep_indices),
        out_keep_indices=pick(plan.out_keep_indices),
        num_heads=pick(plan.num_heads),
        head_keep_indices=pick(plan.head_keep_indices),
        kept_layers=None,
    )
    return view, None if scores is None else scores.select_layers(kept)


def _prune_heads(layers, plan: PruningPlan, scores: NeuronScores | None) -> None:
    """Remove the plan's heads with each family's own ``prune_heads`` (smaller Q/K/V and output
    projection). With ``scores``, each removed head's mean context times its output-projection
    columns goes into the output bias first, as for neurons.
    """
    if len(plan.head_keep_indices) != len(layers):
        raise ValueError(f"plan has head counts for {len(plan.head_keep_indices)} layers, model has {len(layers)}")
    for index, layer in enumerate(layers):
        heads = layer.num_heads
        if heads != plan.num_heads[index]:
            raise ValueError("model is already pruned; prune the original backbone")
        keep = set(plan.head_keep_indices[index])
        if not keep:
            raise ValueError(f"layer {index} would keep no attention head; every layer keeps at least one")
        removed = sorted(set(range(heads)) - keep)
        if not removed:
            continue
        out = layer.attention_out
        frozen = not out.weight.requires_grad
        if scores is not None and scores.mean_head_context is not None and out.bias is not None:
            dims = torch.cat([torch.arange(h * layer.head_size, (h + 1) * layer.head_size) for h in removed])
            mean = scores.mean_head_context[index].to(out.weight)
            with torch.no_grad():
                out.bias += out.weight[:, dims] @ mean[dims]  # (hidden,)
        layer.attention.prune_heads(removed)
        layer.attention.requires_grad_(not frozen)  # the new projections stay as frozen as the old


def count_ffn_parameters(model: nn.Module) -> int:
    return sum(p.numel() for layer in ffn_layers(model) for m in (layer.ffn_in, layer.ffn_out) for p in m.parameters())


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
