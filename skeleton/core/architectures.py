"""The only file that knows model families: Hugging Face module paths, class names, config quirks.

Each entry says, for one ``config.model_type``, where the base model (``model.base_model``) keeps
its transformer layers and, inside each layer, the two FFN linears and the attention; which Auto
class loads it; how its positions and its onnxruntime fusion work. Everything else in the toolkit
(loading, scoring, pruning, export) works through the functions here, so adding an architecture is
one entry plus one tiny config in ``tests/conftest.py`` (a test fails when an entry has no fixture,
and a test fails when a family fact appears outside this file).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from torch import nn

from skeleton.core.errors import SkeletonError


@dataclass(frozen=True)
class SequenceHeadSpec:
    """Where a family's ``*ForSequenceClassification`` keeps its head: every family reads the first
    token, maps it through ``dense`` and ``activation``, then ``classifier`` to the labels (dropout
    between them while training).

    Attributes:
        dense: dotted path on the sequence-classification model to the hidden -> hidden linear
            (BERT's pooler, RoBERTa's and ELECTRA's ``classifier.dense``, DistilBERT's ``pre_classifier``).
        classifier: dotted path to the hidden -> labels linear.
        activation: ``tanh``, ``gelu`` or ``relu``.
    """

    dense: str
    classifier: str
    activation: str


@dataclass(frozen=True)
class ArchitectureSpec:
    """Where one architecture family keeps its FFN and attention.

    Attributes:
        layers: dotted path from ``model.base_model`` to the ``nn.ModuleList`` of layers.
        ffn_in: dotted path inside a layer to the first FFN linear (hidden -> intermediate).
        ffn_out: dotted path inside a layer to the second FFN linear (intermediate -> hidden).
        attention: dotted path inside a layer to the self-attention module that has Hugging Face's
            ``prune_heads(heads)`` (it shrinks Q/K/V and the output projection together).
        attention_out: dotted path inside a layer to the attention output projection (the heads'
            concatenated context, heads x head size -> hidden).
        intermediate_size_attr: the config attribute holding the FFN width.
        num_heads_attr: the config attribute holding the number of attention heads per layer.
        embeddings: dotted path from ``model.base_model`` to the embedding layer (word, position
            and type embeddings and their LayerNorm).
        uses_token_type_ids: whether the model takes ``token_type_ids``.
        classification_class: the family's sequence-classification class, named in an exported
            ``config.json`` so that optimum's ``ORTModelForSequenceClassification`` and pipelines load it.
        positions_after_padding: position ids start after the padding index (RoBERTa, XLM-R), so
            ``pad_token_id + 1`` rows of the position table are never an input position.
        ort_model_type: the ``model_type`` of onnxruntime's transformer optimizer (its fusion patterns).
        unsaved_buffers: name fragments of buffers a checkpoint may lack (rebuilt at init).
        sequence_head: where ``classification_class`` keeps its head (:class:`SequenceHeadSpec`).
    """

    layers: str
    ffn_in: str
    ffn_out: str
    attention: str = "attention"
    attention_out: str = "attention.output.dense"
    intermediate_size_attr: str = "intermediate_size"
    num_heads_attr: str = "num_attention_heads"
    embeddings: str = "embeddings"
    uses_token_type_ids: bool = True
    classification_class: str = "BertForSequenceClassification"
    positions_after_padding: bool = False
    ort_model_type: str = "bert"
    unsaved_buffers: tuple[str, ...] = ("position_ids",)
    sequence_head: SequenceHeadSpec = SequenceHeadSpec("base_model.pooler.dense", "classifier", "tanh")


_BERT_LIKE = ArchitectureSpec(layers="encoder.layer", ffn_in="intermediate.dense", ffn_out="output.dense")
_ROBERTA_HEAD = SequenceHeadSpec("classifier.dense", "classifier.out_proj", "tanh")

ARCHITECTURES: dict[str, ArchitectureSpec] = {
    "bert": _BERT_LIKE,
    "roberta": replace(
        _BERT_LIKE,
        classification_class="RobertaForSequenceClassification",
        positions_after_padding=True,
        sequence_head=_ROBERTA_HEAD,
    ),
    "xlm-roberta": replace(
        _BERT_LIKE,
        classification_class="XLMRobertaForSequenceClassification",
        positions_after_padding=True,
        sequence_head=_ROBERTA_HEAD,
    ),
    "electra": replace(
        _BERT_LIKE,
        classification_class="ElectraForSequenceClassification",
        sequence_head=SequenceHeadSpec("classifier.dense", "classifier.out_proj", "gelu"),
    ),
    "distilbert": ArchitectureSpec(
        layers="transformer.layer",
        ffn_in="ffn.lin1",
        ffn_out="ffn.lin2",
        attention="attention",
        attention_out="attention.out_lin",
        intermediate_size_attr="hidden_dim",
        num_heads_attr="n_heads",
        uses_token_type_ids=False,
        classification_class="DistilBertForSequenceClassification",
        sequence_head=SequenceHeadSpec("pre_classifier", "classifier", "relu"),
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
    """Handle on one transformer layer: read and replace its two FFN linears, reach its attention."""

    layer: nn.Module
    spec: ArchitectureSpec
    head_size: int = 0

    @property
    def attention(self) -> nn.Module:
        """The self-attention module (has ``prune_heads``)."""
        return _get(self.layer, self.spec.attention)

    @property
    def attention_out(self) -> nn.Linear:
        """The attention output projection: (heads x head size) -> hidden."""
        return _get(self.layer, self.spec.attention_out)

    @property
    def num_heads(self) -> int:
        """Heads this layer has now (fewer than the config's once heads are pruned)."""
        return self.attention_out.in_features // self.head_size

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
    head_size = hidden_size(config) // num_heads(config)
    return [FFNLayer(layer, spec, head_size) for layer in layers]


def keep_layers(model: nn.Module, indices: list[int]) -> None:
    """Remove every transformer layer of ``model`` but ``indices`` (in order), LayerNorms and all."""
    spec = get_architecture(model.config.model_type)
    layers = _get(base_of(model), spec.layers)
    _set(base_of(model), spec.layers, nn.ModuleList([layers[i] for i in indices]))


def embedding_layer(model: nn.Module) -> nn.Module:
    """The embedding layer, whose output at the soft-prompt positions scores those positions."""
    return _get(base_of(model), get_architecture(model.config.model_type).embeddings)


def num_heads(config) -> int:
    """Attention heads per layer of the unpruned family config."""
    return int(getattr(config, get_architecture(config.model_type).num_heads_attr))


def intermediate_size(config) -> int:
    """FFN width per layer of the unpruned family config."""
    return int(getattr(config, get_architecture(config.model_type).intermediate_size_attr))


def hidden_size(config) -> int:
    return int(config.hidden_size)


def num_layers(config) -> int:
    return int(config.num_hidden_layers)


def max_input_tokens(config, prompt_tokens: int) -> int:
    """The longest tokenized input (special tokens and template included) beside ``prompt_tokens``
    soft-prompt positions that the position table holds."""
    limit = int(getattr(config, "max_position_embeddings", 512)) - prompt_tokens
    if get_architecture(config.model_type).positions_after_padding:
        limit -= config.pad_token_id + 1
    return limit


def ort_model_type(config) -> str:
    """The family name onnxruntime's transformer optimizer knows this model by."""
    return get_architecture(config.model_type).ort_model_type


def classification_architectures(config) -> list[str]:
    """``config.architectures`` of an exported classifier of this family."""
    return [get_architecture(config.model_type).classification_class]


def has_mlm_weights(config) -> bool:
    """Whether the checkpoint was saved with a masked-LM head (its ``architectures`` say so)."""
    return any(name.endswith(("ForMaskedLM", "ForPreTraining")) for name in config.architectures or [])


def is_sequence_classifier(config) -> bool:
    """Whether the checkpoint was saved as its family's ``*ForSequenceClassification`` (a classifier
    with the head :class:`SequenceHeadSpec` describes)."""
    return get_architecture(config.model_type).classification_class in (config.architectures or [])


def sequence_head_spec(config) -> SequenceHeadSpec:
    return get_architecture(config.model_type).sequence_head


def sequence_head_weights(model_path: str) -> dict[str, dict]:
    """The ``dense`` and ``classifier`` linears' weights of a sequence-classification checkpoint, as
    ``{"dense": {"weight", "bias"}, "classifier": {...}}`` (``OSError`` or ``AttributeError`` when it
    has none)."""
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(model_path)
    spec = sequence_head_spec(model.config)
    return {part: _get(model, getattr(spec, part)).state_dict() for part in ("dense", "classifier")}


def pretrained_pooler(backbone: nn.Module) -> nn.Linear | None:
    """The bare encoder's own copy of the head's ``dense`` where the family keeps it in the base model
    (BERT's pooler), else ``None``."""
    path = sequence_head_spec(backbone.config).dense
    if not path.startswith("base_model."):
        return None
    try:
        return _get(base_of(backbone), path.removeprefix("base_model."))
    except AttributeError:
        return None


def sequence_classifier(config, backbone: nn.Module, head: dict[str, dict]) -> nn.Module:
    """A family ``*ForSequenceClassification`` of ``config`` holding ``backbone``'s weights and the head's
    (``{"dense": state, "classifier": state}``): what ``save_pretrained`` writes for transformers."""
    from transformers import AutoModelForSequenceClassification

    config.architectures = classification_architectures(config)
    model = AutoModelForSequenceClassification.from_config(config)
    target, source = base_of(model).state_dict(), base_of(backbone).state_dict()
    # a bare encoder may carry a pooler the classifier's base lacks (RoBERTa's head reads the first token)
    left_out = [k for k in source if k not in target and not k.startswith("pooler.")]
    missing = [k for k in target if k not in source and not k.startswith("pooler.") and "position_ids" not in k]
    if left_out or missing:
        raise SkeletonError(f"the backbone does not fit {type(model).__name__}: {(left_out + missing)[:3]}")
    base_of(model).load_state_dict({k: v for k, v in source.items() if k in target}, strict=False)
    spec = sequence_head_spec(config)
    for part in ("dense", "classifier"):
        _get(model, getattr(spec, part)).load_state_dict(head[part])
    return model.eval()


def _auto_class(head: str):
    """The Auto class of the backbone a head needs: the MLM model for ``mlm``, the bare encoder else."""
    from transformers import AutoModel, AutoModelForMaskedLM

    return AutoModelForMaskedLM if head == "mlm" else AutoModel


def pretrained_config(model_path: str):
    """The model's configuration (``OSError`` when neither a local path nor on the hub)."""
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(model_path)


def pretrained_tokenizer(model_path: str):
    """The model's tokenizer (``OSError`` when missing)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_path)


def load_pretrained(model_path: str, head: str) -> nn.Module:
    """The pretrained backbone ``head`` needs, with its weights."""
    return _auto_class(head).from_pretrained(model_path)


def from_config(config, head: str = "cls", **kwargs) -> nn.Module:
    """A backbone of ``config``'s shape with fresh weights (``kwargs`` e.g. ``attn_implementation``)."""
    return _auto_class(head).from_config(config, **kwargs)


def unexpected_load(config, missing: list[str], unexpected: list[str]) -> bool:
    """Whether a non-strict state-dict load went wrong: unexpected keys, or missing ones that are not
    buffers the family rebuilds at init."""
    ignorable = get_architecture(config.model_type).unsaved_buffers
    return bool(unexpected) or any(not any(part in key for part in ignorable) for key in missing)


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
