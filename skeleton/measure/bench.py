"""``skeleton bench``: how much faster the Skeleton model is than the prompt-tuned model, run every way.

The teacher is the one of the same run, rebuilt from ``DIR/prompt_tuned``
on the original backbone and exported by the same code (its int8 graph is written even when it fails
the accuracy bar: a user quantising with optimum would run it anyway). Both models are timed under
every runtime this machine offers: PyTorch fp32, PyTorch bf16 autocast (CPUs with native bf16) or
fp16 (CUDA), and onnxruntime fp32, optimized and int8. At each (batch, length) point every
model/runtime pair is warmed up, then their calls alternate in one process (:mod:`skeleton.core.timing`).

The headline at each point is the Skeleton model on its fastest *shippable* runtime (an exported
graph that passed the export's checks, as ``skeleton predict`` offers it) against the prompt-tuned model
on its fastest runtime of all. Beside it: the analytic multiply-accumulate count of both models,
the ideal speed-up it implies, and achieved/ideal per runtime.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from skeleton.core.architectures import (
    hidden_size,
    intermediate_size,
    num_heads,
    num_layers,
    pretrained_config,
)
from skeleton.core.config import (
    ONNX_RUNTIMES,
    OPENVINO_RUNTIMES,
    RUNTIME_NAMES,
    TORCH_RUNTIMES,
    BenchConfig,
    ExportConfig,
)
from skeleton.core.data import DataConfig, read_labelled, split_texts
from skeleton.core.device import resolve_device
from skeleton.core.errors import SkeletonError
from skeleton.core.file_names import (
    BENCH_DIR,
    HEAD_CONFIG_FILE,
    MANIFEST_FILE,
    META_FILE,
    MODEL_FILE,
    ONNX_DIR,
    PROMPT_TUNED_DIR,
    REDUCED_VARIANTS,
    REPORT_FILE,
    UNSHIPPED_INT8_DIR,
)
from skeleton.core.machine import describe_cpu, native_bf16
from skeleton.core.modeling import BI_ENCODER
from skeleton.core.outputs import atomic_directory, library_versions, save_classifier
from skeleton.core.progress import SILENT, Reporter
from skeleton.core.reports import BenchReport, CompressReport, Manifest, ModelMeta, TuneReport, load_report
from skeleton.core.tasks import saved_task
from skeleton.core.timing import time_alternating
from skeleton.core.workspace import ModelConfig, Workspace
from skeleton.deploy.buckets import static_lengths
from skeleton.deploy.export import export_directory
from skeleton.deploy.loading import TorchRuntime
from skeleton.deploy.manifest import read_manifest, sha256_file
from skeleton.deploy.registry import open_runtime
from skeleton.deploy.runtimes import (
    OpenVinoRuntime,
    Runtime,
    RuntimeOptions,
    precision_of,
    runtime_of,
    synthetic_batch,
    tokenize,
)
from skeleton.deploy.tokenizer import ExportedTokenizer
from skeleton.measure.bench_report import write_report
from skeleton.method.tuning import skeleton_meta


def offered_runtimes(device: str) -> tuple[str, ...]:
    """Every runtime worth timing on this machine: PyTorch fp32 and its native half precision,
    onnxruntime's graphs, and OpenVINO's (on the CPU, when installed; bf16 where the CPU has it natively)."""
    half = native_half_precision(device)
    openvino: tuple[str, ...] = ()
    if OpenVinoRuntime.available() and not device.startswith("cuda"):
        openvino = tuple(r for r in OPENVINO_RUNTIMES if r != "openvino-bf16" or native_bf16())
    return ("torch-fp32", *((half,) if half else ()), *ONNX_RUNTIMES, *openvino)


def native_half_precision(device: str) -> str | None:
    """The PyTorch half-precision runtime worth timing here: torch-fp16 on CUDA, torch-bf16 on CPUs
    with native bf16 arithmetic (AVX512-BF16 or AMX), else None (emulated bf16 is slower than fp32)."""
    if device.startswith("cuda"):
        return "torch-fp16"
    if native_bf16():
        return "torch-bf16"
    return None


@dataclass
class Contender:
    """One model under one runtime."""

    model: str  # "skeleton" or "prompt_tuned"
    runtime: str
    engine: Runtime
    shippable: bool
    note: str = ""

    @property
    def key(self) -> str:
        return f"{self.model}/{self.runtime}"


def _fingerprint(directory: Path) -> str:
    """Identifies the prompt-tuned model and the code versions a cached teacher was built from."""
    digest = hashlib.sha256()
    for path in sorted((directory / PROMPT_TUNED_DIR).rglob("*")):
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    digest.update(json.dumps(library_versions(), sort_keys=True).encode())
    return digest.hexdigest()


def _report(directory: Path) -> CompressReport | TuneReport:
    path = directory / REPORT_FILE
    if not path.is_file():
        raise SkeletonError(f"{directory} has no {REPORT_FILE}: bench needs a directory written by 'skeleton compress'")
    return load_report(path)


def build_prompt_tuned(directory: Path, reporter: Reporter = SILENT) -> Path:
    """The prompt-tuned model of a compress run, saved and exported like the Skeleton model.

    Cached in ``DIR/bench/prompt_tuned`` and rebuilt when the prompt or the library versions change.
    """
    if not (directory / PROMPT_TUNED_DIR).is_dir():
        raise SkeletonError(
            f"{directory} has no {PROMPT_TUNED_DIR}/: bench needs a directory written by 'skeleton compress'"
        )
    target = directory / BENCH_DIR / PROMPT_TUNED_DIR
    fingerprint = _fingerprint(directory)
    stamp = target / "fingerprint.txt"
    if stamp.is_file() and stamp.read_text() == fingerprint and (target / ONNX_DIR).is_dir():
        return target
    reporter.message("bench: rebuilding and exporting the prompt-tuned model (cached for later runs)")
    config = _report(directory).config
    # the backbone, tokenizer and task only: a few rows stand in for the data, which the export reloads
    few_rows = {**config["data"], "train_samples": 2, "validation_samples": 1, "test_samples": 1}
    workspace = Workspace(DataConfig.from_dict(few_rows), ModelConfig(**config["model"]))
    with atomic_directory(target, overwrite=True) as work:
        classifier = workspace.load_classifier(directory / PROMPT_TUNED_DIR)
        save_classifier(classifier, workspace.tokenizer, work, None, skeleton_meta(workspace))
        TuneReport(config={"data": config["data"]}).save(work / REPORT_FILE)
        export_directory(work, ExportConfig(int8_bar=False), reporter=reporter)
        (work / "fingerprint.txt").write_text(fingerprint)
    return target


def _slim_unshipped_dir(directory: Path, variants: list[str], reporter: Reporter) -> Path:
    """When the Skeleton model's export shipped no graph of some reduced-precision ``variants`` (int8,
    bf16), those built the same way as the teacher's (the fastest candidate, bar or not), so each runtime
    is compared on both sides; not shippable."""
    target = directory / BENCH_DIR / UNSHIPPED_INT8_DIR
    manifest = target / ONNX_DIR / MANIFEST_FILE
    if manifest.is_file():
        written = Manifest.load(manifest)
        if written.source_sha == _slim_sha(directory) and set(variants) <= set(written.variants):
            return target
    reporter.message(f"bench: building the Skeleton model's {', '.join(variants)} graphs that its export did not ship")
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for path in directory.iterdir():
        if path.is_file():
            shutil.copy2(path, target / path.name)
        elif path.name == "prompt":
            shutil.copytree(path, target / path.name)
    export_directory(target, ExportConfig(variants=("fp32", "optimized", *variants), int8_bar=False), reporter=reporter)
    written = Manifest.load(manifest)
    written.source_sha = _slim_sha(directory)
    written.save(manifest)
    return target


def _slim_sha(directory: Path) -> str:
    return sha256_file(directory / MODEL_FILE)


def _graph_contenders(model: str, directory: Path, config: BenchConfig, wanted: set[str]) -> dict[str, Contender]:
    """The exported graphs of one model under their runtimes (onnx-*, openvino-*), as wanted."""
    onnx_dir = directory / ONNX_DIR
    manifest = read_manifest(onnx_dir)
    fixed = static_lengths(config.lengths) if config.static_batch_one and 1 in config.batch_sizes else ()
    options = RuntimeOptions(config.device, config.threads, spinning=False, static_lengths=fixed)
    found = {}
    for variant, info in manifest.variants.items():
        name = runtime_of(variant)
        if name not in wanted:
            continue
        engine = open_runtime(name, onnx_dir, manifest, options)
        shippable = model == "skeleton" and info.get("passes_bar", True)
        note = "" if info.get("passes_bar", True) else "fails the export's accuracy bar"
        found[name] = Contender(model, name, engine, shippable, note)
    return found


def contenders(directory: Path, teacher: Path, config: BenchConfig, reporter: Reporter = SILENT) -> list[Contender]:
    """Every model/runtime pair to time: both models under each runtime both can run."""
    device = str(resolve_device(config.device))
    wanted = set(config.runtimes or offered_runtimes(device))
    result: list[Contender] = []
    for model, model_dir in (("skeleton", directory), ("prompt_tuned", teacher)):
        for name in (n for n in TORCH_RUNTIMES if n in wanted):
            engine = TorchRuntime(model_dir, device=device, precision=precision_of(name))
            # `skeleton predict` runs exported graphs only, so PyTorch is not a shippable Skeleton runtime
            result.append(Contender(model, name, engine, shippable=False))
        graphs = _graph_contenders(model, model_dir, config, wanted)
        missing = [v for v in REDUCED_VARIANTS if runtime_of(v) in wanted - set(graphs)]
        if model == "skeleton" and missing:
            unshipped = _slim_unshipped_dir(directory, missing, reporter)
            extra = _graph_contenders(model, unshipped, config, {runtime_of(v) for v in missing})
            for contender in extra.values():
                contender.shippable = False
                contender.note = "not shipped: the export's accuracy bar rejected it"
            graphs.update(extra)
        result.extend(graphs.values())
    return result


@dataclass
class ModelShape:
    """What the multiply-accumulate count of a (pruned) encoder depends on."""

    hidden_size: int
    head_dim: int
    heads: list[int]
    ffn_sizes: list[int]
    ffn_out_sizes: list[int] | None
    num_virtual_tokens: int
    num_labels: int
    head_kind: str
    vocab_size: int

    @classmethod
    def of(cls, directory: Path) -> ModelShape:
        """Read from a model directory's config.json, skeleton.json and head_config.json."""
        config = pretrained_config(str(directory))  # the family's names for sizes live in architectures
        meta = ModelMeta.load(directory / META_FILE)
        head = json.loads((directory / HEAD_CONFIG_FILE).read_text())
        hidden, heads, layers = hidden_size(config), num_heads(config), num_layers(config)
        # the family config keeps the unpruned layer count; the removed layers are not in the model
        layers = len(getattr(config, "skeleton_layers", None) or range(layers))
        return cls(
            hidden_size=hidden,
            head_dim=hidden // heads,
            heads=getattr(config, "skeleton_heads", None) or [heads] * layers,
            ffn_sizes=getattr(config, "skeleton_ffn_sizes", None) or [intermediate_size(config)] * layers,
            ffn_out_sizes=getattr(config, "skeleton_ffn_out_sizes", None),
            num_virtual_tokens=meta.num_virtual_tokens,
            num_labels=head["num_labels"],
            head_kind=head["kind"],
            vocab_size=config.vocab_size,
        )

    @property
    def pairs(self) -> bool:
        """Whether the model is a bi-encoder: a batch is pairs, each two sequences of the given length."""
        return self.head_kind == BI_ENCODER

    def macs(self, batch: int, tokens: int) -> int:
        """Multiply-accumulates of one call on (batch, tokens) inputs (a bi-encoder's: batch pairs of two
        tokens-long sentences), the soft prompt included."""
        length = tokens + self.num_virtual_tokens
        hidden = self.hidden_size
        total = 0
        for index, (heads, ffn) in enumerate(zip(self.heads, self.ffn_sizes, strict=True)):
            width = heads * self.head_dim
            total += length * hidden * width * 4  # Q, K, V and the output projection
            total += 2 * heads * length * length * self.head_dim  # scores and the weighted sum
            out = hidden if self.ffn_out_sizes is None else self.ffn_out_sizes[index]
            total += length * (hidden * ffn + ffn * out)
        if self.head_kind == "mlm":  # the MLM transform and the vocabulary projection at the mask
            return batch * (total + hidden * hidden + hidden * self.vocab_size)
        if self.pairs:  # two sentences a pair, one linear map of their 4 x hidden features
            return batch * (2 * total + 4 * hidden * self.num_labels)
        return batch * (total + hidden * self.num_labels)


def _summary_of(timing, batch: int) -> dict:
    return {**timing.to_dict(), "sequences_per_second": 1000.0 * batch / timing.median_ms}


def _headline_pair(contenders_: list[Contender], latency: dict) -> tuple[Contender | None, Contender]:
    """(the fastest shippable Skeleton contender or None, the fastest prompt-tuned contender of all)."""
    shippable = [c for c in contenders_ if c.model == "skeleton" and c.shippable]
    prompt_tuned = [c for c in contenders_ if c.model == "prompt_tuned"]
    best_slim = min(shippable, key=lambda c: latency[c.key]["median_ms"]) if shippable else None
    return best_slim, min(prompt_tuned, key=lambda c: latency[c.key]["median_ms"])


def _timed(calls: dict, config: BenchConfig) -> dict:
    """``calls`` timed alternating in one process, as ``config`` says (rounds, warm-up, budget, calls per turn)."""
    budget = (config.repeats, config.warmup, config.max_seconds, config.min_repeats)
    return time_alternating(calls, *budget, calls_per_turn=config.calls_per_turn)


def _timed_contenders(contenders_: list[Contender], call_of, config: BenchConfig) -> dict:
    """Every contender's ``call_of(contender)`` timed: all alternating in one rotation, or with
    ``config.head_to_head`` each runtime's two models alternating on their own (no other runtime's threads
    winding down before a call), one runtime after the other. A headline across two runtimes then compares
    medians of two alternations seconds apart: timing those two against each other would bring the other
    runtime's wind-down back (one real-sentence batch of one: 1.34x so, against 1.86x in the rotation)."""
    if not config.head_to_head:
        return _timed({c.key: call_of(c) for c in contenders_}, config)
    timings = {}
    for runtime in dict.fromkeys(c.runtime for c in contenders_):
        timings.update(_timed({c.key: call_of(c) for c in contenders_ if c.runtime == runtime}, config))
    return timings


def _point(contenders_: list[Contender], shapes: dict[str, ModelShape], batch: int, length: int, config) -> dict:
    """Time every contender at one (batch, length) and derive speed-ups."""
    encoded = synthetic_batch(batch, length, shapes["skeleton"].vocab_size, pairs=shapes["skeleton"].pairs)

    def call_of(contender: Contender):
        return lambda: contender.engine.run(encoded)

    timings = _timed_contenders(contenders_, call_of, config)
    latency = {key: _summary_of(timing, batch) for key, timing in timings.items()}
    macs = {model: shape.macs(batch, length) for model, shape in shapes.items()}
    ideal = macs["prompt_tuned"] / macs["skeleton"]
    runtimes = sorted({c.runtime for c in contenders_}, key=RUNTIME_NAMES.index)
    speedup = {
        r: latency[f"prompt_tuned/{r}"]["median_ms"] / latency[f"skeleton/{r}"]["median_ms"]
        for r in runtimes
        if f"prompt_tuned/{r}" in latency and f"skeleton/{r}" in latency
    }
    best_slim, best_base = _headline_pair(contenders_, latency)
    headline = None
    if best_slim is not None:
        slim_ms, base_ms = latency[best_slim.key]["median_ms"], latency[best_base.key]["median_ms"]
        headline = {
            "skeleton_runtime": best_slim.runtime,
            "skeleton_ms": slim_ms,
            "prompt_tuned_runtime": best_base.runtime,
            "prompt_tuned_ms": base_ms,
            "speedup": base_ms / slim_ms,
            "head_to_head": config.head_to_head,
        }
    return {
        "batch": batch,
        "length": length,
        "tokens_with_prompt": length + shapes["skeleton"].num_virtual_tokens,
        "macs": macs,
        "ideal_speedup": ideal,
        "latency": latency,
        "speedup": speedup,
        "achieved_over_ideal": {r: s / ideal for r, s in speedup.items()},
        "headline": headline,
    }


def task_texts(path: Path, directory: Path) -> list:
    """The texts (or pairs) of a labelled TSV of the model's task, as users send them."""
    if not path.is_file():
        raise SkeletonError(f"data file not found: {path}")
    meta = ModelMeta.load(directory / META_FILE)
    spec = saved_task(meta.task, meta.task_spec)
    return split_texts(read_labelled(path, spec), spec)


def _encoder_for(contender: Contender, onnx_tokenizer, max_tokens: int):
    """texts -> what the contender's run takes: the exported tokenizer (template inside) for ONNX,
    the training-time encoding for PyTorch."""
    if isinstance(contender.engine, TorchRuntime):
        model = contender.engine.model
        return model.encode_arrays
    return lambda texts: tokenize(onnx_tokenizer, texts, max_tokens)


def _end_to_end(contenders_: list[Contender], directory: Path, config: BenchConfig, reporter: Reporter) -> list[dict]:
    """Real sentences of ``config.data`` at each batch size, tokenizer with its template included."""
    texts = task_texts(Path(config.data), directory)
    onnx_dir = directory / ONNX_DIR
    tokenizer = ExportedTokenizer(onnx_dir)
    max_tokens = int(read_manifest(onnx_dir, verify=False).max_input_tokens)
    rng = np.random.default_rng(0)
    rows = []
    encoders = {c.key: _encoder_for(c, tokenizer, max_tokens) for c in contenders_}
    with reporter.bar("bench: real sentences", len(config.batch_sizes)) as bar:
        for batch in config.batch_sizes:
            chunk = [texts[i] for i in rng.choice(len(texts), size=min(batch, len(texts)), replace=False)]

            def call_of(contender: Contender, texts=chunk):
                return lambda: contender.engine.run(encoders[contender.key](texts))

            timings = _timed_contenders(contenders_, call_of, config)
            tokens = tokenize(tokenizer, chunk, max_tokens)["input_ids"].shape[1]
            latency = {key: _summary_of(timing, len(chunk)) for key, timing in timings.items()}
            slim, base = _headline_pair(contenders_, latency)
            headline = None
            if slim is not None:
                slim_ms, base_ms = latency[slim.key]["median_ms"], latency[base.key]["median_ms"]
                headline = {"skeleton": slim.key, "prompt_tuned": base.key, "speedup": base_ms / slim_ms}
                headline["head_to_head"] = config.head_to_head
            rows.append({"batch": len(chunk), "padded_tokens": int(tokens), "latency": latency, "headline": headline})
            bar.advance(1)
    return rows


def machine_description(threads: int) -> dict:
    return {**describe_cpu(), "threads": threads}


def _compress_report(directory: Path) -> CompressReport | None:
    """The compress run's report beside the model, if there is one."""
    path = directory / REPORT_FILE
    report = load_report(path) if path.is_file() else None
    return report if isinstance(report, CompressReport) else None


def _predicted(report: CompressReport | None) -> dict[str, float]:
    """The speed-ups the compress run's latency table predicted ("1x64" -> x), if it used one."""
    costs = report.cost_model if report is not None else None
    return dict(costs["predicted_speedup"]) if costs else {}


def run_bench(directory: str | Path, config: BenchConfig | None = None, reporter: Reporter = SILENT) -> BenchReport:
    """Time the Skeleton model in ``directory`` against its prompt-tuned model; write ``DIR/bench/``.

    Returns:
        The report (also ``DIR/bench/bench.json``, with ``bench.md`` and PNG plots beside it).
    """
    import torch

    config = config or BenchConfig()
    directory = Path(directory)
    if not (directory / ONNX_DIR).is_dir():
        raise SkeletonError(f"{directory} has no {ONNX_DIR}/: run 'skeleton export {directory}' first")
    if config.data and not Path(config.data).is_file():
        raise SkeletonError(f"data file not found: {config.data}")
    threads = config.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    config.threads = threads
    started = time.perf_counter()
    teacher = build_prompt_tuned(directory, reporter)
    max_tokens = int(read_manifest(directory / ONNX_DIR, verify=False).max_input_tokens)
    if max(config.lengths) > max_tokens:
        raise SkeletonError(f"length {max(config.lengths)} exceeds the model's {max_tokens} input tokens")
    pairs = contenders(directory, teacher, config, reporter)
    shapes = {"skeleton": ModelShape.of(directory), "prompt_tuned": ModelShape.of(teacher)}
    points = []
    grid = [(b, n) for b in config.batch_sizes for n in config.lengths]
    with reporter.bar("bench: synthetic grid", len(grid)) as bar:
        for batch, length in grid:
            points.append(_point(pairs, shapes, batch, length, config))
            headline = points[-1]["headline"]
            bar.advance(1, point=f"{batch}x{length}", speedup=headline["speedup"] if headline else float("nan"))
    compressed = _compress_report(directory)  # what the compress run predicted, and how it made the teacher
    report = BenchReport(
        directory=str(directory),
        task=ModelMeta.load(directory / META_FILE).task,
        config=config.to_dict(),
        machine=machine_description(threads),
        versions=library_versions(),
        contenders=[{"model": c.model, "runtime": c.runtime, "shippable": c.shippable, "note": c.note} for c in pairs],
        shapes={model: asdict(shape) for model, shape in shapes.items()},
        points=points,
        end_to_end=_end_to_end(pairs, directory, config, reporter) if config.data else [],
        predicted_speedup=_predicted(compressed),
        seconds=time.perf_counter() - started,
        teacher=compressed.teacher_name if compressed is not None else None,
    )
    write_report(Path(config.output) if config.output else directory / BENCH_DIR, report.to_dict())
    return report


__all__ = ["ModelShape", "build_prompt_tuned", "run_bench"]
