import pytest

from skeleton.core.errors import SkeletonError
from skeleton.deploy.manifest import resolve_onnx_dir
from skeleton.deploy.runtimes import onnx_providers


def test_providers_follow_the_device():
    import onnxruntime as ort

    assert onnx_providers("cpu") == ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in ort.get_available_providers():
        assert onnx_providers("auto")[0] == "CUDAExecutionProvider"
    else:
        assert onnx_providers("auto") == ["CPUExecutionProvider"]
        with pytest.raises(SkeletonError, match="no CUDAExecutionProvider"):
            onnx_providers("cuda")
    with pytest.raises(SkeletonError, match="unknown device"):
        onnx_providers("tpu")


def test_directories_without_an_export_are_named(tmp_path):
    with pytest.raises(SkeletonError, match="directory not found"):
        resolve_onnx_dir(tmp_path / "missing")
    with pytest.raises(SkeletonError, match=r"holds no exported model \(onnx/manifest.json\); run 'skeleton export"):
        resolve_onnx_dir(tmp_path)
    (tmp_path / "onnx").mkdir()
    (tmp_path / "onnx" / "manifest.json").write_text("{}")
    assert resolve_onnx_dir(tmp_path) == tmp_path / "onnx"
    assert resolve_onnx_dir(tmp_path / "onnx") == tmp_path / "onnx"


@pytest.mark.parametrize("task", ["sst2", "mrpc"])
def test_the_exported_tokenizer_reads_without_transformers_and_gives_the_same_ids(tmp_path, tokenizer_dir, task):
    """ExportedTokenizer (tokenizers alone) against the Hugging Face tokenizer of the same export:
    ids, masks and token types, padded and truncated, single texts and pairs."""
    import numpy as np
    from transformers import AutoTokenizer

    from skeleton.core.tasks import get_task
    from skeleton.deploy.export import template_tokenizer
    from skeleton.deploy.runtimes import tokenize
    from skeleton.deploy.tokenizer import ExportedTokenizer

    spec = get_task(task)
    template_tokenizer(AutoTokenizer.from_pretrained(str(tokenizer_dir)), spec, 24).save_pretrained(str(tmp_path))
    hugging_face, exported = AutoTokenizer.from_pretrained(str(tmp_path)), ExportedTokenizer(tmp_path)
    texts = ["a good film", "the plot was dull and boring and long and slow and bad and tired and old", "great"]
    inputs = list(zip(texts, reversed(texts), strict=True)) if spec.is_pair else texts
    for limit in (None, 12):
        expected, got = tokenize(hugging_face, inputs, limit), tokenize(exported, inputs, limit)
        assert set(got) >= {"input_ids", "attention_mask"}
        for key in got:
            assert np.array_equal(got[key], expected[key]), (key, limit)
    assert exported.pad_token_id == hugging_face.pad_token_id and exported.model_max_length == 24


def test_a_graph_prediction_loads_no_torch(tmp_path, tokenizer_dir, sst2_dir):
    """`skeleton predict` on an ONNX or OpenVINO graph starts without torch or transformers."""
    import subprocess
    import sys

    from skeleton.core.config import ExportConfig
    from skeleton.deploy.export import export_directory
    from tests.test_export import make_compressed_dir

    directory, _ = make_compressed_dir(tmp_path, "bert", "cls", tokenizer_dir, sst2_dir)
    export_directory(directory, ExportConfig(variants=("fp32", "openvino-fp32"), latency_shapes=((1, 8),)))
    for runtime in ("onnx-fp32", "openvino-fp32"):
        script = (
            "import sys\n"
            "from skeleton.deploy.predictor import Predictor\n"
            f"print(Predictor({str(directory)!r}, runtime={runtime!r}).predict(['a good film'])[0][0])\n"
            "heavy = sorted(m for m in ('torch', 'transformers', 'datasets') if m in sys.modules)\n"
            "assert not heavy, heavy\n"
        )
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.strip() in ("positive", "negative")


def test_the_registry_names_every_runtime_of_an_export_old_manifests_included():
    from skeleton.core.reports import Manifest
    from skeleton.deploy.registry import REGISTRY, default_runtime, open_runtime, runtime_names

    assert set(REGISTRY) == {"onnx", "openvino", "torch"}
    # a manifest written before OpenVINO (no runtime per variant) reads as onnxruntime graphs
    old = Manifest("sst2", ["negative", "positive"], ["input_ids"], 64, {"fp32": {}, "int8": {}}, "int8")
    assert runtime_names(old) == ["onnx-fp32", "onnx-int8", "torch-fp32", "torch-bf16", "torch-fp16"]
    assert default_runtime(old) == "onnx-int8"
    new = Manifest(
        "sst2",
        ["negative", "positive"],
        ["input_ids"],
        64,
        {"int8": {"runtime": "onnx-int8"}, "openvino-int8": {"runtime": "openvino-int8"}},
        "openvino-int8",
    )
    assert runtime_names(new)[:2] == ["onnx-int8", "openvino-int8"] and default_runtime(new) == "openvino-int8"
    # an export that measured each graph end to end names one for predict and one for serve
    new.runtime_choice = {"predict": "int8", "serve": "openvino-int8", "why": "measured"}
    assert default_runtime(new, "predict") == "onnx-int8" and default_runtime(new, "serve") == "openvino-int8"
    with pytest.raises(SkeletonError, match=r"runtime 'openvino-fp32' is not available for \.; choose one of"):
        open_runtime("openvino-fp32", ".", new)


def test_openvinos_first_call_in_a_process_runs_alone(monkeypatch):
    """Two threads making a process's first OpenVINO inference at once can deadlock in its Python binding (a
    server's warm-up runs one on each stream): the first call runs under a lock of the whole process, every later
    call, of any OpenVINO graph, without it."""
    import threading

    from skeleton.deploy import runtimes

    monkeypatch.setattr(runtimes, "_OPENVINO_FIRST_CALL_DONE", threading.Event())
    held = []

    class RecordingLock:
        def __enter__(self):
            held.append(True)

        def __exit__(self, *exc):
            held[-1] = False
            return False

    monkeypatch.setattr(runtimes, "_OPENVINO_FIRST_CALL", RecordingLock())
    calls = []

    def runtime():
        made = object.__new__(runtimes.OpenVinoRuntime)
        made._infer = lambda encoded: calls.append(list(held)) or encoded["input_ids"]
        return made

    first, second = runtime(), runtime()
    assert [first.run({"input_ids": 1}), first.run({"input_ids": 2}), second.run({"input_ids": 3})] == [1, 2, 3]
    assert calls == [[True], [False], [False]]  # the lock held during the first call alone, then never taken again
