"""The Triton model repository: configs parsed by tritonclient's protobuf, the tokenizer model's
execute run against the real tokenizer through a stand-in for the Python backend, and the ONNX
model of the repository fed with its output."""

from __future__ import annotations

import importlib.util
import sys
import types

import numpy as np
import pytest
from google.protobuf import json_format, text_format
from tritonclient.grpc import model_config_pb2
from typer.testing import CliRunner

from cli.main import app
from skeleton.core.config import TritonConfig
from skeleton.deploy.export import export_directory
from skeleton.deploy.predictor import Predictor
from skeleton.deploy.runtimes import OnnxRuntime
from skeleton.deploy.triton import export_triton
from tests.test_server import FP32_ONLY, TEXTS, _pair_model


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tokenizer_dir, sst2_dir, tiny_bert_dir):
    from tests.test_export import make_compressed_dir

    root = tmp_path_factory.mktemp("triton")
    single, _ = make_compressed_dir(root, "bert", "cls", tokenizer_dir, sst2_dir, template=True)
    export_directory(single, FP32_ONLY)
    return {
        "single": single,
        "pair": _pair_model(root, tokenizer_dir, tiny_bert_dir),
        "bi": _pair_model(root, tokenizer_dir, tiny_bert_dir, "bi-encoder"),
    }


def _config(path) -> model_config_pb2.ModelConfig:
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


class _Tensor:
    """The Python backend's pb_utils.Tensor, as far as the tokenizer model uses it."""

    def __init__(self, name, array):
        self._name, self._array = name, np.asarray(array)

    def name(self):
        return self._name

    def as_numpy(self):
        return self._array


class _Response:
    def __init__(self, output_tensors, error=None):
        self.output_tensors, self.error = output_tensors, error


class _Error:
    def __init__(self, message):
        self.message = message


def _backend() -> types.ModuleType:
    """A minimal stand-in for triton_python_backend_utils: a request is a dict of input tensors."""
    module = types.ModuleType("triton_python_backend_utils")
    module.Tensor = _Tensor
    module.InferenceResponse = _Response
    module.TritonError = _Error
    module.get_input_tensor_by_name = lambda request, name: request.get(name)
    return module


def _tokenizer_model(repository, name, monkeypatch):
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", _backend())
    directory = repository / f"{name}_tokenizer"
    spec = importlib.util.spec_from_file_location(f"{name}_tokenizer_model", directory / "1" / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.TritonPythonModel()
    config = json_format.MessageToDict(_config(directory / "config.pbtxt"), preserving_proto_field_name=True)
    import json

    model.initialize({"model_config": json.dumps(config), "model_repository": str(directory), "model_version": "1"})
    return model


def _strings(texts):
    return _Tensor("TEXT", np.array([t.encode() for t in texts], dtype=object))


def test_every_config_parses_and_wires_up(tmp_path, exported):
    repository = export_triton(exported["single"], tmp_path / "repo", TritonConfig(name="sentiment", instances=2))
    onnx = _config(repository / "sentiment_onnx" / "config.pbtxt")
    predictor = Predictor(exported["single"])
    graph_inputs = {i.name for i in predictor.runtime.session.get_inputs()}
    assert onnx.backend == "onnxruntime" and onnx.max_batch_size == 64
    assert {i.name for i in onnx.input} == graph_inputs and all(list(i.dims) == [-1] for i in onnx.input)
    assert list(onnx.output[0].dims) == [2] and onnx.output[0].label_filename == "labels.txt"
    assert list(onnx.dynamic_batching.preferred_batch_size) == [8, 16, 32]
    assert onnx.dynamic_batching.max_queue_delay_microseconds == 2000
    assert onnx.instance_group[0].count == 2
    assert (repository / "sentiment_onnx" / "labels.txt").read_text().split() == list(predictor.label_names)
    tokenizer = _config(repository / "sentiment_tokenizer" / "config.pbtxt")
    assert tokenizer.backend == "python" and [i.name for i in tokenizer.input] == ["TEXT"]
    assert {o.name for o in tokenizer.output} == graph_inputs
    ensemble = _config(repository / "sentiment" / "config.pbtxt")
    assert ensemble.platform == "ensemble" and (repository / "sentiment" / "1").is_dir()
    first, second = ensemble.ensemble_scheduling.step
    assert first.model_name == "sentiment_tokenizer" and second.model_name == "sentiment_onnx"
    assert set(first.output_map) == set(second.input_map) == graph_inputs
    assert dict(second.output_map) == {"logits": "logits"}


def test_the_tokenizer_model_reproduces_the_export_and_feeds_the_graph(tmp_path, exported, monkeypatch):
    repository = export_triton(exported["single"], tmp_path / "repo", TritonConfig(name="sentiment"))
    model = _tokenizer_model(repository, "sentiment", monkeypatch)
    texts = [*TEXTS, "great " * 300]  # the last one is cut to the model's length
    (response,) = model.execute([{"TEXT": _strings(texts)}])
    assert response.error is None
    outputs = {t.name(): t.as_numpy() for t in response.output_tensors}
    predictor = Predictor(exported["single"])
    expected = predictor.encode(texts)
    width = expected["input_ids"].shape[1]
    # padded to a multiple of 16, or to the model's length when that is less
    assert outputs["input_ids"].shape[1] in (-(-width // 16) * 16, predictor.max_input_tokens)
    for key in expected:
        np.testing.assert_array_equal(outputs[key][:, :width], expected[key])
        assert not outputs[key][:, width:].any() or key == "input_ids"
    # the repository's graph on those ids gives the logits skeleton predict gives
    graph = OnnxRuntime(repository / "sentiment_onnx" / "1" / "model.onnx")
    np.testing.assert_allclose(graph.run(outputs), predictor.logits(texts), atol=1e-4)


def test_pairs_and_bad_requests(tmp_path, exported, monkeypatch):
    repository = export_triton(exported["pair"], tmp_path / "repo", TritonConfig(name="pairs"))
    assert [i.name for i in _config(repository / "pairs" / "config.pbtxt").input] == ["TEXT", "TEXT_PAIR"]
    model = _tokenizer_model(repository, "pairs", monkeypatch)
    good = {"TEXT": _strings(["a superb film", "awful"]), "TEXT_PAIR": _strings(["great", "dull plot"])}
    mismatched = {"TEXT": _strings(["a", "b"]), "TEXT_PAIR": _strings(["c"])}
    missing = {"TEXT": _strings(["a"])}
    responses = model.execute([mismatched, good, missing])
    assert "TEXT_PAIR" in responses[0].error.message and "missing" in responses[2].error.message
    assert responses[1].error is None  # a bad request beside it does not spoil a good one
    outputs = {t.name(): t.as_numpy() for t in responses[1].output_tensors}
    predictor = Predictor(exported["pair"])
    expected = predictor.encode([("a superb film", "great"), ("awful", "dull plot")])
    np.testing.assert_array_equal(outputs["input_ids"][:, : expected["input_ids"].shape[1]], expected["input_ids"])


def test_the_command_writes_the_repository_beside_other_models(tmp_path, exported):
    repository = tmp_path / "models"
    (repository / "someone_else" / "1").mkdir(parents=True)
    result = CliRunner().invoke(
        app, ["export", str(exported["single"]), "--triton", str(repository), "--triton-name", "sentiment"]
    )
    assert result.exit_code == 0, result.output
    assert {p.name for p in repository.iterdir()} == {
        "someone_else",
        "sentiment",
        "sentiment_onnx",
        "sentiment_tokenizer",
    }
    assert not list(tmp_path.glob(".*staged"))
    result = CliRunner().invoke(
        app, ["export", str(exported["single"]), "--triton", str(repository), "--triton-variant", "int8"]
    )
    assert result.exit_code == 2 and "variant 'int8' was not exported" in result.output


def test_a_bi_encoder_repository_encodes_each_text_alone_and_feeds_the_graph(tmp_path, exported, monkeypatch):
    repository = export_triton(exported["bi"], tmp_path / "repo", TritonConfig(name="bi"))
    predictor = Predictor(exported["bi"])
    graph_inputs = {i.name for i in predictor.runtime.session.get_inputs()}
    assert graph_inputs == {"input_ids", "attention_mask", "pair_input_ids", "pair_attention_mask"}
    assert {i.name for i in _config(repository / "bi_onnx" / "config.pbtxt").input} == graph_inputs
    assert [i.name for i in _config(repository / "bi" / "config.pbtxt").input] == ["TEXT", "TEXT_PAIR"]
    assert {o.name for o in _config(repository / "bi_tokenizer" / "config.pbtxt").output} == graph_inputs
    model = _tokenizer_model(repository, "bi", monkeypatch)
    firsts, seconds = ["a superb film", "awful", "great " * 300], ["great", "a dull and boring plot", "nice"]
    (response,) = model.execute([{"TEXT": _strings(firsts), "TEXT_PAIR": _strings(seconds)}])
    assert response.error is None
    outputs = {t.name(): t.as_numpy() for t in response.output_tensors}
    pairs = list(zip(firsts, seconds, strict=True))
    expected = predictor.encode(pairs)
    width = expected["input_ids"].shape[1]  # both sides share one width, the longest sentence's
    assert outputs["input_ids"].shape == outputs["pair_input_ids"].shape
    for key in graph_inputs:
        np.testing.assert_array_equal(outputs[key][:, :width], expected[key])
    graph = OnnxRuntime(repository / "bi_onnx" / "1" / "model.onnx")
    np.testing.assert_allclose(graph.run(outputs), predictor.logits(pairs), atol=1e-4)
