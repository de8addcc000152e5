"""``skeleton export``: the Skeleton model plus its prompt as one standalone ONNX graph, and every
runtime's graphs of it.

The soft prompt is baked into the graph as a constant prepended to the word embeddings (the
attention mask extended to match), and the task template, when the model uses one, is baked into
the exported tokenizer's post-processor, so serving needs neither peft nor PyTorch, and optimum's
``ORTModelForSequenceClassification`` in a ``pipeline`` sees exactly what the model was trained on.

Variants, each run by one runtime of :mod:`skeleton.deploy.runtimes`: onnxruntime's ``fp32``,
``optimized`` (its transformer fusions) and ``int8`` (the fastest passing candidate of
:mod:`skeleton.deploy.quantization`); OpenVINO's ``openvino-fp32``, ``openvino-bf16`` (CPUs with
native bf16) and ``openvino-int8`` (the fastest passing NNCF candidate of :mod:`skeleton.deploy.openvino`).

Every choice is made on the validation split, recreated from the run's data settings: the float
graphs' parity with PyTorch (an onnxruntime graph above tolerance fails the export, an OpenVINO one is
not shipped), whether a reduced-precision graph ships (validation accuracy within ``int8_max_drop``
points of fp32 and argmax agreement with fp32 of at least ``int8_min_agreement``: the same bar for
every int8 and bf16 candidate of every runtime), and the default variant (the fastest shipped graph
over all runtimes, timed in one process with calls alternating). Test accuracy is measured and
reported, never used to choose. Tracing and the checks run on the CPU whatever device trained the
model; the ONNX graph runs on any onnxruntime provider.
"""

from __future__ import annotations

import copy
import math
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from skeleton.core.architectures import (
    classification_architectures,
    ffn_layers,
    get_architecture,
    ort_model_type,
)
from skeleton.core.architectures import max_input_tokens as family_max_input_tokens
from skeleton.core.batching import template_tokenizer
from skeleton.core.config import ExportConfig
from skeleton.core.data import DataConfig, column, load_task_data, split_texts
from skeleton.core.errors import SkeletonError
from skeleton.core.file_names import (
    CONFIG_FILE,
    MANIFEST_FILE,
    META_FILE,
    MODEL_FILE,
    ONNX_DIR,
    PAIR_INPUTS,
    REDUCED_VARIANTS,
    REPORT_FILE,
    VARIANT_FILES,
)
from skeleton.core.logits import batched_logits
from skeleton.core.machine import flags_simulated, has_vnni, int8_instructions, native_bf16
from skeleton.core.outputs import library_versions
from skeleton.core.progress import SILENT, Reporter
from skeleton.core.reports import ExportSummary, Manifest, load_report
from skeleton.core.statistics import paired_bootstrap
from skeleton.core.timing import time_alternating
from skeleton.deploy.buckets import BucketedRuntime, Buckets
from skeleton.deploy.loading import LoadedModel, load
from skeleton.deploy.manifest import sha256_file
from skeleton.deploy.openvino import ir_files, nncf_quantize
from skeleton.deploy.quantization import Int8Bar, int8_methods, quantize, quiet_logging
from skeleton.deploy.registry import open_graph
from skeleton.deploy.runtimes import (
    OpenVinoRuntime,
    Runtime,
    RuntimeOptions,
    precision_of,
    runtime_of,
    synthetic_batch,
    tokenize,
)
from skeleton.deploy.tokenizer import SeparatePairs

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
    "QAttention",
    "DynamicQuantizeMatMul",
    "MatMulInteger",
    "MatMulIntegerToFloat",
    "QLinearMatMul",
    "QuantizeLinear",
)


class OnnxClassifier(nn.Module):
    """What goes into the graph: the prompted classifier with its prompt as a constant, taking the
    inputs ``names`` in their order (a bi-encoder's pair included)."""

    def __init__(self, model: LoadedModel, names: list[str]):
        super().__init__()
        self.classifier = model.classifier
        self.register_buffer("prompt", model.classifier.prompt_embeddings().detach().clone())
        self.names = names

    def forward(self, *inputs):
        return self.classifier(**dict(zip(self.names, inputs, strict=True)), prompt=self.prompt)


def graph_inputs(model: LoadedModel, tokenizer) -> list[str]:
    """The graph's inputs, in order: ids and mask, token types where the family takes them, and a
    bi-encoder's second sentences."""
    if model.classifier.head_config.separate_pairs:
        return ["input_ids", "attention_mask", *PAIR_INPUTS]
    return ["input_ids", "attention_mask"] + (["token_type_ids"] if _uses_token_types(model, tokenizer) else [])


def graph_tokenizer(model: LoadedModel):
    """The tokenizer the graph's inputs come from: the template inside for a templated model, each
    text of a pair on its own for a bi-encoder."""
    tokenizer = template_tokenizer(
        model.tokenizer, model.spec, max_input_tokens(model), model.classifier.head_config.use_template
    )
    return SeparatePairs(tokenizer) if model.classifier.head_config.separate_pairs else tokenizer


def max_input_tokens(model: LoadedModel) -> int:
    """The longest tokenized input (special tokens and template included) the exported tokenizer lets
    through: the length the model was trained and validated at (``--max-length``), within what the
    position table holds, so a served model reads a long input as training read it."""
    limit = family_max_input_tokens(model.classifier.backbone.config, model.classifier.num_virtual_tokens)
    return min(model.max_length, limit)


def _graph_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in (ir_files(path) if path.suffix == ".xml" else [path]))


def _count_ops(path: Path) -> dict[str, int]:
    import onnx

    if path.suffix != ".onnx":
        return {}
    graph = onnx.load(str(path), load_external_data=False).graph
    counts = Counter(node.op_type for node in graph.node)
    return {op: counts[op] for op in FUSED_OPS if counts.get(op)}


@dataclass
class ExportData:
    """The sentences an export judges and reports on.

    Attributes:
        validation: texts that every choice is made on (parity, int8, default variant).
        validation_labels: their labels, ``None`` for synthetic sentences.
        test, test_labels: reported only; ``None`` when no data is reachable.
        calibration: training texts for static int8 calibration.
        source: where the sentences came from, for the manifest.
    """

    validation: list
    validation_labels: list[int] | None
    test: list | None = None
    test_labels: list[int] | None = None
    calibration: list = field(default_factory=list)
    source: str = "validation split"


def _texts_and_labels(split, spec) -> tuple[list, list[int]]:
    return split_texts(split, spec), column(split, "label")


def _task_data(directory: Path, workspace):
    """The run's data: the caller's workspace, else the data the report names, else None."""
    if workspace is not None:
        return workspace.data
    report_path = directory / REPORT_FILE
    if not report_path.is_file():
        return None
    data_config = load_report(report_path).config.get("data")
    if not data_config:
        return None

    try:
        return load_task_data(DataConfig.from_dict(data_config))
    except (SkeletonError, TypeError, ValueError):
        return None


def export_data(directory: Path, workspace, model: LoadedModel, config: ExportConfig) -> ExportData:
    """Validation, test and calibration sentences recreated from the run's seed and data settings;
    synthetic sentences of vocabulary words when no data is reachable (parity still runs)."""
    data = _task_data(directory, workspace)
    if data is None:
        rng = np.random.default_rng(0)
        vocabulary = [t for t in model.tokenizer.get_vocab() if t.isalpha()]
        texts = [" ".join(rng.choice(vocabulary, 12)) for _ in range(max(config.parity_samples, 256))]
        if model.spec.is_pair:
            texts = [(t, t[::-1]) for t in texts]
        return ExportData(texts, None, calibration=texts[: config.calibration_samples], source="synthetic")
    validation, validation_labels = _texts_and_labels(data.validation, model.spec)
    test, test_labels = _texts_and_labels(data.test, model.spec)
    train = data.train.shuffle(seed=0).select(range(min(config.calibration_samples, len(data.train))))
    calibration, _ = _texts_and_labels(train, model.spec)
    return ExportData(validation, validation_labels, test, test_labels, calibration)


def _accuracy(logits: np.ndarray, labels: list[int] | None) -> float | None:
    if labels is None:
        return None
    return float(100.0 * (logits.argmax(-1) == np.array(labels)).mean())


class _Judge:
    """Runs graphs on the export's sentences and measures what the bar and the report need."""

    def __init__(self, model: LoadedModel, tokenizer, data: ExportData, reference: np.ndarray, threads: int | None):
        self.tokenizer = tokenizer
        self.data = data
        self.reference = reference  # PyTorch logits of the first parity sentences
        self.num_labels = model.spec.num_labels
        self.vocab_size = model.classifier.backbone.config.vocab_size
        self.pairs = model.classifier.head_config.separate_pairs  # graphs take pairs of sentences
        self.threads = threads

    def encode(self, texts: list) -> dict[str, np.ndarray]:
        return tokenize(self.tokenizer, texts, self.tokenizer.model_max_length)

    def runtime(self, variant: str, path: Path) -> Runtime:
        try:
            return open_graph(runtime_of(variant), path, RuntimeOptions(threads=self.threads, spinning=False))
        except Exception as error:  # the runtime rejects the graph: say which variant
            raise SkeletonError(
                f"{runtime_of(variant)} cannot load the {variant} graph: {_first_line(error)}"
            ) from error

    def measure(self, variant: str, path: Path, with_test: bool = True) -> tuple[dict, np.ndarray]:
        """Size, fused ops, parity with PyTorch, validation (and test) accuracy; and the validation logits."""
        runtime = self.runtime(variant, path)
        logits = batched_logits(runtime, self.encode, self.data.validation, self.num_labels)
        parity = logits[: len(self.reference)]
        info = {
            "runtime": runtime_of(variant),
            "file": path.name,
            "bytes": _graph_bytes(path),
            "fused_ops": _count_ops(path),
            "max_abs_diff": float(np.abs(parity - self.reference).max()),
            "validation_accuracy": _accuracy(logits, self.data.validation_labels),
        }
        if with_test:
            info.update(self.test_accuracy(variant, path, runtime))
        return info, logits

    def test_accuracy(self, variant: str, path: Path, runtime: Runtime | None = None) -> dict:
        """``{"test_accuracy": ...}`` of one graph (reported only); empty without test data."""
        if self.data.test is None:
            return {}
        runtime = runtime or self.runtime(variant, path)
        test_logits = batched_logits(runtime, self.encode, self.data.test, self.num_labels)
        return {"test_accuracy": _accuracy(test_logits, self.data.test_labels)}


def _trace(model: LoadedModel, tokenizer, target: Path, opset: int) -> list[str]:
    """Trace the prompted classifier (prompt as a constant) to ``target``; returns the input names."""
    names = graph_inputs(model, tokenizer)
    wrapper = OnnxClassifier(model, names).eval()
    if model.spec.is_pair:
        sample = tokenize(tokenizer, [("a short sentence", "and its pair"), ("another", "one more")])
    else:
        sample = tokenize(tokenizer, ["a short sentence", "another one, a little longer"])
    args = tuple(torch.from_numpy(sample[n]).long() for n in names)
    dynamic = {n: {0: "batch", 1: "sequence"} for n in names}
    dynamic["logits"] = {0: "batch"}
    with torch.no_grad():
        torch.onnx.export(
            wrapper,
            args,
            str(target),
            input_names=names,
            output_names=["logits"],
            dynamic_axes=dynamic,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    return names


def _uses_token_types(model: LoadedModel, tokenizer) -> bool:
    config = model.classifier.backbone.config
    return (
        "token_type_ids" in tokenizer("a").keys()
        and getattr(config, "type_vocab_size", 0) > 0
        and get_architecture(config.model_type).uses_token_type_ids
    )


def _latencies(graphs: dict[str, tuple[str, Path]], vocab_size: int, config: ExportConfig, pairs: bool) -> dict:
    """name -> {"BxT": median ms}: every (runtime name, graph) timed at every shape (B pairs of T-token
    sentences for a bi-encoder, ``pairs``), calls alternating."""
    options = RuntimeOptions(threads=config.threads, spinning=False)
    runtimes = {name: open_graph(runtime, path, options) for name, (runtime, path) in graphs.items()}
    result: dict[str, dict[str, float]] = {name: {} for name in graphs}
    for batch, tokens in config.latency_shapes:
        encoded = synthetic_batch(batch, tokens, vocab_size, pairs=pairs)
        calls = {name: (lambda r=runtime, e=encoded: r.run(e)) for name, runtime in runtimes.items()}
        timings = time_alternating(calls, repeats=config.latency_repeats, warmup=2, max_seconds=30.0)
        for name, timing in timings.items():
            result[name][f"{batch}x{tokens}"] = round(timing.median_ms, 3)
    return result


def _serving_speeds(graphs: dict[str, tuple[str, Path]], judge: _Judge, max_tokens: int, config: ExportConfig):
    """name -> {batch: sentences/s}: each graph classifying the first ``serving_samples`` validation
    sentences end to end (tokenizer included, each batch padded to its bucket as predict and serve run it)
    at each of ``serving_batches``, the sentences taken in their order as a server takes arrivals
    (:func:`in_arrival_order`); calls alternate between the graphs, after one untimed call per bucket shape the
    sentences meet (what a runtime compiles or tunes on first sight; a whole untimed pass at batch 1 ran each of
    the few shapes dozens of times)."""
    texts = judge.data.validation[: config.serving_samples]
    options = RuntimeOptions(threads=config.threads, spinning=False)
    pad_id, pad_left = judge.tokenizer.pad_token_id or 0, judge.tokenizer.padding_side == "left"
    result: dict[str, dict[str, float]] = {name: {} for name in graphs}
    buckets = Buckets.for_model(max_tokens, max(config.serving_batches))
    runners = {
        name: BucketedRuntime(open_graph(runtime, path, options), buckets, pad_id, pad_left)
        for name, (runtime, path) in graphs.items()
    }
    for batch in config.serving_batches:
        for encoded in _one_batch_per_shape(judge.encode, texts, batch, buckets):
            for runner in runners.values():
                runner.run(encoded)
        calls = {
            name: (lambda r=runner, b=batch: in_arrival_order(r, judge.encode, texts, judge.num_labels, b))
            for name, runner in runners.items()
        }
        timings = time_alternating(calls, repeats=3, warmup=0, min_repeats=3)
        for name, timing in timings.items():
            result[name][str(batch)] = round(len(texts) / (timing.median_ms / 1000), 1)
    return result


def _one_batch_per_shape(encode, texts: list, batch_size: int, buckets: Buckets) -> list[dict[str, np.ndarray]]:
    """One encoded batch for each bucket shape that ``texts``, ``batch_size`` at a time in arrival order, pad to."""
    by_shape: dict[tuple[int, int], dict[str, np.ndarray]] = {}
    for start in range(0, len(texts), batch_size):
        encoded = encode(texts[start : start + batch_size])
        rows, tokens = encoded["input_ids"].shape  # (batch, tokens)
        by_shape.setdefault(buckets.shape(rows, tokens), encoded)
    return list(by_shape.values())


def in_arrival_order(runtime, encode, texts: list, num_labels: int, batch_size: int) -> np.ndarray:
    """Logits of ``texts``, ``batch_size`` at a time in the order given: what a server batches is what
    arrived together, whatever its lengths. ``batched_logits`` sorts a whole corpus by length first, as
    ``predict`` does, and pads far less: the serving figures of the README's SST-2 model (int8, AVX2 EPYC)
    were 248 sentences/s at batch 32 sorted, where the raw loop of ``benchmarks/serve_load.py`` over
    arrivals measured 169, and serve's runtime was chosen by the sorted figure."""
    chunks = [texts[start : start + batch_size] for start in range(0, len(texts), batch_size)]
    logits = [batched_logits(runtime, encode, chunk, num_labels, batch_size) for chunk in chunks]
    return np.concatenate(logits) if logits else np.zeros((0, num_labels), dtype=np.float32)


def _measure_serving(variants: dict[str, dict], graphs: dict, judge: _Judge, max_tokens: int, config) -> dict | None:
    """Each shipped graph's ``serving`` figures (:func:`_serving_speeds`) into ``variants``; the choice per use."""
    for name, figures in _serving_speeds(graphs, judge, max_tokens, config).items():
        variants[name]["serving"] = figures
    samples = min(config.serving_samples, len(judge.data.validation))
    return runtime_choice(variants, config.serving_batches, samples)


def runtime_choice(variants: dict[str, dict], batches: tuple[int, ...], samples: int) -> dict | None:
    """The graph ``predict`` runs (the most sentences/s at the smallest measured batch) and the one ``serve``
    runs, among the variants that passed the bar, from their ``serving`` figures. A server runs every batch size
    from one sentence (light load) to its largest (saturated), so ``serve`` runs the graph that loses least
    against the fastest graph at any measured batch (the largest of its worst shares; of equals, the faster at
    the largest batch). The README's SST-2 model on the AVX2 EPYC: int8 at 378 / 319 sentences/s (batch 1 /
    32), openvino-fp32 at 258 / 329; the most at 32 chose openvino-fp32, whose server then answered one client
    in 8.3 ms (p50) against int8's 4.1 (``benchmarks/results/serve_sst2_minilm/runtime_choice/``)."""
    measured = {n: v["serving"] for n, v in variants.items() if v.get("passes_bar", True) and v.get("serving")}
    if not measured:
        return None
    sizes = [str(b) for b in sorted(batches)]
    one, many = sizes[0], sizes[-1]
    best = {b: max(figures[b] for figures in measured.values()) for b in sizes}
    share = {n: min(figures[b] / best[b] for b in sizes) for n, figures in measured.items()}
    predict = max(measured, key=lambda n: measured[n][one])
    serve = max(measured, key=lambda n: (share[n], measured[n][many]))
    shares = ", ".join(f"{measured[serve][b] / best[b]:.0%} at batch {b}" for b in sizes)
    return {
        "predict": predict,
        "serve": serve,
        "why": f"end to end, tokenizer included, on {samples} validation sentences: {predict} classified the most "
        f"at batch {one} ({measured[predict][one]:,.0f}/s); {serve} lost least against the fastest graph at any "
        f"batch ({shares} of the fastest)",
    }


def _speed_score(latency_ms: dict[str, float]) -> float:
    """Geometric mean latency over the timed shapes: lower is faster."""
    return math.exp(sum(math.log(v) for v in latency_ms.values()) / len(latency_ms))


def export_directory(
    directory: str | Path,
    config: ExportConfig | None = None,
    workspace=None,
    reporter: Reporter = SILENT,
) -> ExportSummary:
    """Export the model in ``directory`` to ``directory/onnx``, verify it, and return what was written.

    Returns:
        The summary (also merged into ``report.json`` under ``export``): per variant its file, size,
        parity, validation and test accuracy, latency and fused-op counts; the int8 candidates; the
        default variant.
    """
    config = config or ExportConfig()
    directory = Path(directory)
    for needed in (META_FILE, MODEL_FILE, CONFIG_FILE):
        if not (directory / needed).is_file():
            raise SkeletonError(f"{directory} is not a compressed model directory: {needed} is missing")
    started = time.perf_counter()
    model = load(directory, device="cpu", attn_implementation="eager")
    tokenizer = graph_tokenizer(model)
    data = export_data(directory, workspace, model, config)
    final = directory / ONNX_DIR
    work = directory / f".{ONNX_DIR}.partial"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        manifest = _export_into(work, model, tokenizer, data, config, reporter)
        if final.exists():
            shutil.rmtree(final)
        work.rename(final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    # the directory is relative to the model directory, which a compress run renames at the end
    result = ExportSummary.of(manifest, ONNX_DIR, time.perf_counter() - started)
    report_path = directory / REPORT_FILE
    if report_path.is_file():
        report = load_report(report_path)
        report.export = result
        report.save(report_path)
    return result


def _export_into(work: Path, model: LoadedModel, tokenizer, data: ExportData, config, reporter) -> Manifest:
    """Write every variant and the manifest into ``work``; returns the manifest."""
    reporter.message("export: tracing the fp32 graph")
    names = _trace(model, tokenizer, work / VARIANT_FILES["fp32"], config.opset)
    # PyTorch reference logits through the training-time encoding (template filled as text), so the
    # check also proves that the exported tokenizer reproduces it
    reference = model.logits(data.validation[: config.parity_samples], 32)
    tokenizer.save_pretrained(str(work))
    _write_config(model, work)
    judge = _Judge(model, tokenizer, data, reference, config.threads)
    variants, fp32_logits = _float_variants(work, model, judge, config, reporter)
    rejected: dict[str, dict] = {}
    built = {v: _built_candidates(work, v, judge, config) for v in _reduced_variants(config, rejected)}
    _time_together(work, variants, built, judge, config, reporter)
    candidates: list[dict] = []
    for variant, tried in built.items():
        shipped, problem = _reduced_variant(
            work, variant, tried, judge, variants["fp32"], fp32_logits, config, reporter
        )
        candidates += tried
        if shipped is not None:
            variants[variant] = shipped
        else:
            rejected[variant] = {"reason": problem}
            reporter.message(f"export: {variant} not shipped: {problem}")
    graphs = {n: (v["runtime"], work / v["file"]) for n, v in variants.items()}
    shippable = [n for n, v in variants.items() if v.get("passes_bar", True)]
    default = min(shippable, key=lambda n: _speed_score(variants[n]["latency_ms"]))
    reporter.message("export: timing each shipped graph end to end, tokenizer included")
    choice = _measure_serving(variants, {n: graphs[n] for n in shippable}, judge, max_input_tokens(model), config)
    manifest = Manifest(
        task=model.spec.name,
        label_names=list(model.spec.label_names),
        task_spec=model.spec.to_dict(),
        inputs=names,
        opset=config.opset,
        num_virtual_tokens=model.classifier.num_virtual_tokens,
        max_input_tokens=max_input_tokens(model),
        template_in_tokenizer=bool(model.classifier.head_config.use_template),
        variants=variants,
        rejected_variants=rejected,
        reduced_candidates=candidates,
        int8_bar={"max_accuracy_drop": config.int8_max_drop, "min_agreement": config.int8_min_agreement},
        default_variant=default,
        runtime_choice=choice,
        judged_on=data.source,
        cpu={
            "int8_instructions": int8_instructions(),
            "vnni": has_vnni(),
            "native_bf16": native_bf16(),
            "flags_simulated": flags_simulated(),
        },
        versions=library_versions(),
    )
    manifest.files = {p.name: sha256_file(p) for p in sorted(work.iterdir()) if p.is_file()}
    manifest.save(work / MANIFEST_FILE)
    return manifest


def _reduced_variants(config: ExportConfig, rejected: dict[str, dict]) -> list[str]:
    """The int8 and bf16 variants to build here; the ones this machine cannot build go to ``rejected``."""
    wanted = [v for v in REDUCED_VARIANTS if v in config.variants]
    built = []
    for variant in wanted:
        if variant.startswith("openvino") and not OpenVinoRuntime.available():
            rejected[variant] = {"reason": "OpenVINO is not installed (pip install openvino nncf)"}
        elif variant == "openvino-bf16" and not native_bf16():
            rejected[variant] = {"reason": "this CPU has no native bf16 (AVX512-BF16 or AMX), where bf16 is emulated"}
        else:
            built.append(variant)
    return built


def _float_variants(work: Path, model, judge: _Judge, config: ExportConfig, reporter) -> tuple[dict, np.ndarray]:
    """fp32, the fused graph and OpenVINO's fp32 (when asked for), each checked against PyTorch; fp32's
    validation logits. An onnxruntime graph off by more than the tolerance fails the export; an OpenVINO one
    is left out."""
    variants: dict[str, dict] = {}
    fp32_logits = None
    for variant in ("fp32", "optimized", "openvino-fp32"):
        if variant not in config.variants or (variant == "openvino-fp32" and not OpenVinoRuntime.available()):
            continue
        path = work / VARIANT_FILES[variant]
        if variant == "optimized":
            family = ort_model_type(model.classifier.backbone.config)
            optimize_graph(work / VARIANT_FILES["fp32"], path, family, _head_size(model))
        info, logits = judge.measure(variant, path)
        if info["max_abs_diff"] > config.fp32_tolerance:
            difference, tolerance = info["max_abs_diff"], config.fp32_tolerance
            problem = f"{variant} graph differs from PyTorch by {difference:.2e} (tolerance {tolerance:.0e})"
            if variant == "openvino-fp32":
                reporter.message(f"export: {variant} not shipped: {problem}")
                continue
            raise SkeletonError(problem)
        if variant == "fp32":
            fp32_logits = logits
        info["argmax_agreement_fp32"] = float((logits.argmax(-1) == fp32_logits.argmax(-1)).mean())
        variants[variant] = info
        reporter.message(f"export: {variant}: {_summary(info)}")
    return variants, fp32_logits


def _summary(info: dict) -> str:
    parts = [f"{info['bytes'] / 1e6:.1f} MB"]
    if "max_abs_diff" in info:
        parts.append(f"max |diff| {info['max_abs_diff']:.2e}")
    for key in ("validation_accuracy", "test_accuracy"):
        if info.get(key) is not None:
            parts.append(f"{key.replace('_accuracy', '')} {info[key]:.2f}")
    if "argmax_agreement_fp32" in info:
        parts.append(f"agreement {100 * info['argmax_agreement_fp32']:.1f}%")
    return ", ".join(parts)


def _builders(variant: str, work: Path, judge: _Judge, config: ExportConfig) -> list[tuple[dict, str, object]]:
    """(method, file suffix, build(target)) for every candidate of one reduced-precision variant."""
    fp32 = work / VARIANT_FILES["fp32"]
    calibration = [judge.encode(judge.data.calibration[s : s + 16]) for s in range(0, len(judge.data.calibration), 16)]
    if variant == "int8":
        fused = work / VARIANT_FILES["optimized"] if "optimized" in config.variants else None
        return [
            (m.to_dict(), ".onnx", lambda target, m=m: quantize(m, fp32, fused, target, calibration))
            for m in int8_methods(config.int8_kinds)
            if m.kind != "dynamic-fused" or fused is not None
        ]
    if variant == "openvino-int8":
        return [
            (
                {"name": f"nncf/{m}", "kind": "nncf", "setting": m},
                ".xml",
                lambda t, m=m: nncf_quantize(m, fp32, t, calibration),
            )
            for m in config.nncf_methods
        ]
    # bf16: the fp32 graph under the bf16 inference-precision hint, one candidate
    return [
        ({"name": "openvino/bf16-hint", "kind": "precision-hint"}, ".onnx", lambda target: shutil.copy(fp32, target))
    ]


def _time_together(work: Path, variants: dict, built: dict[str, list[dict]], judge: _Judge, config, reporter) -> None:
    """``latency_ms`` of every float variant and every built int8 or bf16 candidate, all timed in one
    alternated pass: the choice within each variant and the default across them read the same timings."""
    graphs = {name: (info["runtime"], work / info["file"]) for name, info in variants.items()}
    for variant, candidates in built.items():
        graphs |= {f"{variant}/{i}": (c["runtime"], c["path"]) for i, c in enumerate(candidates) if "path" in c}
    shapes = ", ".join(f"{b}x{t}" for b, t in config.latency_shapes)
    reporter.message(f"export: timing {len(graphs)} graphs together at {shapes} (batch x tokens)")
    latency = _latencies(graphs, judge.vocab_size, config, judge.pairs)
    for name, info in variants.items():
        info["latency_ms"] = latency[name]
    for variant, candidates in built.items():
        for i, candidate in enumerate(candidates):
            if "path" in candidate:
                candidate["latency_ms"] = latency[f"{variant}/{i}"]


def _reduced_variant(
    work: Path, variant: str, candidates: list[dict], judge: _Judge, fp32: dict, fp32_logits, config, reporter
) -> tuple[dict | None, str | None]:
    """Of an int8 or bf16 variant's built and timed candidates, judge on validation against fp32, fastest
    first, until one passes the bar (without the bar, the fastest ships judged). That ships what judging
    every candidate and keeping the fastest that passed would, for one or a few validation passes instead
    of one per candidate (12 int8 candidates on a CPU without VNNI). The test split (reported only) runs
    through the shipped candidate alone; the candidates' scratch directory is removed.

    Returns:
        (the shipped variant's info or None, why none shipped or None); ``candidates`` record their verdicts.
    """
    built = [c for c in candidates if "path" in c]
    chosen = None
    for candidate in sorted(built, key=lambda c: _speed_score(c["latency_ms"])):
        if chosen is not None:
            candidate["not_judged"] = "a faster candidate ships"
            continue
        _judge_candidate(candidate, judge, fp32, fp32_logits, config, reporter)
        if "error" not in candidate and (candidate["problem"] is None or not config.int8_bar):
            chosen = candidate
    if chosen is not None:
        chosen.update(judge.test_accuracy(variant, chosen["path"]))
    target = work / VARIANT_FILES[variant]
    if chosen is not None and not target.exists():  # bf16 runs the fp32 file itself
        for source, destination in zip(_graph_files(chosen["path"]), _graph_files(target), strict=True):
            source.replace(destination)
    shutil.rmtree(_scratch(work, variant))
    for candidate in candidates:
        candidate.pop("path", None)
    if chosen is None:
        problems = "; ".join(f"{c['method']['name']}: {c.get('problem') or c.get('error')}" for c in candidates)
        return None, f"no {variant} candidate passed the bar ({problems})"
    shipped = {k: v for k, v in chosen.items() if k not in ("problem", "variant", "precision")}
    shipped.update(file=target.name, passes_bar=chosen["problem"] is None)
    return shipped, None


def _scratch(work: Path, variant: str) -> Path:
    """Where a variant's candidates are built, until one ships."""
    return work / f".{variant}"


def _built_candidates(work: Path, variant: str, judge: _Judge, config) -> list[dict]:
    """Every candidate of ``variant``, built into its scratch directory and run once on two validation
    sentences (``path`` set), or the error of a method the quantiser or runtime cannot do for this graph."""
    scratch = _scratch(work, variant)
    scratch.mkdir()
    runtime = runtime_of(variant)
    what = {"variant": variant, "runtime": runtime, "precision": precision_of(runtime)}
    candidates = []
    for index, (method, suffix, build) in enumerate(_builders(variant, work, judge, config)):
        path = scratch / f"candidate-{index}{suffix}"
        try:
            build(path)
            judge.runtime(variant, path).run(judge.encode(judge.data.validation[:2]))
        except Exception as error:
            candidates.append({**what, "method": method, "error": _first_line(error)})
            continue
        info = {"file": path.name, "bytes": _graph_bytes(path), "fused_ops": _count_ops(path)}
        candidates.append({**what, **info, "method": method, "path": path})
    return candidates


def _judge_candidate(candidate: dict, judge: _Judge, fp32: dict, fp32_logits, config, reporter) -> None:
    """One built candidate's validation accuracy, agreement with fp32 and the bar's verdict, into ``candidate``."""
    variant, method = candidate["variant"], candidate["method"]
    try:
        info, logits = judge.measure(variant, candidate["path"], with_test=False)
    except Exception as error:  # it ran two sentences, not the whole split
        candidate["error"] = _first_line(error)
        return
    info.pop("max_abs_diff")  # judged against fp32 on validation, not by logit parity
    candidate.update(info)
    _judge_against_fp32(candidate, logits, fp32, fp32_logits, judge.data.validation_labels, config)
    problem = f" ({candidate['problem']})" if candidate["problem"] else ""
    reporter.message(f"export: {variant} {method['name']}: {_summary(candidate)}{problem}")


def _first_line(error: Exception) -> str:
    """What a runtime or quantiser said, in one line of at most 300 characters (its type where it said nothing)."""
    lines = str(error).splitlines()
    return (lines[0] if lines and lines[0].strip() else type(error).__name__)[:300]


def _graph_files(path: Path) -> list[Path]:
    return ir_files(path) if path.suffix == ".xml" else [path]


def _judge_against_fp32(info: dict, logits, fp32: dict, fp32_logits, labels, config: ExportConfig) -> None:
    """Agreement with fp32, the accuracy difference with its interval, and the bar's verdict (``problem``)."""
    info["argmax_agreement_fp32"] = float((logits.argmax(-1) == fp32_logits.argmax(-1)).mean())
    drop = None
    if labels is not None:
        drop = fp32["validation_accuracy"] - info["validation_accuracy"]
        # candidate minus fp32 accuracy, with a 95% paired bootstrap interval over the same sentences
        info["validation_difference_vs_fp32"] = paired_bootstrap(
            logits.argmax(-1) == np.asarray(labels), fp32_logits.argmax(-1) == np.asarray(labels)
        )
    bar = Int8Bar(config.int8_max_drop, config.int8_min_agreement)
    info["problem"] = bar.problem(drop, info["argmax_agreement_fp32"])


def optimize_graph(source: Path, target: Path, model_type: str, head_size: int | None = None) -> dict[str, int]:
    """onnxruntime's offline transformer fusions of ``source`` into ``target``.

    The fusion is told neither the head count nor the hidden size (0, 0): it then reads each
    layer's own from the graph, which is what a model with per-layer head counts needs (given
    one count, it would fuse every layer with it). ``model_type`` picks the fusion patterns
    (``architectures.ort_model_type``). With ``head_size``, every fused attention node's head count
    is checked against the width of its weights.

    Returns:
        per fused Attention node, its head count.
    """
    from onnx import numpy_helper
    from onnxruntime.transformers.optimizer import optimize_model

    with quiet_logging():  # it warns that per-layer widths differ from the input's, which is the point
        optimized = optimize_model(str(source), model_type=model_type, num_heads=0, hidden_size=0, opt_level=1)
    graph = optimized.model.graph
    weights = {init.name: init for init in graph.initializer}
    heads = {}
    for node in graph.node:
        if node.op_type != "Attention":
            continue
        count = next(a.i for a in node.attribute if a.name == "num_heads")
        heads[node.name] = count
        weight = weights.get(node.input[1])
        if head_size and weight is not None:
            width = numpy_helper.to_array(weight).shape[1] // 3  # (hidden, 3 x heads x head size)
            if width != count * head_size:
                raise SkeletonError(
                    f"fused attention {node.name} has {count} heads but {width // head_size} in its weights"
                )
    optimized.save_model_to_file(str(target))
    return heads


def _head_size(model: LoadedModel) -> int:
    return ffn_layers(model.classifier.backbone)[0].head_size


def _write_config(model: LoadedModel, directory: Path) -> None:
    """config.json with labels, for optimum's ORTModelForSequenceClassification and pipelines."""
    config = copy.deepcopy(model.classifier.backbone.config)
    config.id2label = dict(enumerate(model.spec.label_names))
    config.label2id = {name: index for index, name in enumerate(model.spec.label_names)}
    config.architectures = classification_architectures(config)
    config.skeleton_task = model.spec.name
    config.save_pretrained(str(directory))


__all__ = ["export_directory", "ONNX_DIR", "MANIFEST_FILE", "VARIANT_FILES"]
