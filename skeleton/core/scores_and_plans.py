"""The units of a model the method ranks and removes, as the data types every layer shares.

:class:`NeuronScores` is what a scorer says of every FFN neuron, attention head and prompt
position (step 2); :class:`PruningPlan` is what a Skeleton model keeps of each layer (step 3), saved
beside its weights so that the slim shapes can always be rebuilt. They live apart from the heavy
code that makes them, so that pruning, loading and the analyses read them without importing the
scorers.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file


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
        heads: per layer, (heads,) scores of the attention heads, when scored.
        mean_head_context: per layer, (heads x head size,) signed mean context vector, used to
            fold removed heads into the attention output bias.
        prompt: (virtual tokens,) scores of the soft-prompt positions, when heads are scored.
    """

    scorer: str
    ffn: list[torch.Tensor]
    mean_activation: list[torch.Tensor]
    ffn_out: list[torch.Tensor] | None = None
    mean_ffn_output: list[torch.Tensor] | None = None
    num_samples: int = 0
    heads: list[torch.Tensor] | None = None
    mean_head_context: list[torch.Tensor] | None = None
    prompt: torch.Tensor | None = None
    extra: dict = field(default_factory=dict)

    LAYERED = ("ffn", "mean_activation", "ffn_out", "mean_ffn_output", "heads", "mean_head_context")

    def select_layers(self, indices: list[int]) -> NeuronScores:
        """The scores of the layers ``indices`` only (after whole layers were removed)."""
        chosen = {k: None if getattr(self, k) is None else [getattr(self, k)[i] for i in indices] for k in self.LAYERED}
        return NeuronScores(scorer=self.scorer, num_samples=self.num_samples, prompt=self.prompt, **chosen)

    def to_dict(self) -> dict:
        data = {"scorer": self.scorer, "num_samples": self.num_samples}
        for kind in self.LAYERED:
            value = getattr(self, kind)
            data[kind] = None if value is None else [t.tolist() for t in value]
        data["prompt"] = None if self.prompt is None else self.prompt.tolist()
        return data

    @classmethod
    def from_dict(cls, data: dict) -> NeuronScores:
        def tensors(key):
            value = data.get(key)
            return None if value is None else [torch.tensor(v, dtype=torch.float32) for v in value]

        prompt = data.get("prompt")
        return cls(
            scorer=data["scorer"],
            num_samples=int(data.get("num_samples", 0)),
            prompt=None if prompt is None else torch.tensor(prompt, dtype=torch.float32),
            **{kind: tensors(kind) for kind in cls.LAYERED},
        )

    def save(self, path: Path) -> None:
        """Save as safetensors (one tensor per layer and kind), scorer name in the metadata."""
        tensors = {}
        for kind in self.LAYERED:
            for index, tensor in enumerate(getattr(self, kind) or []):
                tensors[f"{kind}.{index}"] = tensor.contiguous()
        if self.prompt is not None:
            tensors["prompt.0"] = self.prompt.contiguous()
        save_file(tensors, str(path), metadata={"scorer": self.scorer, "num_samples": str(self.num_samples)})

    @classmethod
    def load(cls, path: Path) -> NeuronScores:
        with safe_open(str(path), "pt") as handle:
            metadata = handle.metadata() or {}
        tensors = load_file(str(path))

        def layers(kind):
            count = sum(1 for key in tensors if key.rsplit(".", 1)[0] == kind)
            return [tensors[f"{kind}.{i}"] for i in range(count)] or None

        prompt = layers("prompt")
        return cls(
            scorer=metadata.get("scorer", "unknown"),
            num_samples=int(metadata.get("num_samples", 0)),
            prompt=None if prompt is None else prompt[0],
            **{kind: layers(kind) for kind in cls.LAYERED},
        )


@dataclass
class PruningPlan:
    """Which FFN neurons (and, optionally, FFN output dims) each layer keeps.

    Attributes:
        model_type: ``config.model_type`` of the backbone the plan was made for.
        intermediate_sizes: per layer, the FFN width before pruning.
        keep_indices: per layer, sorted indices of kept FFN neurons.
        hidden_size: the residual stream width.
        out_keep_indices: per layer, sorted kept output dims of the second FFN linear (``ffn-out``).
        kept_ratio: the kept ratio the plan was made for, before rounding (the search value of the
            paper's search); ``None`` for a plan made for a latency fraction.
        round_to: every layer's width is a multiple of this.
        scorer: which scorer ranked the neurons.
        bias_compensation: whether removed neurons' (and heads') mean contribution went into the bias.
        num_heads: per layer, the attention heads before pruning (with ``head_keep_indices``).
        head_keep_indices: per layer, sorted indices of kept attention heads; ``None`` keeps all.
        latency_fraction: for a plan made for a latency fraction (the search value with a latency
            table), the Skeleton model's predicted latency over the prompt-tuned model's that the
            plan reaches (at most the value asked for); ``None`` for a plan made for a kept ratio.
        kept_layers: indices of the transformer layers kept whole-or-thinned; the others are
            removed with their LayerNorms (their entries above are empty). ``None`` keeps all.
    """

    model_type: str
    intermediate_sizes: list[int]
    keep_indices: list[list[int]]
    hidden_size: int
    out_keep_indices: list[list[int]] | None = None
    kept_ratio: float | None = None
    round_to: int = 1
    scorer: str = ""
    bias_compensation: bool = False
    num_heads: list[int] | None = None
    head_keep_indices: list[list[int]] | None = None
    latency_fraction: float | None = None
    kept_layers: list[int] | None = None

    @property
    def kept_sizes(self) -> list[int]:
        return [len(keep) for keep in self.keep_indices]

    @property
    def kept_heads(self) -> list[int] | None:
        return None if self.head_keep_indices is None else [len(keep) for keep in self.head_keep_indices]

    def heads_per_layer(self, full: list[int]) -> list[int]:
        """Heads each original layer runs: its kept heads (``full`` when heads were not pruned), 0
        for a removed layer."""
        heads = self.kept_heads or list(full)
        if self.kept_layers is None:
            return heads
        return [h if i in self.kept_layers else 0 for i, h in enumerate(heads)]

    @property
    def kept_fraction(self) -> float:
        """The fraction of FFN neurons actually kept, after rounding."""
        return sum(self.kept_sizes) / sum(self.intermediate_sizes)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["kept_sizes"] = self.kept_sizes
        data["kept_fraction"] = self.kept_fraction
        data["kept_heads"] = self.kept_heads
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
