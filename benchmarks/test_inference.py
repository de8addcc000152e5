"""Inference per runtime on the slim default model (batch 32 of short sentences, tokenizer included).

pytest benchmarks/ --benchmark-only
"""

from __future__ import annotations

import pytest

from benchmarks.conftest import SENTENCES


@pytest.mark.parametrize("variant", ["fp32", "optimized", "int8"])
def test_onnx_predict(benchmark, slim_dir, variant):
    from skeleton.deploy.predictor import Predictor

    predictor = Predictor(slim_dir, variant=variant)
    result = benchmark(predictor.predict, SENTENCES)
    assert len(result) == len(SENTENCES)


def test_torch_predict(benchmark, slim_dir):
    import skeleton

    model = skeleton.load(slim_dir, device="cpu")
    result = benchmark(model.predict, SENTENCES)
    assert len(result) == len(SENTENCES)
