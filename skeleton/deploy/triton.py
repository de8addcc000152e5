"""A Triton Inference Server model repository for an exported model, for users who outgrow one process.

``OUT/`` holds three models:
- ``<name>_onnx``: the ONNX graph on the onnxruntime backend, with dynamic batching (preferred batch
  sizes, a maximum queue delay) and an instance group;
- ``<name>_tokenizer``: a Python-backend model (:mod:`skeleton.deploy.triton_tokenizer`) that turns texts
  into the graph's token ids with the exported tokenizer (task template included);
- ``<name>``: an ensemble wiring the two, so clients send ``TEXT`` (and ``TEXT_PAIR``) strings and
  get ``logits`` back; the label names are in ``<name>_onnx/labels.txt``. A bi-encoder's tokenizer
  encodes TEXT and TEXT_PAIR apart, into the graph's ``pair_input_ids`` and ``pair_attention_mask``.

Start Triton on it with ``tritonserver --model-repository OUT`` (the Python backend needs
``pip install tokenizers`` in its environment).
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

from skeleton.core.architectures import pretrained_tokenizer
from skeleton.core.config import TritonConfig
from skeleton.core.errors import SkeletonError
from skeleton.core.file_names import MODEL_INPUTS, PAIR_INPUTS
from skeleton.core.outputs import atomic_directory
from skeleton.core.tasks import saved_task
from skeleton.deploy.manifest import read_manifest, resolve_onnx_dir
from skeleton.deploy.runtimes import family_of, runtime_of


def _tensor(name: str, data_type: str, dims: list[int], extra: str = "") -> str:
    return f'  {{ name: "{name}" data_type: {data_type} dims: [ {", ".join(map(str, dims))} ]{extra} }}'


def _block(key: str, entries: list[str]) -> str:
    return f"{key} [\n" + ",\n".join(entries) + "\n]\n"


def _parameters(values: dict[str, str]) -> str:
    return "".join(f'parameters {{ key: "{k}" value: {{ string_value: "{v}" }} }}\n' for k, v in values.items())


def onnx_config(name: str, inputs: list[str], num_labels: int, config: TritonConfig) -> str:
    """config.pbtxt of the ONNX model (batch dimension implicit: max_batch_size > 0)."""
    sizes = ", ".join(map(str, config.preferred_batch_sizes))
    return (
        f'name: "{name}"\nbackend: "onnxruntime"\nmax_batch_size: {config.max_batch_size}\n'
        + _block("input", [_tensor(i, "TYPE_INT64", [-1]) for i in inputs])
        + _block("output", [_tensor("logits", "TYPE_FP32", [num_labels], ' label_filename: "labels.txt"')])
        + f"dynamic_batching {{\n  preferred_batch_size: [ {sizes} ]\n"
        f"  max_queue_delay_microseconds: {config.max_queue_delay_us}\n}}\n"
        f"instance_group [ {{ count: {config.instances} kind: {config.kind} }} ]\n"
    )


def tokenizer_config(name: str, inputs: list[str], pair: bool, parameters: dict[str, str]) -> str:
    """config.pbtxt of the Python-backend tokenizer (no batching: one request's texts at a time)."""
    texts = [_tensor("TEXT", "TYPE_STRING", [-1])] + ([_tensor("TEXT_PAIR", "TYPE_STRING", [-1])] if pair else [])
    return (
        f'name: "{name}"\nbackend: "python"\nmax_batch_size: 0\n'
        + _block("input", texts)
        + _block("output", [_tensor(i, "TYPE_INT64", [-1, -1]) for i in inputs])
        + "instance_group [ { count: 1 kind: KIND_CPU } ]\n"
        + _parameters(parameters)
    )


def ensemble_config(name: str, tokenizer: str, onnx: str, inputs: list[str], pair: bool, num_labels: int) -> str:
    """config.pbtxt of the ensemble: texts -> tokenizer -> ONNX model -> logits."""
    texts = ["TEXT", "TEXT_PAIR"] if pair else ["TEXT"]
    tokenize_inputs = " ".join(f'input_map {{ key: "{t}" value: "{t}" }}' for t in texts)
    tokenize_outputs = " ".join(f'output_map {{ key: "{i}" value: "{i}" }}' for i in inputs)
    model_inputs = " ".join(f'input_map {{ key: "{i}" value: "{i}" }}' for i in inputs)
    logits = 'output_map { key: "logits" value: "logits" }'
    return (
        f'name: "{name}"\nplatform: "ensemble"\nmax_batch_size: 0\n'
        + _block("input", [_tensor(t, "TYPE_STRING", [-1]) for t in texts])
        + _block("output", [_tensor("logits", "TYPE_FP32", [-1, num_labels])])
        + "ensemble_scheduling {\n  step [\n"
        f'    {{ model_name: "{tokenizer}" model_version: -1 {tokenize_inputs} {tokenize_outputs} }},\n'
        f'    {{ model_name: "{onnx}" model_version: -1 {model_inputs} {logits} }}\n'
        "  ]\n}\n"
    )


def _fastest_onnx_variant(manifest) -> str:
    """The manifest's default when it is an onnxruntime graph, else the fastest onnxruntime graph that passed."""
    onnx = {v: i for v, i in manifest.variants.items() if family_of(runtime_of(v)) == "onnx"}
    if manifest.default_variant in onnx:
        return manifest.default_variant
    passing = [v for v, i in onnx.items() if i.get("passes_bar", True) and "latency_ms" in i]
    if not passing:
        return "fp32"
    return min(passing, key=lambda v: sum(math.log(ms) for ms in onnx[v]["latency_ms"].values()))


def export_triton(directory: str | Path, out: str | Path, config: TritonConfig | None = None) -> Path:
    """Write a Triton model repository for the exported model in ``directory`` to ``out``.

    Returns:
        ``out``. The three models are written beside it and moved in when complete, replacing models
        of the same names; other models in ``out`` stay.
    """
    config = config or TritonConfig()
    onnx_dir = resolve_onnx_dir(directory)
    manifest = read_manifest(onnx_dir)
    variant = config.variant or _fastest_onnx_variant(manifest)
    if variant not in manifest.variants:
        raise SkeletonError(f"variant {variant!r} was not exported; available: {', '.join(manifest.variants)}")
    if family_of(runtime_of(variant)) != "onnx":
        raise SkeletonError(
            f"variant {variant} runs on OpenVINO; this repository serves an ONNX graph on Triton's onnxruntime "
            "backend: choose fp32, optimized or int8"
        )
    if not (onnx_dir / "tokenizer.json").is_file():
        raise SkeletonError(f"{onnx_dir} has no tokenizer.json: the Triton tokenizer needs a fast tokenizer")
    model_dir = onnx_dir.parent if onnx_dir.name == "onnx" else onnx_dir
    name = config.name or model_dir.resolve().name
    pair = saved_task(manifest.task, manifest.task_spec).is_pair
    inputs = [i for i in MODEL_INPUTS if i in manifest.inputs]
    onnx_name, tokenizer_name = f"{name}_onnx", f"{name}_tokenizer"

    pad_id = pretrained_tokenizer(str(onnx_dir)).pad_token_id or 0
    parameters = {
        "max_input_tokens": str(manifest.max_input_tokens),
        "pad_to_multiple_of": str(config.pad_to_multiple_of),
        "pad_token_id": str(pad_id),
        "pair_inputs": "true" if pair else "false",
        # a bi-encoder's graph takes each text of a pair encoded on its own (pair_input_ids, pair_attention_mask)
        "pair_encoding": "separate" if PAIR_INPUTS[0] in inputs else "joint",
    }
    num_labels = len(manifest.label_names)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SkeletonError(f"{out} exists and is not a directory")
    # the three models are staged beside OUT, then moved in; other models in OUT are left alone
    with atomic_directory(out.parent / f".{out.name}.{name}.staged", overwrite=True) as work:
        (work / onnx_name / "1").mkdir(parents=True)
        shutil.copy2(onnx_dir / manifest.variants[variant]["file"], work / onnx_name / "1" / "model.onnx")
        (work / onnx_name / "labels.txt").write_text("\n".join(manifest.label_names) + "\n")
        (work / onnx_name / "config.pbtxt").write_text(onnx_config(onnx_name, inputs, num_labels, config))
        (work / tokenizer_name / "1").mkdir(parents=True)
        shutil.copy2(Path(__file__).with_name("triton_tokenizer.py"), work / tokenizer_name / "1" / "model.py")
        shutil.copy2(onnx_dir / "tokenizer.json", work / tokenizer_name / "1" / "tokenizer.json")
        (work / tokenizer_name / "config.pbtxt").write_text(tokenizer_config(tokenizer_name, inputs, pair, parameters))
        (work / name / "1").mkdir(parents=True)  # Triton wants a version directory, even an empty one
        (work / name / "config.pbtxt").write_text(
            ensemble_config(name, tokenizer_name, onnx_name, inputs, pair, num_labels)
        )
    staged = out.parent / f".{out.name}.{name}.staged"
    out.mkdir(parents=True, exist_ok=True)
    for model in (onnx_name, tokenizer_name, name):
        shutil.rmtree(out / model, ignore_errors=True)
        (staged / model).rename(out / model)
    shutil.rmtree(staged)
    return Path(out)


__all__ = ["TritonConfig", "export_triton"]
