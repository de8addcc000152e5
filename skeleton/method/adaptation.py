"""What condensation trains inside the backbone (``TrainConfig.trains``): nothing (the paper's frozen
backbone), peft LoRA adapters on the encoder's linear layers, merged back into their weights
afterwards, or every encoder weight. Whatever trains, the model afterwards is a plain model of the
same shapes, so saving, export, int8, OpenVINO and bench see nothing new. The embeddings (which the
soft prompt is read beside) and any MLM head stay frozen.
"""

from __future__ import annotations

from peft import LoraConfig, inject_adapter_in_model
from peft.tuners.lora import LoraLayer
from torch import nn

from skeleton.core.architectures import ffn_layers
from skeleton.core.modeling import PromptedClassifier

ADAPTER_NAME = "condense"


def encoder_layers(classifier: PromptedClassifier) -> nn.ModuleList:
    """The transformer layers of the classifier's backbone (what ``lora`` and ``full`` adapt)."""
    return nn.ModuleList([layer.layer for layer in ffn_layers(classifier.backbone)])


def _linear_names(layers: nn.ModuleList) -> list[str]:
    """Every linear layer with something left in it (a pruned FFN may have no neuron)."""
    return [
        name
        for name, module in layers.named_modules()
        if isinstance(module, nn.Linear) and min(module.in_features, module.out_features) > 0
    ]


def open_backbone(classifier: PromptedClassifier, trains: str, rank: int = 8) -> list[nn.Parameter]:
    """Make what ``trains`` names trainable and return those parameters (none for ``prompt``).

    ``lora`` injects rank-``rank`` adapters (alpha 2 x rank, no dropout, B initialised to zero, so the
    model is unchanged until it trains); call :func:`close_backbone` after training.
    """
    for parameter in classifier.backbone.parameters():
        parameter.requires_grad_(False)
    if trains == "prompt":
        return []
    layers = encoder_layers(classifier)
    if trains == "full":
        for parameter in layers.parameters():
            parameter.requires_grad_(True)
        return list(layers.parameters())
    if trains != "lora":
        raise ValueError(f"unknown condensation kind {trains!r}")
    config = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules=_linear_names(layers))
    inject_adapter_in_model(config, layers, adapter_name=ADAPTER_NAME)
    return [p for name, p in layers.named_parameters() if "lora_" in name]


def close_backbone(classifier: PromptedClassifier) -> int:
    """Merge every LoRA adapter into its linear layer and put the plain layer back; freeze the
    backbone. Returns how many adapters were merged."""
    layers = encoder_layers(classifier)
    merged = 0
    for name, module in list(layers.named_modules()):
        if isinstance(module, LoraLayer):
            module.merge()
            parent_name, _, child = name.rpartition(".")
            setattr(layers.get_submodule(parent_name), child, module.get_base_layer())
            merged += 1
    for parameter in classifier.backbone.parameters():
        parameter.requires_grad_(False)
    return merged
