"""``skeleton export``: the slim model plus its prompt as one standalone ONNX graph.

The soft prompt is baked into the graph as a constant prepended to the word embeddings (the
attention mask extended to match), and the task template, when the model uses one, is baked into
the exported tokenizer's post-processor, so serving needs neither peft nor PyTorch, and optimum's
``ORTModelForSequenceClassification`` in a ``pipeline`` sees exactly what the model was trained on.

Variants: ``fp32``; ``optimized`` (onnxruntime's transformer fusions); ``int8`` (dynamic
quantisation of the fp32 graph: quantise before fusing). Every export checks onnxruntime against
PyTorch on real sentences: a float graph above tolerance fails the export; an int8 graph that changes
predictions is left out and the manifest says why. Tracing and the checks run on the CPU whatever
device trained the model; the graph runs on any onnxruntime provider.
"""

from __future__ import annotations

import copy
import json
import shutil
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from skeleton.artifacts import (
    META_FILE,
    MODEL_FILE,
    REPORT_FILE,
    CompressedModel,
    library_versions,
    load,
    write_json,
)
from skeleton.errors import SkeletonError
from skeleton.progress import SILENT, Reporter
from skeleton.runtime import MANIFEST_FILE, ONNX_DIR, OnnxRuntime, sha256_file, tokenize

VARIANT_FILES = {"fp32": "model.onnx", "optimized": "model_optimized.onnx", "int8": "model_int8.onnx"}
FUSED_OPS = (
    "Attention",
    "MultiHeadAttention",
    "SkipLayerNormalization",
    "EmbedLayerNormalization",
    "BiasGelu",
    "FastGelu",
    "Gelu",
    "LayerNormalization",
    "SkipSimplifiedLayerNormalization",
)


@dataclass
class ExportConfig:
    """Settings of ``skeleton export``.

    Attributes:
        variants: which graphs to write (``fp32`` always comes first; the others derive from it).
        opset: ONNX opset.
        parity_samples: real sentences the onnxruntime/PyTorch parity check runs on.
        fp32_tolerance: largest accepted |logit difference| of fp32 (and optimized) graphs.
        int8_min_agreement: smallest accepted share of int8 argmax equal to PyTorch's.
        int8_max_drop: int8 test accuracy may fall this many points below fp32 before the
            quantiser is retried with per-channel / reduce-range weights.
    """

    variants: tuple[str, ...] = ("fp32", "optimized", "int8")
    opset: int = 17
    parity_samples: int = 64
    fp32_tolerance: float = 1e-4
    int8_min_agreement: float = 0.99
    int8_max_drop: float = 1.0

    def __post_init__(self) -> None:
        self.variants = tuple(self.variants)
        unknown = [v for v in self.variants if v not in VARIANT_FILES]
        if unknown or "fp32" not in self.variants:
            raise ValueError(
                f"variants must include fp32 and be among {', '.join(VARIANT_FILES)}, got {','.join(self.variants)}"
            )
        if self.parity_samples < 1:
            raise ValueError(f"parity_samples must be at least 1, got {self.parity_samples}")


class OnnxClassifier(nn.Module):
    """What goes into the graph: the prompted classifier with its prompt as a constant."""

    def __init__(self, model: CompressedModel, with_token_types: bool):
        super().__init__()
        self.classifier = model.classifier
        self.register_buffer("prompt", model.classifier.prompt_embeddings().detach().clone())
        self.with_token_types = with_token_types

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        return self.classifier(
            input_ids, attention_mask, token_type_ids if self.with_token_types else None, prompt=self.prompt
        )


def max_input_tokens(model: CompressedModel) -> int:
    """The longest tokenized input (special tokens and template included) the graph accepts."""
    config = model.classifier.backbone.config
    limit = config.max_position_embeddings - model.classifier.num_virtual_tokens
    if config.model_type in ("roberta", "xlm-roberta"):
        limit -= config.pad_token_id + 1  # position ids start after the padding index
    return limit


def template_tokenizer(model: CompressedModel):
    """A copy of the tokenizer whose post-processor wraps texts in the task template, so that
    plain ``tokenizer(text)`` yields the ids the model was trained on.
    """
    from tokenizers.processors import TemplateProcessing

    tokenizer = copy.deepcopy(model.tokenizer)
    tokenizer.model_max_length = max_input_tokens(model)
    if not model.classifier.head_config.use_template:
        return tokenizer
    if not tokenizer.is_fast:
        raise SkeletonError("exporting a templated model needs a fast tokenizer (tokenizer.json)")
    spec = model.spec
    template = spec.template.replace("<mask>", tokenizer.mask_token or "")
    marker = [-1]
    wrapped = tokenizer.build_inputs_with_special_tokens(marker)
    cut = wrapped.index(-1)
    prefix, suffix = wrapped[:cut], wrapped[cut + 1 :]
    pieces: list[list[int] | str] = []
    rest = template
    for index, field in enumerate(spec.text_fields):
        before, rest = rest.split("{" + field + "}", 1)
        pieces.append(tokenizer(before, add_special_tokens=False)["input_ids"] if before.strip() else [])
        pieces.append("$A" if index == 0 else "$B:0")
    pieces.append(tokenizer(rest, add_special_tokens=False)["input_ids"] if rest.strip() else [])
    names: dict[int, str] = {}

    def name(token_id: int) -> str:
        return names.setdefault(token_id, f"<skeleton_template_{token_id}>")

    sequence = [name(i) for i in prefix]
    for piece in pieces:
        sequence.extend([piece] if isinstance(piece, str) else [name(i) for i in piece])
    sequence.extend(name(i) for i in suffix)
    special = [(token_name, token_id) for token_id, token_name in names.items()]
    single = [s for s in sequence if s != "$B:0"]
    tokenizer.backend_tokenizer.post_processor = TemplateProcessing(
        single=single, pair=sequence if spec.is_pair else None, special_tokens=special
    )
    return tokenizer


def _count_ops(path: Path) -> dict[str, int]:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    counts = Counter(node.op_type for node in graph.node)
    return {op: counts[op] for op in FUSED_OPS if counts.get(op)}


def _run(runtime: OnnxRuntime, tokenizer, texts: list, batch_size: int = 32) -> np.ndarray:
    return np.concatenate(
        [runtime.run(tokenize(tokenizer, texts[s : s + batch_size])) for s in range(0, len(texts), batch_size)]
    )


def _texts_and_labels(split, spec) -> tuple[list, list[int]]:
    columns = [list(split[f]) for f in spec.text_fields]
    texts = columns[0] if len(columns) == 1 else list(zip(*columns, strict=True))
    return texts, list(split["label"])


def _evaluation_data(directory: Path, workspace, model: CompressedModel):
    """The test split for accuracy and parity: the caller's workspace, else the data the report names."""
    if workspace is not None:
        return workspace.data.test
    report_path = directory / REPORT_FILE
    if not report_path.is_file():
        return None
    data_config = json.loads(report_path.read_text()).get("config", {}).get("data")
    if not data_config:
        return None
    from skeleton.data import DataConfig, load_task_data

    try:
        return load_task_data(DataConfig(**data_config)).test
    except SkeletonError:
        return None


def _accuracy(logits: np.ndarray, labels: list[int]) -> float:
    return float(100.0 * (logits.argmax(-1) == np.array(labels)).mean())


def export_directory(
    directory: str | Path,
    config: ExportConfig | None = None,
    workspace=None,
    reporter: Reporter = SILENT,
) -> dict:
    """Export the model in ``directory`` to ``directory/onnx``, verify it, and return what was written.

    Returns:
        A dict (also merged into ``report.json`` under ``export``): per variant its file, size,
        parity, test accuracy and fused-op counts.
    """
    config = config or ExportConfig()
    directory = Path(directory)
    for needed in (META_FILE, MODEL_FILE, "config.json"):
        if not (directory / needed).is_file():
            raise SkeletonError(f"{directory} is not a compressed model directory: {needed} is missing")
    started = time.perf_counter()
    model = load(directory, device="cpu", attn_implementation="eager")
    backbone_config = model.classifier.backbone.config
    tokenizer = template_tokenizer(model)
    with_token_types = "token_type_ids" in tokenizer("a").keys() and getattr(backbone_config, "type_vocab_size", 0) > 0
    from skeleton.architectures import get_architecture

    with_token_types = with_token_types and get_architecture(backbone_config.model_type).uses_token_type_ids

    test_split = _evaluation_data(directory, workspace, model)
    if test_split is not None:
        texts, labels = _texts_and_labels(test_split, model.spec)
    else:  # no data reachable: parity still runs, on sentences of vocabulary words
        rng = np.random.default_rng(0)
        vocabulary = [t for t in model.tokenizer.get_vocab() if t.isalpha()]
        texts = [" ".join(rng.choice(vocabulary, 12)) for _ in range(config.parity_samples)]
        if model.spec.is_pair:
            texts = [(t, t[::-1]) for t in texts]
        labels = None
    parity_texts = texts[: config.parity_samples]

    final = directory / ONNX_DIR
    work = directory / f".{ONNX_DIR}.partial"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        reporter.message("export: tracing the fp32 graph")
        wrapper = OnnxClassifier(model, with_token_types).eval()
        sample = tokenize(tokenizer, parity_texts[:2])
        names = ["input_ids", "attention_mask"] + (["token_type_ids"] if with_token_types else [])
        args = tuple(torch.from_numpy(sample[n]).long() for n in names)
        dynamic = {n: {0: "batch", 1: "sequence"} for n in names}
        dynamic["logits"] = {0: "batch"}
        with torch.no_grad():
            torch.onnx.export(
                wrapper,
                args,
                str(work / VARIANT_FILES["fp32"]),
                input_names=names,
                output_names=["logits"],
                dynamic_axes=dynamic,
                opset_version=config.opset,
                do_constant_folding=True,
                dynamo=False,
            )
        # PyTorch reference logits through the training-time encoding (template filled as text), so the
        # check also proves that the exported tokenizer reproduces it
        reference = _torch_logits(model, parity_texts)
        tokenizer.save_pretrained(str(work))
        _write_config(model, work)
        variants: dict[str, dict] = {}
        rejected: dict[str, dict] = {}
        fp32_test = None
        for variant in config.variants:
            path = work / VARIANT_FILES[variant]
            if variant == "optimized":
                _optimize(work / VARIANT_FILES["fp32"], path, backbone_config)
            if variant == "int8":
                info = _quantize_best(
                    work / VARIANT_FILES["fp32"],
                    path,
                    tokenizer,
                    parity_texts,
                    reference,
                    texts,
                    labels,
                    fp32_test,
                    config,
                    reporter,
                )
            else:
                info = _measure(variant, path, tokenizer, parity_texts, reference, texts, labels)
            problem = _parity_problem(variant, info, config)
            if problem and variant == "int8":
                # the float graphs stand; an int8 graph that changes predictions is not shipped
                path.unlink()
                rejected[variant] = {"reason": problem, **info}
                reporter.message(f"export: int8 rejected: {problem}")
                continue
            if problem:
                raise SkeletonError(problem)
            if variant == "fp32":
                fp32_test = info.get("test_accuracy")
            variants[variant] = info
            reporter.message(
                f"export: {variant}: {info['bytes'] / 1e6:.1f} MB, max |diff| {info['max_abs_diff']:.2e}"
                + (f", test accuracy {info['test_accuracy']:.2f}" if "test_accuracy" in info else "")
            )
        manifest = {
            "format": "skeleton-onnx/1",
            "task": model.spec.name,
            "label_names": list(model.spec.label_names),
            "inputs": names,
            "outputs": ["logits"],
            "opset": config.opset,
            "num_virtual_tokens": model.classifier.num_virtual_tokens,
            "max_input_tokens": max_input_tokens(model),
            "template_in_tokenizer": bool(model.classifier.head_config.use_template),
            "variants": variants,
            "rejected_variants": rejected,
            "default_variant": _best_variant(variants),
            "parity_texts": "test split" if labels is not None else "synthetic (no data reachable)",
            "cpu_int8_instructions": _cpu_int8_instructions(),
            "versions": library_versions(),
        }
        manifest["files"] = {p.name: sha256_file(p) for p in sorted(work.iterdir()) if p.is_file()}
        write_json(work / MANIFEST_FILE, manifest)
        if final.exists():
            shutil.rmtree(final)
        work.rename(final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    result = {
        "directory": ONNX_DIR,  # relative to the model directory, which a compress run renames at the end
        "seconds": time.perf_counter() - started,
        **{k: manifest[k] for k in ("variants", "rejected_variants", "default_variant", "max_input_tokens")},
    }
    report_path = directory / REPORT_FILE
    if report_path.is_file():
        report = json.loads(report_path.read_text())
        report["export"] = result
        write_json(report_path, report)
    return result


def _best_variant(variants: dict[str, dict]) -> str:
    """The smallest graph whose test accuracy is within a point of fp32 (fp32 when unknown)."""
    fp32 = variants["fp32"].get("test_accuracy")
    if fp32 is None:
        return "optimized" if "optimized" in variants else "fp32"
    for name in ("int8", "optimized"):
        info = variants.get(name)
        if info is not None and info.get("test_accuracy", -1) >= fp32 - 1.0:
            return name
    return "fp32"


@torch.no_grad()
def _torch_logits(model: CompressedModel, texts: list) -> np.ndarray:
    out = []
    for start in range(0, len(texts), 32):
        batch = model.encode(texts[start : start + 32])
        out.append(model.classifier(**batch.inputs()).float().numpy())
    return np.concatenate(out)


def _measure(variant, path: Path, tokenizer, parity_texts, reference, texts, labels) -> dict:
    """Size, fused ops, parity against PyTorch and (with labels) test accuracy of one graph."""
    info = {"file": path.name, "bytes": path.stat().st_size, "fused_ops": _count_ops(path)}
    try:
        runtime = OnnxRuntime(path)
    except Exception as error:  # onnxruntime rejects the graph: say which variant
        raise SkeletonError(
            f"onnxruntime cannot load the {variant} graph: {str(error).splitlines()[0][:300]}"
        ) from error
    logits = _run(runtime, tokenizer, parity_texts)
    info["max_abs_diff"] = float(np.abs(logits - reference).max())
    info["argmax_agreement"] = float((logits.argmax(-1) == reference.argmax(-1)).mean())
    if labels is not None:
        info["test_accuracy"] = _accuracy(_run(runtime, tokenizer, texts), labels)
    return info


def _cpu_int8_instructions() -> list[str]:
    """The int8 dot-product extensions this CPU has (without VNNI, reduce_range avoids AVX2 overflow)."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return []
    return sorted({f for f in flags if f in ("avx2", "avx512_vnni", "avx_vnni", "amx_int8", "avx512bw")})


def _quantize_best(
    source, path, tokenizer, parity_texts, reference, texts, labels, fp32_test, config, reporter
) -> dict:
    """Dynamic int8, per tensor first; when that loses more than ``int8_max_drop`` test points, per
    channel, and with reduce_range too on CPUs without VNNI. The best attempt is kept, all are reported.
    """
    attempts = [(False, False), (True, False)]
    if not {"avx512_vnni", "avx_vnni"} & set(_cpu_int8_instructions()):
        attempts.append((True, True))
    tried = []
    best = None
    for per_channel, reduce_range in attempts:
        _quantize(source, path, per_channel=per_channel, reduce_range=reduce_range)
        info = _measure("int8", path, tokenizer, parity_texts, reference, texts, labels)
        info.update(per_channel=per_channel, reduce_range=reduce_range)
        tried.append({k: info.get(k) for k in ("per_channel", "reduce_range", "test_accuracy", "argmax_agreement")})
        key = (info.get("test_accuracy", 0.0), info["argmax_agreement"])
        if best is None or key > best[0]:
            best = (key, info, (per_channel, reduce_range))
        if labels is None or fp32_test is None or info["test_accuracy"] >= fp32_test - config.int8_max_drop:
            break
        reporter.message(
            f"export: int8 (per_channel={per_channel}, reduce_range={reduce_range}) lost too much "
            "accuracy; trying the next setting"
        )
    _, info, (per_channel, reduce_range) = best
    if (per_channel, reduce_range) != (tried[-1]["per_channel"], tried[-1]["reduce_range"]):
        _quantize(source, path, per_channel=per_channel, reduce_range=reduce_range)  # rewrite the kept one
    info["attempts"] = tried
    return info


def _parity_problem(variant: str, info: dict, config: ExportConfig) -> str | None:
    """Why a variant fails the onnxruntime-vs-PyTorch check, or None when it passes."""
    if variant == "int8":
        if info["argmax_agreement"] < config.int8_min_agreement:
            return (
                f"int8 graph agrees with PyTorch on {100 * info['argmax_agreement']:.1f}% of the parity sentences "
                f"(needs {100 * config.int8_min_agreement:.0f}%)"
            )
        return None
    if info["max_abs_diff"] > config.fp32_tolerance:
        difference = info["max_abs_diff"]
        return f"{variant} graph differs from PyTorch by {difference:.2e} (tolerance {config.fp32_tolerance:.0e})"
    return None


def _optimize(source: Path, target: Path, backbone_config) -> None:
    from onnxruntime.transformers.optimizer import optimize_model

    model_type = "bert"  # the fusion patterns of every supported family are BERT's
    hidden = getattr(backbone_config, "hidden_size", 0)
    heads = getattr(backbone_config, "num_attention_heads", 0)
    optimized = optimize_model(str(source), model_type=model_type, num_heads=heads, hidden_size=hidden, opt_level=1)
    optimized.save_model_to_file(str(target))


def _quantize(source: Path, target: Path, per_channel: bool, reduce_range: bool) -> None:
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser logs "consider pre-processing" advice on the root logger
    try:
        # MatMul only: that is where int8 pays on a CPU, and quantising the embedding Gather breaks
        # graphs whose word embeddings are tied to the MLM decoder (one initializer, two consumers)
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
            reduce_range=reduce_range,
            op_types_to_quantize=["MatMul"],
        )
    finally:
        root.setLevel(level)


def _write_config(model: CompressedModel, directory: Path) -> None:
    """config.json with labels, for optimum's ORTModelForSequenceClassification and pipelines."""
    config = copy.deepcopy(model.classifier.backbone.config)
    config.id2label = dict(enumerate(model.spec.label_names))
    config.label2id = {name: index for index, name in enumerate(model.spec.label_names)}
    family = type(model.classifier.backbone).__name__.replace("ForMaskedLM", "").replace("Model", "")
    config.architectures = [f"{family}ForSequenceClassification"]
    config.skeleton_task = model.spec.name
    config.save_pretrained(str(directory))


__all__ = ["ExportConfig", "export_directory", "ONNX_DIR", "MANIFEST_FILE", "VARIANT_FILES"]
