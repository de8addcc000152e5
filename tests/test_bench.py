import json
from dataclasses import replace

import pytest

from skeleton.compression import compress
from skeleton.core.config import BenchConfig, ExportConfig
from skeleton.core.errors import SkeletonError
from skeleton.core.workspace import ModelConfig
from skeleton.deploy.export import export_directory
from skeleton.deploy.predictor import Predictor
from skeleton.measure.bench import ModelShape, run_bench
from skeleton.method.search import SearchConfig
from tests.helpers import tiny_compress_config

QUICK_EXPORT = ExportConfig(
    int8_kinds=("dynamic",), nncf_methods=("default",), latency_shapes=((1, 8),), latency_repeats=2
)


def _toy_shape(head_kind: str) -> ModelShape:
    """One layer: hidden 4, two heads of 2 dims, FFN 8, one prompt token, two labels."""
    return ModelShape(
        hidden_size=4,
        head_dim=2,
        heads=[2],
        ffn_sizes=[8],
        ffn_out_sizes=None,
        num_virtual_tokens=1,
        num_labels=2,
        head_kind=head_kind,
        vocab_size=10,
    )


def test_multiply_accumulates_worked_by_hand():
    shape = _toy_shape("cls")
    # 3 tokens + 1 prompt token = 4 positions: Q, K, V, O 4*4*4*4 = 256; scores and weighted sum
    # 2 heads * 4 * 4 * 2 dims * 2 = 128; FFN 4 * (4*8 + 8*4) = 256; head 4 * 2 = 8; per sequence 648
    assert shape.macs(batch=2, tokens=3) == 2 * 648
    shape.ffn_sizes = [4]  # half the FFN: 4 * (4*4 + 4*4) = 128
    assert shape.macs(batch=1, tokens=3) == 648 - 128


@pytest.fixture(scope="module")
def compressed_dir(tmp_path_factory, tiny_bert_dir, sst2_dir):
    root = tmp_path_factory.mktemp("bench")
    config = tiny_compress_config(
        root / "out",
        tiny_bert_dir,
        sst2_dir,
        model=ModelConfig(model=str(tiny_bert_dir), num_virtual_tokens=4, use_template=False),
        search=SearchConfig(margin=100.0, max_trials=1),
    )
    compress(config)
    export_directory(root / "out", QUICK_EXPORT)
    return root / "out"


def test_bench_times_both_models_and_writes_its_report(compressed_dir, monkeypatch):
    config = BenchConfig(batch_sizes=(1, 2), lengths=(8, 16), repeats=3, min_repeats=3, warmup=1, device="cpu")
    report = run_bench(compressed_dir, config)
    folder = compressed_dir / "bench"
    for name in ("bench.json", "bench.md", "speedup_vs_batch.png", "speedup_vs_length.png", "latency.png"):
        assert (folder / name).is_file(), name
    assert json.loads((folder / "bench.json").read_text())["points"] == json.loads(json.dumps(report.points))
    keys = {f"{c['model']}/{c['runtime']}" for c in report.contenders}
    for model in ("skeleton", "prompt_tuned"):
        graphs = ("onnx-fp32", "onnx-optimized", "onnx-int8", "openvino-fp32", "openvino-int8")
        assert {f"{model}/{r}" for r in ("torch-fp32", *graphs)} <= keys  # OpenVINO on both sides too
    assert len(report.points) == 4
    for point in report.points:
        assert set(point["latency"]) == keys
        latency = {k: v["median_ms"] for k, v in point["latency"].items()}
        head = point["headline"]
        shippable = [
            f"skeleton/{c['runtime']}" for c in report.contenders if c["model"] == "skeleton" and c["shippable"]
        ]
        # the headline pits the fastest shippable Skeleton runtime against the fastest prompt-tuned runtime
        assert head["skeleton_ms"] == min(latency[k] for k in shippable)
        assert head["prompt_tuned_ms"] == min(v for k, v in latency.items() if k.startswith("prompt_tuned/"))
        assert head["speedup"] == pytest.approx(head["prompt_tuned_ms"] / head["skeleton_ms"])
        assert point["ideal_speedup"] == pytest.approx(point["macs"]["prompt_tuned"] / point["macs"]["skeleton"])
        assert point["ideal_speedup"] > 1.0  # half the FFN neurons are gone
        for runtime, speedup in point["speedup"].items():
            assert speedup == pytest.approx(latency[f"prompt_tuned/{runtime}"] / latency[f"skeleton/{runtime}"])
    # PyTorch is timed but `skeleton predict` does not offer it, so it never makes the headline
    assert not any(c["shippable"] for c in report.contenders if c["runtime"].startswith("torch"))
    assert report.machine["threads"] >= 1 and report.versions["onnxruntime"]
    assert "Headline" in (folder / "bench.md").read_text()
    # the unpruned model is named by how the compress run made it, in the report and the Markdown
    from skeleton.core.reports import load_report

    assert report.teacher == load_report(compressed_dir / "report.json").teacher_name
    assert f"over the {report.teacher} model" in (folder / "bench.md").read_text()
    assert "OpenVINO ran every shape on its dynamic graph" in (folder / "bench.md").read_text()  # the default

    # the prompt-tuned model is cached: a second run does not export it again
    import skeleton.deploy.export as export_module

    monkeypatch.setattr(export_module, "export_directory", lambda *a, **k: pytest.fail("baseline rebuilt"))
    run_bench(compressed_dir, BenchConfig(batch_sizes=(1,), lengths=(8,), runtimes=("onnx-fp32",), repeats=2))


def test_head_to_head_times_each_runtimes_two_models_on_their_own(compressed_dir, monkeypatch):
    """``--head-to-head``: every alternation holds one runtime's two models (no other runtime's call between
    them); the headline is the fastest of each side among them."""
    import skeleton.measure.bench as bench

    groups = []
    timed = bench.time_alternating

    def spy(calls, *args, **kwargs):
        groups.append(sorted(calls))
        return timed(calls, *args, **kwargs)

    monkeypatch.setattr(bench, "time_alternating", spy)
    runtimes = ("onnx-fp32", "openvino-fp32")
    config = BenchConfig(
        batch_sizes=(1,), lengths=(8,), runtimes=runtimes, repeats=2, min_repeats=2, warmup=1, device="cpu"
    )
    report = run_bench(compressed_dir, replace(config, head_to_head=True, output=str(compressed_dir / "h2h")))
    (point,) = report.points
    assert groups == [[f"prompt_tuned/{r}", f"skeleton/{r}"] for r in runtimes]
    head, latency = point["headline"], point["latency"]
    assert head["head_to_head"] is True
    assert head["skeleton_ms"] == min(latency[f"skeleton/{r}"]["median_ms"] for r in runtimes)
    assert head["prompt_tuned_ms"] == min(latency[f"prompt_tuned/{r}"]["median_ms"] for r in runtimes)
    markdown = (compressed_dir / "h2h" / "bench.md").read_text()
    assert "Each runtime's two models alternated on their own" in markdown
    groups.clear()
    run_bench(compressed_dir, replace(config, output=str(compressed_dir / "rotation")))  # the default: one rotation
    assert groups == [sorted(f"{m}/{r}" for m in ("skeleton", "prompt_tuned") for r in runtimes)]


def test_openvino_batches_of_one_run_on_static_graphs_on_both_sides_unless_told(compressed_dir):
    from skeleton.measure.bench import build_prompt_tuned, contenders

    teacher = build_prompt_tuned(compressed_dir)
    for static, expected in ((True, (8,)), (False, ())):  # 200 tokens is beyond the static lengths' 128
        config = BenchConfig(
            batch_sizes=(1, 2), lengths=(8, 200), runtimes=("openvino-fp32",), static_batch_one=static, device="cpu"
        )
        engines = {c.model: c.engine for c in contenders(compressed_dir, teacher, config)}
        assert {model: engine.static_lengths for model, engine in engines.items()} == {
            "skeleton": expected,
            "prompt_tuned": expected,
        }
    no_batch_one = BenchConfig(batch_sizes=(2,), lengths=(8,), runtimes=("openvino-fp32",), device="cpu")
    assert all(c.engine.static_lengths == () for c in contenders(compressed_dir, teacher, no_batch_one))


def test_bench_times_real_sentences_end_to_end(compressed_dir, sst2_dir):
    config = BenchConfig(
        batch_sizes=(4,),
        lengths=(8,),
        runtimes=("onnx-fp32", "onnx-int8"),
        repeats=2,
        min_repeats=2,
        data=str(sst2_dir / "dev.tsv"),
    )
    report = run_bench(compressed_dir, config)
    (row,) = report.end_to_end
    assert row["batch"] == 4 and 0 < row["padded_tokens"] <= Predictor(compressed_dir).max_input_tokens
    # every contender timed on the same sentences; the headline pits the fastest shippable Skeleton
    # runtime against the prompt-tuned model's fastest runtime, and its speed-up is their ratio
    assert set(row["latency"]) == {f"{c['model']}/{c['runtime']}" for c in report.contenders}
    median = {key: timing["median_ms"] for key, timing in row["latency"].items()}
    shippable = [f"skeleton/{c['runtime']}" for c in report.contenders if c["model"] == "skeleton" and c["shippable"]]
    head = row["headline"]
    assert head["skeleton"] == min(shippable, key=median.get)
    assert head["prompt_tuned"] == min((k for k in median if k.startswith("prompt_tuned/")), key=median.get)
    assert head["speedup"] == pytest.approx(median[head["prompt_tuned"]] / median[head["skeleton"]])


def test_bench_refuses_bad_input(tmp_path, compressed_dir):
    with pytest.raises(SkeletonError, match="has no onnx/"):
        run_bench(tmp_path)
    with pytest.raises(SkeletonError, match="exceeds the model's"):
        run_bench(compressed_dir, BenchConfig(batch_sizes=(1,), lengths=(4096,)))
    with pytest.raises(ValueError, match="runtimes must be among"):
        BenchConfig(runtimes=("tensorrt",))
    with pytest.raises(SkeletonError, match="data file not found"):
        run_bench(compressed_dir, BenchConfig(batch_sizes=(1,), lengths=(8,), data=str(tmp_path / "none.tsv")))


def test_an_unshipped_slim_int8_is_built_for_the_comparison_but_never_the_headline(tmp_path, compressed_dir):
    """When the export shipped no int8 graph, bench still times one built the same way as the
    baseline's, flagged as not shippable, so the headline only uses what `skeleton predict` offers."""
    import shutil

    from skeleton.deploy.manifest import read_manifest

    directory = tmp_path / "no-int8"
    shutil.copytree(compressed_dir, directory, ignore=shutil.ignore_patterns("onnx", "bench"))
    export_directory(
        directory, ExportConfig(variants=("fp32", "optimized"), latency_shapes=((1, 8),), latency_repeats=2)
    )
    assert "int8" not in read_manifest(directory / "onnx").variants
    report = run_bench(
        directory, BenchConfig(batch_sizes=(1,), lengths=(8,), runtimes=("onnx-fp32", "onnx-int8"), repeats=2)
    )
    slim_int8 = next(c for c in report.contenders if c["model"] == "skeleton" and c["runtime"] == "onnx-int8")
    assert not slim_int8["shippable"] and "not shipped" in slim_int8["note"]
    assert (directory / "bench" / "slim-int8-unshipped" / "onnx" / "model_int8.onnx").is_file()
    (point,) = report.points
    assert point["headline"]["skeleton_runtime"] == "onnx-fp32" and "onnx-int8" in point["speedup"]


def test_the_shape_of_a_model_whose_layers_went_but_whose_heads_did_not(tmp_path, tokenizer_dir, sst2_dir):
    """Removed layers and all heads kept (no per-layer head list saved): the shape has one entry per
    kept layer, and its multiply-accumulates are those of the kept layer alone."""
    from tests.test_export import make_compressed_dir

    directory, _ = make_compressed_dir(tmp_path, "bert", "cls", tokenizer_dir, sst2_dir, layers=[1])
    shape = ModelShape.of(directory)
    assert shape.heads == [4] and len(shape.ffn_sizes) == 1
    whole = ModelShape(**{**shape.__dict__, "heads": [4, 4], "ffn_sizes": shape.ffn_sizes * 2})
    assert 0 < shape.macs(1, 8) < whole.macs(1, 8)


def test_a_bi_encoder_is_counted_and_timed_as_pairs(tmp_path, tiny_bert_dir, mrpc_dir):
    shape = _toy_shape("bi-encoder")
    # two 3-token sentences a pair, each 640 multiply-accumulates in the encoder (as above, without the
    # head); the head reads [u, v, |u - v|, u * v]: 4 * 4 * 2 = 32
    assert shape.macs(batch=2, tokens=3) == 2 * (2 * 640 + 32)
    from skeleton.core.data import DataConfig

    config = tiny_compress_config(
        tmp_path / "out",
        tiny_bert_dir,
        mrpc_dir,
        data=DataConfig("mrpc", str(mrpc_dir)),
        model=ModelConfig(model=str(tiny_bert_dir), head="bi-encoder", num_virtual_tokens=4),
        search=SearchConfig(margin=100.0, max_trials=1),
    )
    compress(config)
    export_directory(tmp_path / "out", QUICK_EXPORT)
    bench = BenchConfig(
        batch_sizes=(2,),
        lengths=(8,),
        runtimes=("torch-fp32", "onnx-fp32"),
        repeats=2,
        min_repeats=2,
        data=str(mrpc_dir / "test.tsv"),
    )
    report = run_bench(tmp_path / "out", bench)
    (point,) = report.points
    assert point["macs"]["skeleton"] == ModelShape.of(tmp_path / "out").macs(2, 8)
    assert set(point["latency"]) == {f"{m}/{r}" for m in ("skeleton", "prompt_tuned") for r in bench.runtimes}
    (row,) = report.end_to_end  # real pairs, each sentence tokenized alone, through every contender
    assert row["batch"] == 2 and set(row["latency"]) == set(point["latency"])


def test_the_runtimes_timed_follow_the_cpu(cpu_kind):
    """bf16 (PyTorch autocast and OpenVINO's hint) is timed only where the CPU has it natively; CUDA
    times fp16 and no OpenVINO."""
    from skeleton.measure.bench import offered_runtimes

    bf16 = cpu_kind in ("avx512-bf16", "amx")
    runtimes = offered_runtimes("cpu")
    assert ("torch-bf16" in runtimes, "openvino-bf16" in runtimes) == (bf16, bf16)
    assert {"torch-fp32", "onnx-fp32", "onnx-int8", "openvino-fp32", "openvino-int8"} <= set(runtimes)
    cuda = offered_runtimes("cuda")
    assert "torch-fp16" in cuda and not any(r.startswith("openvino") or r == "torch-bf16" for r in cuda)
