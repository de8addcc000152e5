"""Structured FFN pruning: the paper's task neuron localization (sections 4.2, 4.3 and 4.5).

Removed neurons are cut out of the weight matrices for real (smaller ``nn.Linear`` layers), so the
slim model does less arithmetic. ``PruningPlan`` records what each layer keeps and is saved beside
the weights, so a slim model with per-layer FFN widths can always be rebuilt.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from skeleton.architectures import ffn_layers
from skeleton.scoring import NeuronScores


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


@dataclass
class PruningPlan:
    """Which FFN neurons (and, optionally, FFN output dims) each layer keeps.

    Attributes:
        model_type: ``config.model_type`` of the backbone the plan was made for.
        intermediate_sizes: per layer, the FFN width before pruning.
        keep_indices: per layer, sorted indices of kept FFN neurons.
        hidden_size: the residual stream width.
        out_keep_indices: per layer, sorted kept output dims of the second FFN linear (``ffn-out``).
        kept_ratio: the target fraction of FFN neurons kept (before rounding).
        round_to: every layer's width is a multiple of this.
        scorer: which scorer ranked the neurons.
        bias_compensation: whether removed neurons' mean contribution went into the bias.
    """

    model_type: str
    intermediate_sizes: list[int]
    keep_indices: list[list[int]]
    hidden_size: int
    out_keep_indices: list[list[int]] | None = None
    kept_ratio: float = 1.0
    round_to: int = 1
    scorer: str = ""
    bias_compensation: bool = False

    @property
    def kept_sizes(self) -> list[int]:
        return [len(keep) for keep in self.keep_indices]

    @property
    def kept_fraction(self) -> float:
        """The fraction of FFN neurons actually kept, after rounding."""
        return sum(self.kept_sizes) / sum(self.intermediate_sizes)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["kept_sizes"] = self.kept_sizes
        data["kept_fraction"] = self.kept_fraction
        return data

    @classmethod
    def from_dict(cls, data: dict) -> PruningPlan:
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in names})

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict()))

    @classmethod
    def load(cls, path: Path) -> PruningPlan:
        return cls.from_dict(json.loads(Path(path).read_text()))


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
    step = max(1, round_to)
    rounded = []
    for count, scores_of_layer in zip(counts, scores, strict=True):
        width = len(scores_of_layer)
        value = int(round(count / step)) * step
        rounded.append(min(width, max(step, value)))
    return rounded


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


def full_plan(model: nn.Module) -> PruningPlan:
    """The plan that keeps everything (pruning with it is the identity)."""
    widths = [layer.ffn_in.out_features for layer in ffn_layers(model)]
    return PruningPlan(
        model_type=model.config.model_type,
        intermediate_sizes=widths,
        keep_indices=[list(range(w)) for w in widths],
        hidden_size=model.config.hidden_size,
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
    compensate = plan.bias_compensation and scores is not None
    for index, layer in enumerate(layers):
        first, second = layer.ffn_in, layer.ffn_out
        if isinstance(second, PaddedLinear):
            raise ValueError("model is already pruned; prune the original backbone")
        keep = torch.tensor(plan.keep_indices[index], dtype=torch.long, device=first.weight.device)
        new_first = nn.Linear(first.in_features, len(keep), bias=first.bias is not None)
        new_first.to(first.weight.device, first.weight.dtype)
        new_first.weight.copy_(first.weight[keep])  # (kept, hidden)
        if first.bias is not None:
            new_first.bias.copy_(first.bias[keep])
        bias = second.bias.clone() if second.bias is not None else None
        if compensate and bias is not None:
            removed = torch.ones(second.in_features, dtype=torch.bool, device=keep.device)
            removed[keep] = False
            mean = scores.mean_activation[index].to(second.weight)
            bias += second.weight[:, removed] @ mean[removed]  # (hidden,)
        weight = second.weight[:, keep]  # (hidden, kept)
        if plan.out_keep_indices is None:
            new_second = nn.Linear(len(keep), second.out_features, bias=bias is not None)
            new_second.to(second.weight.device, second.weight.dtype)
            new_second.weight.copy_(weight)
            if bias is not None:
                new_second.bias.copy_(bias)
        else:
            out_keep = torch.tensor(plan.out_keep_indices[index], dtype=torch.long, device=keep.device)
            new_second = PaddedLinear(len(keep), out_keep, second.out_features, bias=bias is not None)
            new_second.to(second.weight.device, second.weight.dtype)
            new_second.linear.weight.copy_(weight[out_keep])  # (kept outputs, kept)
            if bias is not None:
                new_second.linear.bias.copy_(bias[out_keep])
            if compensate and scores.mean_ffn_output is not None:
                out_removed = torch.ones(second.out_features, dtype=torch.bool, device=keep.device)
                out_removed[out_keep] = False
                new_second.fill[out_removed] = scores.mean_ffn_output[index].to(new_second.fill)[out_removed]
        layer.ffn_in = new_first
        layer.ffn_out = new_second
    model.config.skeleton_ffn_sizes = plan.kept_sizes
    model.config.skeleton_ffn_out_sizes = (
        None if plan.out_keep_indices is None else [len(k) for k in plan.out_keep_indices]
    )
    return model


def count_ffn_parameters(model: nn.Module) -> int:
    return sum(p.numel() for layer in ffn_layers(model) for m in (layer.ffn_in, layer.ffn_out) for p in m.parameters())


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
