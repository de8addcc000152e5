"""The only file that names Hugging Face module paths.

Each entry says, for one ``config.model_type``, where the base model (``model.base_model``) keeps
its transformer layers and, inside each layer, the two FFN linears. Everything else in the toolkit
(scoring, pruning, export) works through :func:`ffn_layers`, so adding an architecture is one entry
here plus one tiny config in ``tests/conftest.py`` (a test fails when an entry has no fixture).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from skeleton.errors import SkeletonError


@dataclass(frozen=True)
class ArchitectureSpec:
    """Where one architecture family keeps its FFN.

    Attributes:
        layers: dotted path from ``model.base_model`` to the ``nn.ModuleList`` of layers.
        ffn_in: dotted path inside a layer to the first FFN linear (hidden -> intermediate).
        ffn_out: dotted path inside a layer to the second FFN linear (intermediate -> hidden).
        intermediate_size_attr: the config attribute holding the FFN width.
        uses_token_type_ids: whether the model takes ``token_type_ids``.
    """

    layers: str
    ffn_in: str
    ffn_out: str
    intermediate_size_attr: str = "intermediate_size"
    uses_token_type_ids: bool = True


_BERT_LIKE = ArchitectureSpec(layers="encoder.layer", ffn_in="intermediate.dense", ffn_out="output.dense")

ARCHITECTURES: dict[str, ArchitectureSpec] = {
    "bert": _BERT_LIKE,
    "roberta": _BERT_LIKE,
    "xlm-roberta": _BERT_LIKE,
    "electra": _BERT_LIKE,
    "distilbert": ArchitectureSpec(
        layers="transformer.layer",
        ffn_in="ffn.lin1",
        ffn_out="ffn.lin2",
        intermediate_size_attr="hidden_dim",
        uses_token_type_ids=False,
    ),
}


def get_architecture(model_type: str) -> ArchitectureSpec:
    """Look up an architecture by ``config.model_type`` with a one-line error naming the supported ones."""
    if model_type not in ARCHITECTURES:
        raise SkeletonError(
            f"unsupported architecture {model_type!r}; supported families: {', '.join(sorted(ARCHITECTURES))}"
        )
    return ARCHITECTURES[model_type]


def _get(module: nn.Module, dotted: str) -> nn.Module:
    for part in dotted.split("."):
        module = getattr(module, part)
    return module


def _set(module: nn.Module, dotted: str, value: nn.Module) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        module = getattr(module, part)
    setattr(module, last, value)


@dataclass
class FFNLayer:
    """Handle on one transformer layer's FFN: read and replace its two linears."""

    layer: nn.Module
    spec: ArchitectureSpec

    @property
    def ffn_in(self) -> nn.Linear:
        return _get(self.layer, self.spec.ffn_in)

    @ffn_in.setter
    def ffn_in(self, module: nn.Module) -> None:
        _set(self.layer, self.spec.ffn_in, module)

    @property
    def ffn_out(self) -> nn.Module:
        return _get(self.layer, self.spec.ffn_out)

    @ffn_out.setter
    def ffn_out(self, module: nn.Module) -> None:
        _set(self.layer, self.spec.ffn_out, module)


def base_of(model: nn.Module) -> nn.Module:
    """The transformer body of a Hugging Face model (``BertModel`` inside ``BertForMaskedLM``)."""
    return getattr(model, "base_model", model)


def ffn_layers(model: nn.Module) -> list[FFNLayer]:
    """The FFN of every transformer layer of ``model``, in order."""
    config = model.config
    spec = get_architecture(config.model_type)
    layers = _get(base_of(model), spec.layers)
    return [FFNLayer(layer, spec) for layer in layers]


# Where each family's masked-LM head lives on the *ForMaskedLM model, applied in order to the
# hidden state at the mask position. DistilBERT spreads its head over four attributes.
MLM_HEADS: dict[str, tuple[str, ...]] = {
    "bert": ("cls",),
    "roberta": ("lm_head",),
    "xlm-roberta": ("lm_head",),
    "electra": ("generator_predictions", "generator_lm_head"),
    "distilbert": ("vocab_transform", "activation", "vocab_layer_norm", "vocab_projector"),
}


def mlm_head_modules(model: nn.Module) -> list[nn.Module]:
    """The modules that map a hidden state to vocabulary logits, for the verbalizer head."""
    paths = MLM_HEADS.get(model.config.model_type)
    if paths is None:
        raise SkeletonError(f"no masked-LM head known for {model.config.model_type!r}; use --head cls")
    try:
        return [_get(model, path) for path in paths]
    except AttributeError as error:
        raise SkeletonError(
            f"{type(model).__name__} has no masked-LM head (checkpoint without MLM weights?); use --head cls"
        ) from error
